import Foundation

/// Golden files hold request bodies as pretty, key-sorted JSON so a diff shows what changed.
/// Run the tests with PATCHBAY_UPDATE_GOLDEN=1 to rewrite them after an intended change.
public enum Golden {
    public static var updating: Bool { ProcessInfo.processInfo.environment["PATCHBAY_UPDATE_GOLDEN"] == "1" }

    /// `Tests/<directory>` in the package, found from the calling file's path.
    public static func directory(_ relative: String, filePath: String = #filePath) -> URL {
        var url = URL(fileURLWithPath: filePath)
        while url.lastPathComponent != "Tests", url.path != "/" { url.deleteLastPathComponent() }
        return url.appendingPathComponent(relative)
    }

    public static func canonical(_ json: Data) throws -> String {
        let object = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Returns nil when `json` matches the golden file, or a message saying how it differs.
    public static func mismatch(_ json: Data, file: URL) throws -> String? {
        let actual = try canonical(json)
        if updating {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try actual.write(to: file, atomically: true, encoding: .utf8)
            return nil
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            return "golden file \(file.path) is missing; run with PATCHBAY_UPDATE_GOLDEN=1 to create it"
        }
        guard expected != actual else { return nil }
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        for index in 0..<max(expectedLines.count, actualLines.count) {
            let e = index < expectedLines.count ? String(expectedLines[index]) : "<end>"
            let a = index < actualLines.count ? String(actualLines[index]) : "<end>"
            if e != a {
                return "\(file.lastPathComponent) differs at line \(index + 1):\n  expected: \(e)\n  actual:   \(a)"
            }
        }
        return "\(file.lastPathComponent) differs"
    }
}

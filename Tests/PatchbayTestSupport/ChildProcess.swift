import Foundation

/// The `patchbay` executable built beside the test bundle, run as a child process with its
/// output captured to files, so tests can kill it with SIGKILL like a crash would.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String

    /// `PATCHBAY_BIN` overrides where the executable is looked for.
    public static var patchbayExecutable: URL {
        if let override = ProcessInfo.processInfo.environment["PATCHBAY_BIN"] { return URL(fileURLWithPath: override) }
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On Linux the test runner is `<build>/debug/<Package>PackageTests.xctest`.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("patchbay")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return testBinary.deletingLastPathComponent().appendingPathComponent("patchbay")
    }

    public init(arguments: [String], environment: [String: String] = [:], directory: TemporaryDirectory, name: String) throws {
        stdoutPath = directory.path("\(name).stdout")
        stderrPath = directory.path("\(name).stderr")
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = Self.patchbayExecutable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "PATCHBAY_TOKEN")
        env.removeValue(forKey: "LOG_LEVEL")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.currentDirectoryURL = directory.url
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits until the combined output has a line matching `pattern`, returning its first capture group.
    public func waitForOutput(matching pattern: String, timeout: Duration = .seconds(20)) async throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = stdout + stderr
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                return String(text[Range(range, in: text)!])
            }
            if !process.isRunning {
                throw ChildProcessError(
                    description: "patchbay exited with status \(process.terminationStatus) before printing /\(pattern)/:\n\(stdout)\(stderr)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ChildProcessError(description: "timed out waiting for /\(pattern)/ in patchbay output:\n\(stdout)\(stderr)")
    }

    public func kill(_ signal: Int32 = SIGKILL) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
    }

    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(20)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Runs a short command to completion and returns (status, stdout, stderr).
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: TemporaryDirectory,
        name: String
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(arguments: arguments, environment: environment, directory: directory, name: name)
        guard let status = await child.waitForExit(timeout: .seconds(60)) else {
            child.kill()
            throw ChildProcessError(description: "patchbay \(arguments.joined(separator: " ")) did not finish")
        }
        return (status, child.stdout, child.stderr)
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

import Foundation
import PatchbayCore

public enum Fixtures {
    public static var packageRoot: URL { Golden.directory("").deletingLastPathComponent() }

    public static func exampleEvent(_ type: EventType) throws -> Data {
        try Data(contentsOf: packageRoot.appendingPathComponent("Schemas/examples/\(type.rawValue).json"))
    }

    /// An event of `type` whose every text field tries to break out: quotes, newlines, Slack
    /// control sequences, Markdown, emoji, HTML, and 2,000 packages.
    public static func hostileEvent(_ type: EventType) -> PatchEvent {
        var packages = (1...2000).map { "pkg-\($0)-1.0.\($0 % 7)-1.amzn2023.x86_64" }
        packages[0] = "evil <script>alert(\"x\")</script> & <!channel>"
        packages[1] = "*bold* _italic_ `code` [link](https://example.invalid) # heading"
        return PatchEvent(
            id: "hostile-\(type.rawValue)",
            type: type,
            app: "App \"1\" <!channel> & <@U0123>",
            environment: "Prod\nuction :fire: 🚀",
            instance: type == .scheduled || type == .cancelled || type == .reminder
                ? nil : Instance(id: "i-0abc\"123", name: "web-1 <https://evil.invalid|click me> *now*"),
            window: MaintenanceWindow(
                id: "mw-\"1\"", start: Timestamp.parseRFC3339("2026-12-04T08:30:00Z")!,
                end: Timestamp.parseRFC3339("2026-12-04T08:45:00Z")!, timezone: "America/Los_Angeles"),
            packages: type == .completed ? packages : [],
            occurredAt: Timestamp.parseRFC3339("2026-12-04T08:41:07Z"),
            details: type == .failed || type == .cancelled
                ? ["reason": .string("line one\nline \"two\" <!here> & </script>")] : [:]
        )
    }
}

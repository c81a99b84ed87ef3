import Foundation
import PatchbayCore

/// Slack incoming webhook (`kind: slack`). The URL is the credential; Slack answers 200 `ok` and
/// returns no message id, so every lifecycle step is a new message.
public struct SlackTarget: DeliveryTarget {
    public static let kind = "slack"

    public let name: String
    public let url: Secret
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url] }

    public init(name: String, url: Secret) {
        self.name = name
        self.url = url
    }

    /// Reads `targets.<name>`: `{kind: slack, url: ...}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(["kind", "url"])
        guard let url = section.secretURL("url") else { return nil }
        self.init(name: name, url: url)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        let payload = SlackPayload(event: event, zone: context.displayTimeZone)
        let body: Data
        do {
            body = try JSONEncoder.patchbay().encode(payload)
        } catch {
            throw RenderError("could not encode the Slack payload")
        }
        return OutboundRequest(
            method: "POST", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")],
            body: body
        )
    }
}

/// The message body teams send today: one legacy attachment with title, text, colour and fields.
struct SlackPayload: Encodable, Equatable {
    struct Field: Encodable, Equatable {
        var title: String
        var value: String
        var short: Bool
    }

    struct Attachment: Encodable, Equatable {
        var fallback: String
        var color: String
        var title: String
        var text: String
        var fields: [Field]
        var mrkdwn_in: [String]
        var ts: Int?
    }

    var attachments: [Attachment]

    /// Field values Slack shows in full; longer package lists are cut with "… and N more".
    static let packageFieldBudget = 2900

    init(event: PatchEvent, zone: TimeZone) {
        let e = SlackEscaping.escape
        let title = MessageText.title(for: event.type)
        let system = event.systemName
        let subject: String
        if let instance = event.instance {
            subject = "*\(e(instance.name ?? instance.id))* (\(e(system)))"
        } else {
            subject = "*\(e(system))*"
        }
        let windowText = MessageText.window(event.window, in: zone)
        let text: String
        switch event.type {
        case .scheduled:
            text = "Patching of \(subject) is scheduled for \(windowText)."
        case .reminder:
            text = "Reminder: patching of \(subject) starts \(MessageText.instant(event.window.start, in: zone))."
        case .started:
            text = "Patching of \(subject) has begun."
        case .completed:
            let count = event.packages.count
            text = count == 0
                ? "Patching of \(subject) is complete: no packages needed updating."
                : "Patching of \(subject) is complete: \(count) package\(count == 1 ? "" : "s") updated."
        case .failed:
            if let reason = MessageText.failureReason(event) {
                text = "Patching of \(subject) failed: \(e(reason))"
            } else {
                text = "Patching of \(subject) failed."
            }
        case .cancelled:
            text = "Patching of \(subject) scheduled for \(windowText) has been cancelled."
        }

        var fields = [Field(title: "App Name", value: e(system), short: true)]
        if let instance = event.instance {
            fields.append(Field(title: "Instance Name", value: e(instance.displayName), short: true))
        }
        fields.append(Field(title: "Window", value: windowText, short: false))
        if event.type == .completed {
            let list = event.packages.isEmpty
                ? "None"
                : MessageText.packageList(event.packages, budget: Self.packageFieldBudget, escape: e)
            fields.append(Field(title: "Packages Updated", value: list, short: false))
        }

        let fallbackSubject = event.instance.map { "\(system) / \($0.name ?? $0.id)" } ?? system
        attachments = [Attachment(
            fallback: e("\(title): \(fallbackSubject)"),
            color: "#" + MessageText.color(for: event.type),
            title: title,
            text: text,
            fields: fields,
            mrkdwn_in: ["text"],
            ts: event.occurredAt.map { Int($0.timeIntervalSince1970) }
        )]
    }
}

/// Slack treats `&`, `<` and `>` as control characters (links, `<!channel>` mentions); converting
/// them to entities, `&` first, makes any text inert. Slack decodes only these three.
public enum SlackEscaping {
    @Sendable public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

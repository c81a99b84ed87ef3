import Foundation
import PatchbayCore

/// E-mail over SMTP through libcurl (`kind: email`): one message per event to a change-management
/// list, with a plain-text and an HTML part built from the same facts. STARTTLS is required on
/// `smtp://` unless `allowInsecure: true`; `smtps://` is TLS from the start.
///
/// Threading: the first message of a maintenance has a `Message-ID` derived from the maintenance
/// (so a retried first send carries the same id), later ones point at it with `In-Reply-To` and
/// `References` (RFC 5322 3.6.4), so mail clients show one thread per maintenance.
///
/// SMTP replies decide the outcome (RFC 5321 4.2.1): 2xx delivered, 4xx try again later, 5xx dead.
public struct EmailTarget: MessageTarget, TemplatedTarget {
    public static let kind = "email"
    /// One connection, mails in series; a mail server is not a chat API, but a burst of 100
    /// messages a minute trips many providers' limits (derived, not a vendor figure).
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 2, burst: 5))
    public static let traits = TargetKindTraits(kind: kind)
    public static let templateKeys: Set<String> = ["subject", "body"]
    public static let templateEscaping = TemplateEscaping.html

    public static func templateEscaping(for key: String) -> TemplateEscaping {
        key == "subject" ? .headerLine : .html
    }

    public let name: String
    public let url: Secret
    public let from: MailAddress
    public let to: [MailAddress]
    public let cc: [MailAddress]
    public let username: Secret?
    public let password: Secret?
    public let allowInsecure: Bool
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url] + [username, password].compactMap { $0 } }

    public init(
        name: String, url: Secret, from: MailAddress, to: [MailAddress], cc: [MailAddress] = [], username: Secret? = nil,
        password: Secret? = nil, allowInsecure: Bool = false
    ) {
        self.name = name
        self.url = url
        self.from = from
        self.to = to
        self.cc = cc
        self.username = username
        self.password = password
        self.allowInsecure = allowInsecure
    }

    /// Reads `targets.<name>`: `{kind: email, url: smtp://mail.example.com:587, from: "Patchbay <p@example.com>",
    /// to: [changes@example.com], cc: [...], username: ..., password: ..., allowInsecure: false}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url", "from", "to", "cc", "username", "password", "allowInsecure"]))
        var valid = true
        var url: Secret?
        if let text = section.string("url", required: true) {
            let components = URLComponents(string: text)
            let scheme = components?.scheme?.lowercased()
            if scheme != "smtp" && scheme != "smtps" || components?.host?.isEmpty != false {
                section.report("url", "expected smtp://host:587 (STARTTLS) or smtps://host:465 (value not shown: it may hold a secret)")
                valid = false
            } else if components?.user != nil || components?.password != nil {
                section.report("url", "put the credentials in username and password, not in the URL (value not shown)")
                valid = false
            } else {
                url = Secret(text)
            }
        }
        func addresses(_ key: String, required: Bool) -> [MailAddress] {
            guard let list = section.stringList(key, required: required) else { return [] }
            if required && list.isEmpty { section.report(key, "must list at least one address") }
            return list.enumerated().compactMap { index, text in
                guard let address = MailAddress(text) else {
                    section.diagnostics.report(
                        "\(section.keyPath(key))[\(index)]", "expected an address like changes@example.com, got '\(String(text.prefix(80)))'")
                    valid = false
                    return nil
                }
                return address
            }
        }
        var from: MailAddress?
        if let text = section.string("from", required: true) {
            from = MailAddress(text)
            if from == nil {
                section.report("from", "expected an address like patchbay@example.com or \"Patchbay <patchbay@example.com>\"")
                valid = false
            }
        }
        let to = addresses("to", required: true)
        let cc = addresses("cc", required: false)
        let username = section.secret("username", required: false)
        let password = section.secret("password", required: false)
        if (username == nil) != (password == nil) {
            section.report("username and password go together: give both, or neither for a server that needs no AUTH")
            valid = false
        }
        let allowInsecure = section.bool("allowInsecure", default: false)
        guard valid, let url, let from, !to.isEmpty else { return nil }
        self.init(name: name, url: url, from: from, to: to, cc: cc, username: username, password: password, allowInsecure: allowInsecure)
    }

    /// The thread's first message: its id is derived from the maintenance, so every later
    /// message can point at it without knowing whether it was sent yet.
    public var usesMaintenanceState: Bool { true }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        let message = EmailMessage(
            event: event, context: context, target: name, from: from, to: to, cc: cc,
            templates: MessageTemplates.preferring(context.routeTemplates, over: templates))
        return OutboundRequest(
            method: "SMTP", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()), headers: [],
            body: Data(message.text.utf8),
            mail: MailEnvelope(
                from: from.address, recipients: (to + cc).map(\.address), requireTLS: !allowInsecure,
                username: username, password: password)
        )
    }

    /// After the first message of a maintenance went out, later ones reply to it.
    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        guard context.followUp?.objectID == nil else { return nil }
        return FollowUpState(objectID: EmailMessage.threadID(of: event, target: name, domain: from.domain), status: "sent")
    }

    /// SMTP reply codes (RFC 5321 4.2.1): 4yz may succeed if repeated, 5yz will not.
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        guard case .success(let response) = result else { return ResponseRule.classify(result) }
        switch response.status {
        case 200..<400: return .delivered(reason: ResponseRule.Reason.delivered)
        case 400..<500: return .retry(after: nil, reason: ResponseRule.Reason.serverError)
        default: return .permanent(reason: ResponseRule.Reason.clientError)
        }
    }
}

/// `patchbay@example.com`, or `Patchbay <patchbay@example.com>`. Refuses what could break out of
/// a header or the SMTP envelope: CR, LF, angle brackets or spaces inside the address.
public struct MailAddress: Sendable, Hashable {
    public var name: String?
    public var address: String

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.contains(where: { $0.isNewline || $0 == "\0" }) else { return nil }
        var name: String?
        var address = trimmed
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            let display = trimmed[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            name = display.isEmpty ? nil : display
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasSuffix("."), address.count <= 254,
            address.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"<>()[]\\,;:\"".contains($0) })
        else { return nil }
        self.name = name
        self.address = address
    }

    public var domain: String { String(address.split(separator: "@").last ?? "patchbay.invalid") }
}

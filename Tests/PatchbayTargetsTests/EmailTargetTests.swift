import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// E-mail messages: golden files of every example and hostile event (headers and both parts,
/// decoded), with the default wording and a custom template; headers cannot be injected, the
/// HTML part escapes every value, and a maintenance's messages form one thread.
@Suite("E-mail target")
struct EmailTargetTests {
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let golden = Golden.directory("PatchbayTargetsTests/Golden/email")

    static func target() -> EmailTarget {
        EmailTarget(
            name: "changes", url: Secret("smtp://127.0.0.1:2525"), from: MailAddress("Patch Bot <patchbay@example.com>")!,
            to: [MailAddress("changes@example.com")!], cc: [MailAddress("audit@example.com")!],
            username: Secret("mailer"), password: Secret("canary-smtp-password"))
    }

    static func context(followUp: FollowUpState? = nil) -> RenderContext {
        RenderContext(displayTimeZone: zone, deliveryID: "dlv_mail", now: now, followUp: followUp)
    }

    /// The message as a document: headers in order, and each part decoded.
    static func document(_ request: OutboundRequest) throws -> (json: Data, headers: [(String, String)], parts: [String: String]) {
        let text = String(decoding: request.body, as: UTF8.self)
        let sections = text.components(separatedBy: "\r\n\r\n")
        var headers: [(String, String)] = []
        for line in sections[0].components(separatedBy: "\r\n") {
            if line.hasPrefix(" "), let last = headers.popLast() {
                headers.append((last.0, last.1 + line))
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
        }
        var parts: [String: String] = [:]
        let contentType = headers.first { $0.0 == "Content-Type" }?.1 ?? ""
        let boundary = contentType.components(separatedBy: "boundary=\"").last?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? ""
        for chunk in text.components(separatedBy: "--\(boundary)").dropFirst() {
            guard let split = chunk.range(of: "\r\n\r\n") else { continue }
            let partHeaders = chunk[..<split.lowerBound]
            let body = chunk[split.upperBound...].replacingOccurrences(of: "\r\n", with: "")
            let type = partHeaders.contains("text/html") ? "text/html" : "text/plain"
            parts[type] = String(decoding: Data(base64Encoded: body) ?? Data(), as: UTF8.self)
        }
        let object: JSONValue = .object([
            "headers": .array(headers.map { .string("\($0.0): \($0.1)") }),
            "parts": .object(parts.mapValues { .string($0) }),
            "envelope": .object(["from": .string(request.mail?.from ?? ""), "to": .array((request.mail?.recipients ?? []).map { .string($0) })]),
        ])
        return (try JSONEncoder.patchbay().encode(object), headers, parts)
    }

    @Test(arguments: EventType.allCases)
    func everyEventMatchesGoldenWithBothParts(_ type: EventType) throws {
        let target = Self.target()
        let example = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        for (name, event) in [(type.rawValue, example), ("hostile-\(type.rawValue)", Fixtures.hostileEvent(type))] {
            let request = try target.render(event, context: Self.context())
            let (json, headers, parts) = try Self.document(request)
            let mismatch = try Golden.mismatch(json, file: Self.golden.appendingPathComponent("\(name).json"))
            #expect(mismatch == nil, "\(mismatch ?? "")")
            #expect(parts.keys.sorted() == ["text/html", "text/plain"])
            let names = Set(headers.map(\.0))
            let required: Set<String> = ["Subject", "From", "To", "Date", "Message-ID"]
            #expect(required.isSubset(of: names))
            #expect(!headers.contains { $0.0 == "Bcc" })
            // The HTML part escapes what the event carries; the text part keeps it readable.
            #expect(!(parts["text/html"] ?? "").contains("<script>"))
            #expect(!(parts["text/html"] ?? "").contains("<!channel>"))
            #expect(request.mail?.recipients == ["changes@example.com", "audit@example.com"])
            #expect(request.mail?.requireTLS == true)
            #expect(!request.displayURL.contains("canary") && !String(decoding: request.body, as: UTF8.self).contains("canary-smtp-password"))
        }
    }

    @Test func customTemplatesEscapeForHTMLAndKeepTheSubjectOneLine() throws {
        var target = Self.target()
        let diagnostics = ConfigDiagnostics()
        target.templates = TargetRegistry.compileTemplates(
            TemplateSources(
                texts: [
                    "subject": "[{{environment}}] {{title}}: {{#instance}}{{name}}{{/instance}}",
                    "body":
                        "<p><b>{{system}}</b> {{stage}}</p><p>{{#reason}}Reason: {{reason}}{{/reason}}</p><ul>{{#packages.first}}<li>{{.}}</li>{{/packages.first}}</ul>",
                ], keyPath: "targets.changes.templates"), for: EmailTarget.self, diagnostics: diagnostics, reportUnusedKeys: true)
        #expect(diagnostics.problems.isEmpty, "\(diagnostics.problems)")
        for type in EventType.allCases {
            let request = try target.render(Fixtures.hostileEvent(type), context: Self.context())
            let (json, headers, parts) = try Self.document(request)
            let mismatch = try Golden.mismatch(json, file: Self.golden.appendingPathComponent("template-hostile-\(type.rawValue).json"))
            #expect(mismatch == nil, "\(mismatch ?? "")")
            let subject = headers.first { $0.0 == "Subject" }?.1 ?? ""
            #expect(subject.hasPrefix("=?UTF-8?B?"), "a subject with a line break and emoji is encoded: \(subject.prefix(40))")
            let html = parts["text/html"] ?? ""
            #expect(html.contains("<b>App &quot;1&quot; &lt;!channel&gt; &amp; &lt;@U0123&gt;"), "values are HTML-escaped, the author's tags kept")
            #expect(!html.contains("<script>"))
            #expect((parts["text/plain"] ?? "").contains("App \"1\" <!channel> & <@U0123>"), "the text part reads the values back as text")
        }
    }

    @Test func aMaintenancesMessagesFormOneThread() throws {
        let target = Self.target()
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        let first = try Self.document(target.render(event, context: Self.context())).headers
        let state = target.followUp(
            after: TransportResponse(status: 250, headers: [], body: Data(), latency: .zero),
            to: try target.render(event, context: Self.context()), event: event, context: Self.context())
        #expect(state?.objectID == first.first { $0.0 == "Message-ID" }?.1)
        var later = Self.context(followUp: state)
        later.deliveryID = "dlv_mail_2"
        let second = try Self.document(target.render(event, context: later)).headers
        let firstID = first.first { $0.0 == "Message-ID" }?.1
        #expect(second.first { $0.0 == "In-Reply-To" }?.1 == firstID)
        #expect(second.first { $0.0 == "References" }?.1 == firstID)
        #expect(second.first { $0.0 == "Message-ID" }?.1 != firstID)
        // A retried delivery keeps its id.
        #expect(
            try Self.document(target.render(event, context: later)).headers.first { $0.0 == "Message-ID" }?.1
                == second.first { $0.0 == "Message-ID" }?.1)
    }

    @Test func displayNamesWithSpecialsAreQuotedAndTargetsHaveTheirOwnThreads() throws {
        #expect(EmailMessage.header(MailAddress("Ops, Team <ops@example.com>")!) == "\"Ops, Team\" <ops@example.com>")
        #expect(EmailMessage.header(MailAddress("Patch Bot <bot@example.com>")!) == "Patch Bot <bot@example.com>")
        #expect(EmailMessage.header(MailAddress("Équipe <ops@example.com>")!).hasPrefix("=?UTF-8?B?"))
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        #expect(
            EmailMessage.threadID(of: event, target: "a", domain: "example.com")
                != EmailMessage.threadID(of: event, target: "b", domain: "example.com"))
    }

    @Test func longRecipientListsAreFoldedOneAddressPerLine() {
        let many = (1...40).map { MailAddress("Team Member \($0) <member\($0)@example.com>")! }
        let header = "To: " + EmailMessage.addressList(many)
        #expect(header.components(separatedBy: "\r\n").allSatisfy { $0.count <= 78 })
        #expect(header.components(separatedBy: "\r\n").count == 40)
    }

    @Test func smtpRepliesDecideTheOutcome() {
        let target = Self.target()
        func outcome(_ status: Int) -> DeliveryOutcome {
            target.classify(.success(TransportResponse(status: status, headers: [], body: Data(), latency: .zero)))
        }
        #expect(outcome(250) == .delivered(reason: .delivered))
        #expect(outcome(451) == .retry(after: nil, reason: .serverError))
        #expect(outcome(421) == .retry(after: nil, reason: .serverError))
        #expect(outcome(550) == .permanent(reason: .clientError))
        #expect(outcome(554) == .permanent(reason: .clientError))
    }

    @Test func configurationRefusesWhatCouldBreakAHeader() {
        #expect(MailAddress("a@example.com\r\nBcc: x@example.com") == nil)
        #expect(MailAddress("a b@example.com") == nil)
        #expect(MailAddress("<a@example.com>")?.address == "a@example.com")
        #expect(MailAddress("\"Patch Bot\" <bot@example.com>")?.name == "Patch Bot")
        #expect(MailAddress("nobody") == nil)
    }
}

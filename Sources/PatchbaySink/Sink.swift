import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PatchbayCore
import Synchronization

/// A scripted answer: a status (and body), optionally a `Retry-After`, a delay, or a hang.
public struct ScriptedResponse: Sendable, Codable, Equatable {
    public var status: Int
    public var body: String?
    public var retryAfter: String?
    public var delayMs: Int?
    /// Never answer (until the client gives up).
    public var hang: Bool?
    /// Reset the connection instead of answering.
    public var reset: Bool?
    public var headers: [String: String]?

    public init(
        status: Int = 200, body: String? = nil, retryAfter: String? = nil, delayMs: Int? = nil, hang: Bool? = nil,
        reset: Bool? = nil, headers: [String: String]? = nil
    ) {
        self.reset = reset
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
        self.delayMs = delayMs
        self.hang = hang
        self.headers = headers
    }

    public static func status(_ code: Int) -> ScriptedResponse { ScriptedResponse(status: code) }

    /// `status` may be left out (`{"hang": true}`, `{"reset": true}`): it then defaults to 200.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decodeIfPresent(Int.self, forKey: .status) ?? 200
        body = try container.decodeIfPresent(String.self, forKey: .body)
        retryAfter = try container.decodeIfPresent(String.self, forKey: .retryAfter)
        delayMs = try container.decodeIfPresent(Int.self, forKey: .delayMs)
        hang = try container.decodeIfPresent(Bool.self, forKey: .hang)
        reset = try container.decodeIfPresent(Bool.self, forKey: .reset)
        headers = try container.decodeIfPresent([String: String].self, forKey: .headers)
    }
}

/// One request the sink received, kept whole in memory for tests; the record file holds the same
/// with credentials reduced to their scheme.
public struct SinkRequest: Sendable, Codable {
    public var seq: Int
    /// When the answer was ready (after any delay): the request was in flight from `startedAt` to here.
    public var receivedAt: Date
    /// When the request's body had arrived, before any delay.
    public var startedAt: Date?
    public var vendor: String
    public var method: String
    public var path: String
    public var query: String?
    public var status: Int
    public var contentType: String?
    public var authorization: String?
    /// Every header, names lower-cased (the record file leaves out authorization).
    public var headers: [String: String]
    public var body: String
    /// What the sink answered (the first 2 KiB): a created object's id, for tests that follow it.
    public var answer: String?

    public var json: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) }
}

/// A local stand-in for Slack, Teams, Statuspage and Pingdom on one port, for tests, the demo
/// and benchmarks. Paths choose the vendor:
/// - `POST /slack/<anything>`: Slack incoming webhook, answers 200 `ok`.
/// - `POST /teams/<anything>`: Teams Workflows webhook, answers 202 with no body.
/// - `POST /teams-connector/<anything>`: legacy Office 365 connector, answers 200 `1`.
/// - `/statuspage/v1/pages/<page>/incidents[/<id>]`: Statuspage incidents (POST, PATCH, DELETE).
/// - `/pingdom/api/3.1/maintenance[/<id>]`: Pingdom maintenance windows (POST, PUT, DELETE).
/// - `POST /discord/api/webhooks/<id>/<token>`: Discord webhook with embeds.
/// - `POST /googlechat/v1/spaces/<space>/messages`: Google Chat incoming webhook (cardsV2, threads).
/// - `/pagerduty/maintenance_windows[/<id>]`, `/pagerduty/v2/change/enqueue`: PagerDuty REST and Events v2.
/// - `/datadog/api/v2/downtime[/<id>]`: Datadog downtimes (POST, PATCH, DELETE).
///
/// Each emulation refuses, with the vendor's status and error shape, what the vendor's own API
/// description refuses (shared/reference/vendor-specs/, cited beside each rule; `Shape` in
/// Emulation/SpecShape.swift): wrong methods, missing required headers, missing members, wrong
/// JSON types, values outside enums, lengths and sizes over the documented limits.
public final class Sink: Sendable {
    private struct State {
        var requests: [SinkRequest] = []
        var scripts: [String: [ScriptedResponse]] = [:]
        var vendors = VendorState()
        var recordHandle: FileHandle?
    }

    private let state: Mutex<State>
    private let printSummary: (@Sendable (String) -> Void)?
    /// Every vendor answer waits this long, so requests overlap visibly if a client sends two of
    /// one lane at once (the cluster test looks for that).
    private let answerDelay: Duration

    /// - Parameters:
    ///   - recordPath: a file that receives one JSON line per request (appended).
    ///   - answerDelay: how long every vendor request takes to answer.
    ///   - printSummary: called with a one-line summary of each request.
    public init(recordPath: String? = nil, answerDelay: Duration = .zero, printSummary: (@Sendable (String) -> Void)? = nil) throws {
        self.answerDelay = answerDelay
        var state = State()
        if let recordPath {
            if !FileManager.default.fileExists(atPath: recordPath) {
                guard FileManager.default.createFile(atPath: recordPath, contents: nil) else {
                    throw SinkError(description: "cannot create record file '\(recordPath)'")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: recordPath) else {
                throw SinkError(description: "cannot open record file '\(recordPath)' for writing")
            }
            handle.seekToEndOfFile()
            state.recordHandle = handle
        }
        self.state = Mutex(state)
        self.printSummary = printSummary
    }

    public struct SinkError: Error, CustomStringConvertible {
        public var description: String
    }

    public var requests: [SinkRequest] { state.withLock { $0.requests } }

    public func requests(vendor: String) -> [SinkRequest] { requests.filter { $0.vendor == vendor } }

    public func reset() { state.withLock { $0.requests.removeAll() } }

    /// The next requests to `path` get these answers, in order; after the last, the vendor's usual one.
    public func script(path: String, _ responses: [ScriptedResponse]) {
        state.withLock { $0.scripts[path, default: []].append(contentsOf: responses) }
    }

    public func clearScripts() { state.withLock { $0.scripts.removeAll() } }

    /// Waits until `count` requests matching `filter` have arrived, or the timeout passes.
    @discardableResult
    public func waitFor(
        _ count: Int, timeout: Duration = .seconds(10), where filter: @Sendable (SinkRequest) -> Bool = { _ in true }
    ) async -> [SinkRequest] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let matching = requests.filter(filter)
            if matching.count >= count || ContinuousClock.now >= deadline { return matching }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Serving

    public func respond(to request: Request, context: SinkRequestContext) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 16 * 1024 * 1024)
        let body = String(decoding: buffer.readableBytesView, as: UTF8.self)
        let path = request.uri.path
        if path == "/_sink/script" { return try control(method: request.method.rawValue, body: body) }
        let startedAt = Date()
        if answerDelay > .zero { try await Task.sleep(for: answerDelay) }
        if path.hasPrefix("/hang"), let seconds = request.uri.queryParameters.get("seconds", as: Double.self) {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        }
        var answer = route(method: request.method.rawValue, path: path, query: request.uri.query, body: body, headers: request.headers)
        let scripted = state.withLock { state -> ScriptedResponse? in
            guard var queue = state.scripts[path], !queue.isEmpty else { return nil }
            let next = queue.removeFirst()
            state.scripts[path] = queue
            return next
        }
        if let scripted {
            if scripted.hang == true { try await Task.sleep(for: .seconds(3600)) }
            if scripted.reset == true {
                // SO_LINGER 0 makes close send a TCP RST: the client sees "connection reset by peer".
                if let provider = context.channel as? any SocketOptionProvider {
                    try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                }
                try? await context.channel.close().get()
                throw CancellationError()
            }
            if let delay = scripted.delayMs { try await Task.sleep(for: .milliseconds(delay)) }
            answer.status = scripted.status
            if let body = scripted.body { answer.body = body }
            if let retryAfter = scripted.retryAfter { answer.headers.append(("Retry-After", retryAfter)) }
            // A scripted header replaces the vendor's own of the same name (a scripted rate limit wins).
            for (name, value) in scripted.headers ?? [:] {
                answer.headers.removeAll { $0.0.lowercased() == name.lowercased() }
                answer.headers.append((name, value))
            }
        }
        let recorded = state.withLock { state -> SinkRequest in
            let entry = SinkRequest(
                seq: state.requests.count + 1, receivedAt: Date(), startedAt: startedAt, vendor: answer.vendor, method: request.method.rawValue,
                path: path, query: request.uri.query, status: answer.status, contentType: request.headers[.contentType],
                authorization: request.headers[.authorization],
                headers: Dictionary(request.headers.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { first, _ in first }),
                body: body, answer: String(answer.body.prefix(2048))
            )
            state.requests.append(entry)
            if let handle = state.recordHandle {
                var redacted = entry
                redacted.authorization = entry.authorization.map { value in
                    (value.split(separator: " ").first.map(String.init) ?? "") + " <redacted>"
                }
                // Credentials sent in headers never reach the record file.
                for name in ["authorization", "dd-api-key", "dd-application-key"] { redacted.headers[name] = nil }
                if var line = try? JSONEncoder.patchbay().encode(redacted) {
                    line.append(0x0A)
                    handle.write(line)
                }
            }
            return entry
        }
        printSummary?(Self.summary(of: recorded))
        var headers = HTTPFields()
        headers[.contentType] = answer.contentType
        for (name, value) in answer.headers {
            if let fieldName = HTTPField.Name(name) { headers[fieldName] = value }
        }
        if answer.vendor == "endless" {
            // A vendor that never stops sending: 64 KiB chunks for up to 10 minutes, until the client hangs up.
            return Response(
                status: .init(code: answer.status), headers: headers,
                body: ResponseBody { writer in
                    let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                    let deadline = ContinuousClock.now + .seconds(600)
                    while ContinuousClock.now < deadline {
                        try await writer.write(chunk)
                    }
                    try await writer.finish(nil)
                })
        }
        return Response(
            status: .init(code: answer.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: answer.body)))
    }

    /// `POST /_sink/script {"path": "/slack/x", "responses": [{"status": 500}, ...]}` scripts
    /// answers from outside the process (demos, the crash script); `DELETE` clears every script.
    private func control(method: String, body: String) throws -> Response {
        struct Script: Decodable {
            var path: String
            var responses: [ScriptedResponse]
        }
        if method == "DELETE" {
            clearScripts()
            return Response(status: .ok)
        }
        guard method == "POST", let script = try? JSONDecoder().decode(Script.self, from: Data(body.utf8)) else {
            return Response(
                status: .badRequest,
                body: .init(byteBuffer: ByteBuffer(string: #"{"message":"expected {\"path\": ..., \"responses\": [{\"status\": 500}]}"}"#)))
        }
        self.script(path: script.path, script.responses)
        return Response(status: .ok)
    }

    struct Answer {
        var vendor: String
        var status: Int
        var body: String
        var contentType: String = "application/json"
        var headers: [(String, String)] = []
    }

    /// The vendor's answer to one request, without HTTP, scripts, delays or the record: for tests of
    /// the emulations. Header names are case-insensitive; invalid ones are left out.
    func emulate(_ method: String, _ path: String, query: String? = nil, body: String = "", headers: [String: String] = [:]) -> Answer {
        var fields = HTTPFields()
        for (name, value) in headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        return route(method: method, path: path, query: query, body: body, headers: fields)
    }

    /// The emulation the path's first segment names (`Sink.emulations`), under the sink's lock for
    /// the vendors that keep objects.
    private func route(method: String, path: String, query: String?, body: String, headers: HTTPFields) -> Answer {
        let parts = path.split(separator: "/").map(String.init)
        guard let first = parts.first, let emulation = Self.emulationsByPrefix[first] else { return Self.unknownPath }
        let request = EmulatedRequest(method: method, parts: Array(parts.dropFirst()), query: query, body: body, headers: headers)
        guard emulation.keepsObjects else {
            var nothingKept = VendorState()
            return emulation.emulate(request, state: &nothingKept)
        }
        return state.withLock { emulation.emulate(request, state: &$0.vendors) }
    }

    /// `slack  POST /slack/… 200  Patching Complete: web-1 (App1 - Production)`. Paths beyond the
    /// vendor segment are elided: for webhooks they are the credential.
    static func summary(of request: SinkRequest) -> String {
        let json = request.json
        let headline: String = {
            if let attachment = json?["attachments"], case .array(let items) = attachment, let first = items.first {
                if let fallback = first["fallback"]?.stringValue { return fallback }
                if let card = first["content"], case .array(let body)? = card["body"], let text = body.first?["text"]?.stringValue { return text }
            }
            if let summary = json?["summary"]?.stringValue { return summary }
            if let incident = json?["incident"] {
                return [incident["name"]?.stringValue, incident["status"]?.stringValue].compactMap { $0 }.joined(separator: " → ")
            }
            if let description = json?["description"]?.stringValue { return description }
            if case .array(let embeds)? = json?["embeds"], let title = embeds.first?["title"]?.stringValue { return title }
            if case .array(let cards)? = json?["cardsV2"], let title = cards.first?["card"]?["header"]?["title"]?.stringValue { return title }
            if let text = json?["maintenance_window"]?["description"]?.stringValue ?? json?["payload"]?["summary"]?.stringValue { return text }
            if let message = json?["data"]?["attributes"]?["message"]?.stringValue { return message }
            // A silence: its comment without the marker; the lookup before each create.
            if let comment = json?["comment"]?.stringValue { return comment.components(separatedBy: " [patchbay:").first ?? comment }
            if request.method == "GET", request.path.hasSuffix("/silences") { return "look up the maintenance's silence" }
            return ""
        }()
        let shortPath = "/" + (request.path.split(separator: "/").first.map(String.init) ?? "") + "/…"
        let vendor = request.vendor + String(repeating: " ", count: max(0, 10 - request.vendor.count))
        return "\(vendor) \(request.method) \(shortPath) \(request.status)  \(headline)"
    }
}

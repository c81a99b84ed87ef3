import Foundation
import Logging
import PatchbayCore
import PatchbaySink
import PatchbayTestSupport
import Testing

@testable import PatchbayCurl

@Suite("libcurl transport")
struct CurlTransportTests {
    static let canary = "canary-curl-7c1d9e"
    let transport = CurlTransport(redactor: Redactor(secrets: [Secret(canary)]), logger: Logger(label: "test"))
    let timeouts = TransportTimeouts(connect: .seconds(2), total: .seconds(5))

    func request(_ url: String, method: String = "POST", body: String = #"{"text":"hi"}"#, headers: [HTTPHeader] = []) -> OutboundRequest {
        OutboundRequest(
            method: method, url: Secret(url), displayURL: "test", headers: [HTTPHeader("Content-Type", "application/json")] + headers,
            body: Data(body.utf8))
    }

    func withSink(_ body: (RunningSink) async throws -> Void) async throws {
        let sink = try await RunningSink.start()
        do {
            try await body(sink)
        } catch {
            await sink.stop()
            throw error
        }
        await sink.stop()
    }

    @Test func postsTheExactBodyAndReadsTheResponse() async throws {
        try await withSink { sink in
            let body = #"{"text":"ünïcødé \"quoted\" <&>","n":1}"#
            let result = await transport.send(request("\(sink.baseURL)/slack/T/B/X", body: body), timeouts: timeouts)
            let response = try result.get()
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "ok")
            #expect(response.header("content-type")?.hasPrefix("text/plain") == true)
            let received = sink.sink.requests
            #expect(received.count == 1)
            #expect(received.first?.body == body)
            #expect(received.first?.method == "POST")
            #expect(received.first?.contentType == "application/json")
        }
    }

    @Test func otherMethodsAndResponseHeaders() async throws {
        try await withSink { sink in
            let auth = HTTPHeader("Authorization", "Bearer t0k3n", isSecret: true)
            let created = try await transport.send(
                request(
                    "\(sink.baseURL)/pingdom/api/3.1/maintenance", body: #"{"description":"d","from":4102444800,"to":4102448400}"#, headers: [auth]),
                timeouts: timeouts
            ).get()
            #expect(created.status == 200)
            #expect(created.header("Req-Limit-Short") == "Remaining: 394 Time until reset: 3589")
            let id = try JSONDecoder().decode(JSONValue.self, from: created.body)["maintenance"]?["id"]
            guard case .number(let number)? = id else {
                Issue.record("no id")
                return
            }
            let put = try await transport.send(
                request(
                    "\(sink.baseURL)/pingdom/api/3.1/maintenance/\(Int(number))", method: "PUT",
                    body: #"{"to":4102449000}"#, headers: [auth]), timeouts: timeouts
            ).get()
            #expect(put.status == 200)
            let delete = try await transport.send(
                request(
                    "\(sink.baseURL)/pingdom/api/3.1/maintenance/\(Int(number))", method: "DELETE",
                    body: "", headers: [auth]), timeouts: timeouts
            ).get()
            #expect(delete.status == 200)
            #expect(sink.sink.requests.map(\.method) == ["POST", "PUT", "DELETE"])
        }
    }

    @Test func redirectsAreNotFollowed() async throws {
        try await withSink { sink in
            let response = try await transport.send(request("\(sink.baseURL)/status/301"), timeouts: timeouts).get()
            #expect(response.status == 301)
            #expect(response.header("Location") == "http://127.0.0.1:1/elsewhere")
            #expect(sink.sink.requests.count == 1)
        }
    }

    @Test func aHangIsATimeout() async throws {
        try await withSink { sink in
            let started = ContinuousClock.now
            let result = await transport.send(
                request("\(sink.baseURL)/hang?seconds=5"),
                timeouts: TransportTimeouts(connect: .seconds(1), total: .milliseconds(300)))
            guard case .failure(let failure) = result else {
                Issue.record("expected a timeout, got \(result)")
                return
            }
            #expect(failure.kind == .timeout)
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func aResetConnectionIsATransportFailure() async throws {
        try await withSink { sink in
            sink.sink.script(path: "/slack/reset", [ScriptedResponse(reset: true)])
            let result = await transport.send(request("\(sink.baseURL)/slack/reset"), timeouts: timeouts)
            guard case .failure(let failure) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(failure.kind == .other)
            // The next request to the same path gets the usual answer.
            let next = try await transport.send(request("\(sink.baseURL)/slack/reset"), timeouts: timeouts).get()
            #expect(next.status == 200)
        }
    }

    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        try await withSink { sink in
            let started = ContinuousClock.now
            let task = Task { await transport.send(request("\(sink.baseURL)/hang?seconds=5"), timeouts: TransportTimeouts(total: .seconds(10))) }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let result = await task.value
            guard case .failure(let failure) = result else {
                Issue.record("expected a cancelled transfer")
                return
            }
            #expect(failure.message == "transfer cancelled")
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func refusedConnectionIsAConnectFailureWithoutSecrets() async {
        let port = unusedLoopbackPort()
        let result = await transport.send(request("http://127.0.0.1:\(port)/slack/\(Self.canary)"), timeouts: timeouts)
        guard case .failure(let failure) = result else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.kind == .connect)
        #expect(!failure.message.contains(Self.canary))
        #expect(!failure.message.isEmpty)
    }

    @Test func onlyHTTPSchemesAreAllowed() async {
        let result = await transport.send(request("file:///etc/passwd", method: "GET"), timeouts: timeouts)
        guard case .failure = result else {
            Issue.record("file:// must not be fetched")
            return
        }
    }

    @Test func connectionsAreReusedAndConcurrentSendsAllComplete() async throws {
        try await withSink { sink in
            let before = transport.newConnections
            for _ in 0..<20 {
                _ = try await transport.send(request("\(sink.baseURL)/slack/reuse"), timeouts: timeouts).get()
            }
            #expect(transport.newConnections - before <= 2, "20 sequential requests opened \(transport.newConnections - before) connections")
            let statuses = await withTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask { (try? await transport.send(request("\(sink.baseURL)/slack/c\(index)"), timeouts: timeouts).get().status) ?? -1 }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 50 && statuses.allSatisfy { $0 == 200 })
            #expect(sink.sink.requests.count == 70)
        }
    }

    @Test func anEndlessBodyIsCutAtTheKeptBytesAndTheStatusStillCounts() async throws {
        try await withSink { sink in
            let started = ContinuousClock.now
            let result = await transport.send(
                request("\(sink.baseURL)/endless", method: "GET", body: ""),
                timeouts: TransportTimeouts(connect: .seconds(2), total: .seconds(20)))
            let response = try result.get()
            #expect(response.status == 200, "a 200 with an endless body is a 200, not a timeout")
            #expect(response.body.count == CurlTransport.maxResponseBytes)
            #expect(ContinuousClock.now - started < .seconds(10), "the transfer stops once the kept bytes are in")
        }
    }

    /// The SSRF guard: checked on the address libcurl resolved, so a name pointing at loopback,
    /// a private network or the metadata service is refused too, before any byte is sent.
    @Test func aPublicOnlyRequestNeverReachesLoopback() async throws {
        try await withSink { sink in
            for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"] {
                var guarded = request("http://\(host):\(sink.port)/webhook/ssrf")
                guarded.destinations = .publicOnly
                let result = await transport.send(guarded, timeouts: timeouts)
                guard case .failure(let failure) = result else {
                    Issue.record("\(host): a loopback destination must be refused")
                    continue
                }
                #expect(failure.kind == .refused, "\(host): \(failure.message)")
            }
            #expect(sink.sink.requests.isEmpty, "nothing reached the loopback server")
            let allowed = await transport.send(request("\(sink.baseURL)/webhook/ssrf"), timeouts: timeouts)
            let status = try allowed.get().status
            #expect(status == 200, "the default policy still reaches it")
        }
    }

    /// CI once aborted with "deallocated with non-zero retain count": the transfer thread released
    /// its reference after `deinit` had returned. Dropping many transports at once, some after a
    /// transfer, some right away and from several tasks, must never abort the process.
    @Test func transportsDroppedAtOnceNeverOutliveTheirThread() async throws {
        try await withSink { sink in
            let url = "\(sink.baseURL)/slack/T/B/X"
            let statuses = await withTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let transport = CurlTransport(redactor: Redactor(secrets: []), logger: Logger(label: "test"))
                        guard index.isMultiple(of: 4) else { return 0 }
                        let result = await transport.send(request(url), timeouts: timeouts)
                        return (try? result.get().status) ?? -1
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 200)
            #expect(statuses.filter { $0 == 200 }.count == 50)
        }
    }

    /// Sends racing a shutdown all return: each is either sent, or failed by `send` or by the
    /// thread, never left in an inbox the stopped thread no longer reads.
    @Test(.timeLimit(.minutes(1)))
    func sendsRacingAShutdownAllReturn() async throws {
        try await withSink { sink in
            let url = "\(sink.baseURL)/slack/T/B/X"
            for _ in 0..<5 {
                let transport = CurlTransport(redactor: Redactor(secrets: []), logger: Logger(label: "test"))
                let finished = await withTaskGroup(of: Bool.self) { group in
                    for _ in 0..<100 {
                        group.addTask {
                            _ = await transport.send(request(url), timeouts: timeouts)
                            return true
                        }
                    }
                    group.addTask {
                        transport.shutdown()
                        return false
                    }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(finished == 100)
            }
        }
    }

    @Test func headerLinesAreSplitAndTrimmedAsBytes() {
        func parse(_ text: String) -> HeaderLine { Array(text.utf8).withUnsafeBytes { HeaderLine.parse($0) } }
        #expect(parse("HTTP/1.1 429 Too Many Requests\r\n") == .status)
        #expect(parse("Retry-After: 30\r\n") == .field(HTTPHeader("Retry-After", "30")))
        #expect(parse("X-Odd \t:\t  spaced: value \t\r\n") == .field(HTTPHeader("X-Odd", "spaced: value")))
        #expect(parse("X-Empty:\r\n") == .field(HTTPHeader("X-Empty", "")))
        #expect(parse("X-Ünïcødé: é\r\n") == .field(HTTPHeader("X-Ünïcødé", "é")))
        #expect(parse("\r\n") == .other)
        #expect(parse("no colon here\r\n") == .other)
    }

    @Test func destinationPolicyRanges() {
        let policy = DestinationPolicy.publicOnly
        func v4(_ text: String) -> UInt32 { text.split(separator: ".").reduce(0) { $0 << 8 | UInt32($1)! } }
        for refused in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255",
        ] {
            #expect(!policy.allows(ipv4: v4(refused)), "\(refused)")
        }
        for allowed in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1", "52.94.236.248"] {
            #expect(policy.allows(ipv4: v4(allowed)), "\(allowed)")
        }
        #expect(!policy.allows(ipv6: Array(repeating: 0, count: 15) + [1]), "::1")
        #expect(!policy.allows(ipv6: [0xFE, 0x80] + Array(repeating: 0, count: 14)), "fe80::")
        #expect(!policy.allows(ipv6: [0xFD, 0x00] + Array(repeating: 0, count: 14)), "fd00::")
        #expect(!policy.allows(ipv6: Array(repeating: 0, count: 10) + [0xFF, 0xFF, 169, 254, 169, 254]), "::ffff:169.254.169.254")
        #expect(policy.allows(ipv6: [0x26, 0x06, 0x47, 0x00] + Array(repeating: 0, count: 11) + [1]), "2606:4700::1")
        #expect(DestinationPolicy.any.allows(ipv4: v4("127.0.0.1")))
    }

    /// Forms that wrap an IPv4 address (a translator, a tunnel) are held to the IPv4 rules, and
    /// the deprecated ranges that still route somewhere private are refused (review F16).
    @Test func destinationPolicyKnowsTheWrappedForms() {
        let policy = DestinationPolicy.publicOnly
        func v6(_ text: String) -> [UInt8] {
            var address = in6_addr()
            precondition(inet_pton(AF_INET6, text, &address) == 1, text)
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        for refused in [
            "64:ff9b::a00:5", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::8.8.8.8", "::10.0.0.5", "::8.8.8.8",
            "2002:0a00:0005::1", "2002:c0a8:0101::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fec0::1", "feff::1", "100::1",
        ] {
            #expect(!policy.allows(ipv6: v6(refused)), "\(refused)")
        }
        for allowed in ["64:ff9b::808:808", "2002:0808:0808::1", "2001:db9::1", "2606:4700::1111", "2a00:1450:4001:80b::200e"] {
            #expect(policy.allows(ipv6: v6(allowed)), "\(allowed)")
        }
    }
}

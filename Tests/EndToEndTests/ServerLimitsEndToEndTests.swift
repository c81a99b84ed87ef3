import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

/// Hostile clients against the real binary: slowloris connections are closed, trickled bodies
/// answered 408, connections capped, tokens paced, and relay senders authenticated from their
/// headers before any body is read.
@Suite("End to end: server limits")
struct ServerLimitsEndToEndTests {
    static func config(sinkURL: String) -> String {
        ServerHarness.config(
            targets: """
                  ops-slack: {kind: slack, url: "\(sinkURL)/slack/T/B/limits", rate: {perSecond: 100, burst: 20}}
                """,
            routes: """
                  - match: {app: App1}
                    targets: [ops-slack]
                sources:
                  aws-events: {kind: eventbridge, apiKeyHeader: X-Patchbay-Key, apiKey: "eb-key-0123456789abcdef"}
                """
        ).replacingOccurrences(
            of: "  drainDelay: 0s",
            with: """
                  drainDelay: 0s
                  idleTimeout: 2s
                  readTimeout: 2s
                  maxConnections: 4
                  rateLimit: {perSecond: 1, burst: 3}
                """)
    }

    /// A raw TCP connection to the server, for requests no HTTP client would send.
    final class RawConnection: @unchecked Sendable {
        let fd: Int32

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw ChildProcessError(description: "connect failed") }
            var timeout = timeval(tv_sec: 8, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        func send(_ text: String) {
            _ = text.utf8CString.withUnsafeBufferPointer { Foundation.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        }

        /// Everything the server sends until it closes or `SO_RCVTIMEO` passes; nil on timeout with nothing read.
        func readAll() -> (text: String, closed: Bool) {
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 {
                    data.append(contentsOf: buffer[0..<count])
                    continue
                }
                return (String(decoding: data, as: UTF8.self), count == 0)
            }
        }

        /// The first bytes the server sends, as soon as they come.
        func readFirst() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
        }

        deinit { close(fd) }
    }

    @Test func slowlorisTrickledBodiesAndTheConnectionCap() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, _ in
            try await harness.start()
            // Headers that never finish: the connection is closed after idleTimeout.
            let slow = try RawConnection(port: harness.port)
            slow.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let started = Date()
            let (_, closed) = slow.readAll()
            #expect(closed, "the half-sent request is closed")
            #expect(Date().timeIntervalSince(started) < 6)

            // Headers trickled a byte at a time (each byte resets an idle timer): closed once the
            // head has not arrived within readTimeout.
            let trickledHead = try RawConnection(port: harness.port)
            trickledHead.send("GET /healthz HTTP/1.1\r\n")
            Task.detached {
                for _ in 0..<16 {
                    try? await Task.sleep(for: .milliseconds(400))
                    trickledHead.send("X")
                }
            }
            let headStart = Date()
            let (_, headClosed) = trickledHead.readAll()
            #expect(headClosed, "the trickling connection is closed")
            #expect(Date().timeIntervalSince(headStart) < 4.5, "closed after readTimeout, not kept alive by the trickle")

            // A body trickled too slowly: 408 after readTimeout.
            let trickle = try RawConnection(port: harness.port)
            trickle.send(
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(harness.token)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"type\":")
            let trickleStart = Date()
            Task.detached {
                for _ in 0..<6 {
                    try? await Task.sleep(for: .milliseconds(700))
                    trickle.send(" ")
                }
            }
            let answer = trickle.readAll()
            #expect(answer.text.hasPrefix("HTTP/1.1 408"), "\(answer.text.prefix(200))")
            #expect(Date().timeIntervalSince(trickleStart) < 6)

            // maxConnections: 4 connections that send nothing hold every slot; once they have
            // stalled (half a second), they are closed to make room, and a fifth request is
            // served at once instead of waiting out readTimeout in the listen backlog.
            let holders = try (0..<4).map { _ in try RawConnection(port: harness.port) }
            try await Task.sleep(for: .milliseconds(700))
            let probeStart = Date()
            let probe = try RawConnection(port: harness.port)
            probe.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let served = probe.readAll()
            #expect(served.text.hasPrefix("HTTP/1.1 200"))
            #expect(Date().timeIntervalSince(probeStart) < 1, "served within a second: the stalled connections were shed")
            #expect(holders.allSatisfy { $0.readAll().closed }, "the stalled holders were closed")
            #expect(try await harness.admin("GET", "/healthz").status == 200, "still serving")
        }
    }

    @Test func tokensArePacedAndRelaySendersAuthenticatedBeforeTheBody() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, _ in
            try await harness.start()
            let body = Data(
                #"{"type":"patch.started","app":"App1","environment":"Production","window":{"start":"2030-01-01T00:00:00Z","end":"2030-01-01T01:00:00Z"}}"#
                    .utf8)
            var statuses: [Int] = []
            for index in 0..<5 {
                statuses.append(try await harness.post(body, idempotencyKey: "paced-\(index)").status)
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == 202 }, "the burst of 3 goes through: \(statuses)")
            #expect(statuses.contains(429), "beyond the burst: 429 (\(statuses))")
            let metrics = try await harness.admin("GET", "/metrics")
            #expect(metrics.text.contains(#"patchbay_requests_rejected_total{reason="rate_limited"}"#))

            // A wrong EventBridge key announcing a 10 MB body gets its 401 at once, the body unread.
            let relay = try RawConnection(port: harness.port)
            relay.send(
                "POST /v1/relay/aws-events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Patchbay-Key: wrong-key-0123456789\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
            let started = Date()
            let answer = relay.readFirst()
            #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer.prefix(200))")
            #expect(Date().timeIntervalSince(started) < 1.5, "answered before any body arrived")
        }
    }
}

import Foundation
import Logging
import PatchbayCore
import PatchbayCurl
import PatchbayTestSupport

/// A real `patchbay serve` process on a free loopback port, with its own config and SQLite file.
final class ServerHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let token: String
    let configPath: String
    private(set) var server: ChildProcess?
    private(set) var port = 0
    private var starts = 0
    static let adminToken = "e2e-admin-token-0123456789"
    /// Reads whole answers: `/metrics` holds a series per (kind, outcome, reason), well over a
    /// vendor answer's 64 KiB.
    let client = CurlTransport(redactor: Redactor(secrets: []), logger: Logger(label: "e2e-client"), responseLimit: 8 * 1024 * 1024)

    init(config: String, token: String = "e2e-token-0123456789abcdef") throws {
        directory = try TemporaryDirectory("e2e")
        self.token = token
        configPath = directory.path("patchbay.yaml")
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    static func config(token: String = "e2e-token-0123456789abcdef", targets: String, routes: String, delivery: String = "") -> String {
        """
        server:
          listen: 127.0.0.1:0
          tokens: ["\(token)"]
          adminTokens: ["\(ServerHarness.adminToken)"]
          drainDelay: 0s
        store:
          sqlite: ./queue.db
        delivery:
          retry: {base: 100ms, cap: 1s, jitter: 0}
          pollInterval: 100ms
        \(delivery)
        targets:
        \(targets)
        routes:
        \(routes)
        """
    }

    func start(logLevel: String = "info", environment: [String: String] = [:]) async throws {
        starts += 1
        let child = try ChildProcess(
            arguments: ["serve", "--config", configPath, "--log-level", logLevel],
            environment: environment, directory: directory, name: "serve-\(starts)")
        server = child
        let portText = try await child.waitForOutput(matching: #"patchbay listening on http://127\.0\.0\.1:(\d+)"#)
        port = Int(portText)!
    }

    func post(_ body: Data, idempotencyKey: String? = nil, token: String? = nil) async throws -> (status: Int, body: JSONValue?) {
        var headers = [HTTPHeader("Content-Type", "application/json"), HTTPHeader("Authorization", "Bearer \(token ?? self.token)")]
        if let idempotencyKey { headers.append(HTTPHeader("Idempotency-Key", idempotencyKey)) }
        let request = OutboundRequest(
            method: "POST", url: Secret("http://127.0.0.1:\(port)/v1/events"), displayURL: "patchbay",
            headers: headers, body: body)
        let response = try await client.send(request, timeouts: TransportTimeouts(connect: .seconds(2), total: .seconds(10))).get()
        return (response.status, try? JSONDecoder().decode(JSONValue.self, from: response.body))
    }

    /// A GET or POST on the running server with the admin token.
    func admin(_ method: String, _ path: String) async throws -> (status: Int, body: JSONValue?, text: String) {
        let request = OutboundRequest(
            method: method, url: Secret("http://127.0.0.1:\(port)\(path)"), displayURL: "patchbay",
            headers: [HTTPHeader("Authorization", "Bearer \(Self.adminToken)")], body: Data())
        let response = try await client.send(request, timeouts: TransportTimeouts(connect: .seconds(2), total: .seconds(10))).get()
        return (response.status, try? JSONDecoder().decode(JSONValue.self, from: response.body), String(decoding: response.body, as: UTF8.self))
    }

    /// Runs a `patchbay` command against this harness's configuration.
    func cli(_ arguments: [String], name: String) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await ChildProcess.run(arguments + ["--config", configPath], directory: directory, name: name)
    }

    /// Deliveries as `patchbay deliveries list --json` reports them.
    func deliveries(_ filters: [String] = []) async throws -> [JSONValue] {
        let result = try await cli(["deliveries", "list", "--json"] + filters, name: "list-\(UUID().uuidString.prefix(6))")
        guard result.status == 0, case .array(let rows) = try JSONDecoder().decode(JSONValue.self, from: Data(result.stdout.utf8)) else {
            throw ChildProcessError(description: "deliveries list failed: \(result.stderr)")
        }
        return rows
    }

    /// All output the server processes wrote, across restarts.
    var allOutput: String {
        (1...max(starts, 1)).map { index in
            ["stdout", "stderr"].map { (try? String(contentsOfFile: directory.path("serve-\(index).\($0)"), encoding: .utf8)) ?? "" }.joined()
        }.joined()
    }

    func stop() async {
        server?.kill(SIGTERM)
        if await server?.waitForExit(timeout: .seconds(15)) == nil { server?.kill(SIGKILL) }
    }

    func cleanUp() async {
        await stop()
        client.shutdown()
        directory.remove()
    }
}

/// Runs `body` with a sink in this process and a harness built from `config(sinkURL)`, and tears
/// both down however `body` ends.
func withServerAndSink(
    config: (String) -> String,
    token: String = "e2e-token-0123456789abcdef",
    _ body: (ServerHarness, RunningSink) async throws -> Void
) async throws {
    let sink = try await RunningSink.start()
    let harness: ServerHarness
    do {
        harness = try ServerHarness(config: config(sink.baseURL), token: token)
    } catch {
        await sink.stop()
        throw error
    }
    do {
        try await body(harness, sink)
    } catch {
        await harness.cleanUp()
        await sink.stop()
        throw error
    }
    await harness.cleanUp()
    await sink.stop()
}

// The intake reference: a minimal Hummingbird server that decodes the same JSON event body as
// Patchbay's intake and answers 202, with nothing behind it (no validation, no store). Built
// beside Patchbay by Benchmarks/run.py so both are measured in the same run.
//   patchbay-bench-hello 127.0.0.1:8181
import Foundation
import Hummingbird
import Logging

struct Event: Decodable {
    struct Instance: Decodable { var id: String; var name: String? }
    struct Window: Decodable { var id: String?; var start: String; var end: String }
    var type: String
    var app: String
    var environment: String
    var instance: Instance?
    var window: Window
}

let address = CommandLine.arguments.dropFirst().first ?? "127.0.0.1:8181"
let parts = address.split(separator: ":")
guard parts.count == 2, let port = Int(parts[1]) else {
    FileHandle.standardError.write(Data("usage: patchbay-bench-hello HOST:PORT\n".utf8))
    exit(2)
}
let router = Router()
router.post("/v1/events") { request, context -> Response in
    let event = try await request.decode(as: Event.self, context: context)
    let body = ByteBuffer(string: "{\"id\":\"evt_\(event.app.count)\",\"deliveries\":0}")
    return Response(status: .accepted, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
}
var logger = Logger(label: "hello")
logger.logLevel = .error
let app = Application(router: router, configuration: .init(address: .hostname(String(parts[0]), port: port)), logger: logger)
try await app.runService()

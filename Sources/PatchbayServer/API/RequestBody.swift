import Foundation
import Hummingbird
import NIOCore

/// Reads a request body with both a size limit and a deadline: a sender trickling its body one
/// byte at a time gets a 408 when the deadline passes instead of holding a connection and memory.
enum RequestBody {
    enum Failure: Error {
        case tooLarge
        case timedOut
    }

    static func collect(_ request: Request, upTo limit: Int, within timeout: Duration) async throws(Failure) -> ByteBuffer {
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask {
                    var request = request
                    return try await request.collectBody(upTo: limit)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else { throw Failure.timedOut }
                return buffer
            }
        } catch let failure as Failure {
            throw failure
        } catch is NIOTooManyBytesError {
            throw .tooLarge
        } catch {
            // The connection went away while the body was read: nothing to answer, nothing stored.
            throw .timedOut
        }
    }

    static func timeoutError(_ timeout: Duration) -> APIError {
        APIError(.requestTimeout, code: "body_timeout",
                 message: "body: not received within \(Int(timeout.seconds)) s (server.readTimeout)")
    }
}

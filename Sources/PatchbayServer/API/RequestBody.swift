import Foundation
import Hummingbird
import NIOCore

/// Reads a request body up to a size limit. Its deadline is the server's, for every route
/// (`RequestReadDeadline`): a body trickled past `server.readTimeout` is answered 408 and its
/// connection closed, which ends this read too.
enum RequestBody {
    enum Failure: Error {
        case tooLarge
        /// The connection ended before the body did (the deadline, or the client went away).
        case cutShort
    }

    static func collect(_ request: Request, upTo limit: Int) async throws(Failure) -> ByteBuffer {
        do {
            var request = request
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw .tooLarge
        } catch {
            throw .cutShort
        }
    }

    static func timeoutError(_ timeout: Duration) -> APIError {
        APIError(
            .requestTimeout, code: "body_timeout",
            message: "body: not received within \(Int(timeout.seconds)) s (server.readTimeout)")
    }
}

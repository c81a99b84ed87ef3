import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PatchbayCore

/// `POST /v1/events`: agents report patch lifecycle events here.
struct EventRoutes {
    let intake: EventIntake
    let settings: ServerSettings
    let metrics: PatchbayMetrics
    /// Paces each token when `server.rateLimit` is set.
    let limiter: Pacer

    static let maxIdempotencyKeyLength = 200

    func register(on router: Router<PatchbayRequestContext>) {
        router.post("/v1/events") { request, context in
            try await accept(request, context: context)
        }
    }

    func accept(_ request: Request, context: PatchbayRequestContext) async throws -> Response {
        guard let sender = settings.matchedToken(request.headers[.authorization]) else {
            metrics.requestRejected(.unauthorized)
            throw APIError.unauthorized
        }
        if let rate = settings.rateLimit {
            // Keyed by which configured token matched, never by the header as sent: the same
            // token spelled `bearer` or with more spaces is the same sender. The table holds one
            // key per token, so it cannot grow with what senders make up.
            let key = "token:\(sender)"
            if case .later(let at) = limiter.reserve(key: key, policy: rate, now: Date(), maxWait: .zero) {
                metrics.requestRejected(.rateLimited)
                let wait = max(1, Int(at.timeIntervalSinceNow.rounded(.up)))
                throw APIError(
                    .tooManyRequests, code: "rate_limited",
                    message: "this token sends faster than server.rateLimit allows; retry in \(wait) s",
                    headers: [.retryAfter: String(wait)])
            }
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maxBodyBytes {
            metrics.requestRejected(.bodyTooLarge)
            throw APIError.bodyTooLarge(limit: settings.maxBodyBytes)
        }
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        // Printable ASCII only: bytes that are not valid UTF-8 would otherwise be decoded lossily,
        // and two different keys could collide.
        if let key,
            key.isEmpty || key.utf8.count > Self.maxIdempotencyKeyLength || !key.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) })
        {
            metrics.requestRejected(.invalidHeader)
            throw APIError(
                .badRequest, code: "invalid_header",
                message: "Idempotency-Key: must be 1 to \(Self.maxIdempotencyKeyLength) printable ASCII characters")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await RequestBody.collect(request, upTo: settings.maxBodyBytes)
        } catch .tooLarge {
            metrics.requestRejected(.bodyTooLarge)
            throw APIError.bodyTooLarge(limit: settings.maxBodyBytes)
        } catch .cutShort {
            metrics.requestRejected(.invalidHeader)
            throw RequestBody.timeoutError(settings.readTimeout)
        }
        let body = Data(buffer.readableBytesView)
        let outcome: EventIntake.Outcome
        do throws(IntakeError) {
            outcome = try await intake.accept(
                body: body, idempotencyKey: key, sender: "token:" + settings.name(ofToken: sender, in: settings.tokenNames, list: "tokens"),
                logger: context.logger)
        } catch {
            throw APIError(error)
        }
        switch outcome {
        case .accepted(let accepted):
            return JSONResponse.make(status: .accepted, body: accepted)
        case .replayed(let accepted):
            return JSONResponse.make(status: .accepted, body: accepted, headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
        }
    }
}

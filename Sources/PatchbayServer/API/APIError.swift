import Foundation
import Hummingbird
import PatchbayCore

/// An error that chooses its own HTTP response: a status and a JSON body that names the field and
/// the rule, so a sender can fix the request without reading server logs.
public struct APIError: Error, HTTPResponseError, Sendable {
    public struct Body: Codable, Sendable, Equatable {
        /// Stable machine-readable code: `invalid_event`, `unauthorized`, `body_too_large`, ...
        public var error: String
        public var message: String
        public var problems: [FieldProblem]?
    }

    public var status: HTTPResponse.Status
    public var body: Body
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, problems: [FieldProblem]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.body = Body(error: code, message: message, problems: problems)
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(status: status, body: body)
        response.headers.append(contentsOf: headers)
        return response
    }

    static let unauthorized = APIError(
        .unauthorized, code: "unauthorized",
        message: "missing or wrong bearer token: send 'Authorization: Bearer <token>' with a token from server.tokens",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    static let adminUnauthorized = APIError(
        .unauthorized, code: "unauthorized",
        message: "missing or wrong bearer token: the admin API takes 'Authorization: Bearer <token>' with a token from server.adminTokens",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    /// The store could not commit (disk full, database locked): nothing was accepted, try again.
    static let storeUnavailable = APIError(
        .serviceUnavailable, code: "store_unavailable",
        message: "the event could not be committed to the queue (the store is full or unavailable); nothing was accepted, retry later",
        headers: [.retryAfter: "5"]
    )

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "body_too_large", message: "body: larger than the \(limit)-byte limit (server.maxBodyBytes)")
    }

    /// Intake's refusals as the events API and the relay answer them.
    init(_ error: IntakeError) {
        switch error {
        case .invalidEvent(let problem):
            self = .invalid(problem)
        case .invalidRelayedEvent(let problem):
            self.init(
                .unprocessableContent, code: "invalid_event", message: "the relayed message does not make a valid event: \(problem)",
                problems: problem.problems)
        case .idempotencyConflict(let existing):
            self.init(
                .conflict, code: "idempotency_conflict",
                message: "Idempotency-Key: already used for event \(existing) with a different body; use a new key for a new event")
        case .duplicateMessage(let existing):
            self.init(.conflict, code: "duplicate", message: "this message id was already received as event \(existing), with another body")
        case .storeUnavailable:
            self = .storeUnavailable
        }
    }

    /// Operator input a query parser refused (`since`, `limit`, …): a 400 naming the parameter.
    init(_ problem: QueryProblem) {
        self.init(.badRequest, code: "invalid_parameter", message: problem.description)
    }

    static func invalid(_ error: EventValidationError) -> APIError {
        APIError(.badRequest, code: "invalid_event", message: error.description, problems: error.problems)
    }
}

enum JSONResponse {
    static func make(status: HTTPResponse.Status, body: some Encodable, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONEncoder.patchbay().encode(body)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PatchbayCore
import PatchbayRelay

/// `POST /v1/relay/{source}`: webhooks from other systems. Each source's signature is checked over
/// the raw bytes before anything is parsed; what the body means is then mapped to a lifecycle
/// event and committed like an agent's, deduplicated on the sender's own message id.
struct RelayRoutes {
    let sources: [String: RelaySource]
    let snsVerifiers: [String: SNSVerifier]
    let awsMapper: AWSEventMapper
    let intake: EventIntake
    let store: any RelayInboxStore
    let maxBodyBytes: Int
    let metrics: PatchbayMetrics
    var clock: @Sendable () -> Date = Date.init
    var readTimeout: Duration = .seconds(30)

    func register(on router: Router<PatchbayRequestContext>) {
        router.post("/v1/relay/:source") { request, context in
            let name = try context.parameters.require("source")
            do {
                return try await relay(request, source: name, logger: context.logger)
            } catch let rejection as RelayRejection {
                metrics.relayRejected(rejection.code.rawValue)
                context.logger.warning("relay request refused", metadata: ["relay.source": "\(name)", "reason": "\(rejection.code.rawValue)"])
                // SNS drops a message answered with a 4xx; a 503 asks for a retry, with Retry-After.
                throw APIError(
                    HTTPResponse.Status(code: rejection.status), code: rejection.code.rawValue, message: rejection.message,
                    headers: rejection.status == 503 ? [.retryAfter: "5"] : [:])
            } catch let error as IntakeError {
                let answer = APIError(error)
                metrics.relayRejected(answer.body.error)
                throw answer
            } catch let error as APIError {
                metrics.relayRejected(error.body.error)
                throw error
            } catch {
                // Anything unexpected is transient for the sender: SNS and EventBridge retry a 5xx.
                metrics.relayRejected("unavailable")
                context.logger.error("relay request failed; asked the sender to retry", metadata: ["relay.source": "\(name)"])
                throw APIError(
                    .serviceUnavailable, code: "unavailable", message: "could not store the message; retry later",
                    headers: [.retryAfter: "5"])
            }
        }
    }

    private func relay(_ request: Request, source name: String, logger: Logger) async throws -> Response {
        guard let source = sources[name] else {
            throw RelayRejection(.unknownSource, "source: no relay source named '\(name)' is configured")
        }
        let headers = request.headers
        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
        let verifier = RelayVerifier(source: source, clock: clock)
        // What can be checked from the headers alone (API keys, bearer tokens, signed timestamps)
        // is checked before a byte of the body is read.
        try verifier.verifyHeaders(header)
        let limit = source.maxBodyBytes.map { min($0, maxBodyBytes) } ?? maxBodyBytes
        if let length = header("Content-Length").flatMap(Int.init), length > limit {
            throw RelayRejection(.bodyTooLarge, "body: larger than the \(limit)-byte limit of this source")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await RequestBody.collect(request, upTo: limit)
        } catch .tooLarge {
            throw RelayRejection(.bodyTooLarge, "body: larger than the \(limit)-byte limit of this source")
        } catch .cutShort {
            throw RelayRejection(.bodyTimeout, "body: not received within \(Int(readTimeout.seconds)) s (server.readTimeout)")
        }
        let body = Data(buffer.readableBytesView)

        let dedupe = try verifier.verify(body: body, header: header)
        func key(_ id: String) -> String { RelayVerifier.idempotencyKey(source: name, id: id) }
        switch (source.kind, dedupe) {
        case (.sns(let topics, _), _):
            return try await relaySNS(body, source: name, topics: topics, logger: logger)
        case (.eventbridge, _):
            let json = try parseJSON(body)
            let dedupeID = key(json["id"]?.stringValue ?? body.sha256Hex)
            if let passed = try await passThrough(source, body: body, headers: headers, dedupeID: dedupeID, logger: logger) { return passed }
            return try await accept(awsMapper.map(eventBridge: json), source: name, body: body, logger: logger)
        case (.json(_, let mapping), _):
            let dedupeID = key(body.sha256Hex)
            if let passed = try await passThrough(source, body: body, headers: headers, dedupeID: dedupeID, logger: logger) { return passed }
            let json = try parseJSON(body)
            let event: JSONValue
            if let mapping {
                switch mapping.apply(to: json) {
                case .success(let mapped): event = mapped
                case .failure(let rejection): throw rejection
                }
            } else {
                event = json
            }
            return try await respond(
                intake.accept(json: event, digest: body.sha256Hex, idempotencyKey: dedupeID, sender: "relay:" + name, logger: logger))
        case (_, .id(let id)):
            let dedupeID = key(id)
            if let passed = try await passThrough(source, body: body, headers: headers, dedupeID: dedupeID, logger: logger) { return passed }
            return try await acceptPatchbayEvent(body, dedupeID: dedupeID, source: name, logger: logger)
        case (_, _):
            // Deduplicated on the signed body (GitHub, Slack).
            let dedupeID = key(body.sha256Hex)
            if let passed = try await passThrough(source, body: body, headers: headers, dedupeID: dedupeID, logger: logger) { return passed }
            return try await acceptPatchbayEvent(body, dedupeID: dedupeID, source: name, logger: logger)
        }
    }

    private func relaySNS(_ body: Data, source name: String, topics: [String], logger: Logger) async throws -> Response {
        let message = try SNSMessage(json: try parseJSON(body))
        guard topics.contains(message.topicArn) else {
            throw RelayRejection(.unexpectedTopic, "TopicArn: \(message.topicArn) is not one of this source's topics")
        }
        guard let verifier = snsVerifiers[name] else {
            throw RelayRejection(.misconfigured, "this SNS source has no certificate verifier; retry later")
        }
        try await verifier.verify(message)
        switch message.type {
        case .subscriptionConfirmation:
            try await verifier.confirmSubscription(message)
            logger.notice("SNS subscription confirmed", metadata: ["relay.source": "\(name)", "sns.topic": "\(message.topicArn)"])
            return JSONResponse.make(status: .ok, body: ["status": "subscription confirmed"])
        case .unsubscribeConfirmation:
            logger.notice("SNS unsubscribe confirmation received", metadata: ["relay.source": "\(name)"])
            return JSONResponse.make(status: .ok, body: ["status": "ignored"])
        case .notification:
            let dedupeID = RelayVerifier.idempotencyKey(source: name, id: message.messageID)
            if let passed = try await passThrough(sources[name]!, body: body, headers: [:], dedupeID: dedupeID, logger: logger) {
                return passed
            }
            let inner = (try? JSONDecoder().decode(JSONValue.self, from: Data(message.message.utf8))) ?? .null
            let result: AWSMappingResult
            if inner["detail-type"] != nil {
                result = awsMapper.map(eventBridge: inner)
            } else if inner["documentName"] != nil {
                result = awsMapper.map(runCommand: inner, dedupeID: message.messageID)
            } else if inner["type"] != nil, inner["app"] != nil {
                result = .event(inner, dedupeID: message.messageID)
            } else {
                result = .ignored("the SNS message is not an SSM event, a Run Command notification or a Patchbay event")
            }
            if case .event(let json, _) = result {
                return try await respond(
                    intake.accept(
                        json: json, digest: Data(message.message.utf8).sha256Hex, idempotencyKey: dedupeID, sender: "relay:" + name,
                        logger: logger))
            }
            return try await accept(result, source: name, body: Data(message.message.utf8), logger: logger)
        }
    }

    /// For a source with `passthrough:`, queues the verified body unchanged for its webhook targets.
    private func passThrough(_ source: RelaySource, body: Data, headers: HTTPFields, dedupeID: String, logger: Logger) async throws -> Response? {
        guard !source.passthrough.isEmpty else { return nil }
        let message = RelayedMessage(source: source.name, contentType: headers[.contentType] ?? "application/json", body: body)
        return try respond(await intake.acceptRelayed(message, dedupeID: dedupeID, targets: source.passthrough, logger: logger))
    }

    /// A body that must itself be a Patchbay event (standard-webhooks, github, slack sources).
    private func acceptPatchbayEvent(_ body: Data, dedupeID: String, source: String, logger: Logger) async throws -> Response {
        try await respond(
            intake.accept(json: try parseJSON(body), digest: body.sha256Hex, idempotencyKey: dedupeID, sender: "relay:" + source, logger: logger))
    }

    private func accept(_ result: AWSMappingResult, source: String, body: Data, logger: Logger) async throws -> Response {
        switch result {
        case .event(let json, let dedupeID):
            return try await respond(
                intake.accept(
                    json: json, digest: body.sha256Hex,
                    idempotencyKey: RelayVerifier.idempotencyKey(source: source, id: dedupeID), sender: "relay:" + source, logger: logger))
        case .ignored(let reason):
            logger.info("relayed message ignored", metadata: ["relay.source": "\(source)", "reason": "\(reason)"])
            return JSONResponse.make(status: .accepted, body: ["status": "ignored", "reason": reason])
        case .unmapped(let reason):
            try await store.recordUnmapped(source: source, dedupeID: nil, reason: reason, body: String(decoding: body, as: UTF8.self), at: Date())
            metrics.relayRejected("unmapped")
            logger.warning(
                "relayed lifecycle event maps to no app; stored for review", metadata: ["relay.source": "\(source)", "reason": "\(reason)"])
            return JSONResponse.make(status: .accepted, body: ["status": "unmapped", "reason": reason])
        }
    }

    private func respond(_ outcome: EventIntake.Outcome) throws -> Response {
        switch outcome {
        case .accepted(let accepted):
            return JSONResponse.make(status: .accepted, body: accepted)
        case .replayed(let accepted):
            // A sender's retry of a message already stored. Standard Webhooks, Svix, GitHub and SNS
            // all treat any non-2xx as a failure and retry for days, so a duplicate is a 200.
            metrics.relayRejected("duplicate")
            return JSONResponse.make(status: .ok, body: ["status": "duplicate", "id": accepted.id])
        }
    }

    private func parseJSON(_ body: Data) throws -> JSONValue {
        guard let json = try? JSONValue.parse(body) else {
            throw RelayRejection.malformed("body: is not valid JSON")
        }
        return json
    }
}

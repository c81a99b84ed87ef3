import Foundation

/// A leased delivery as both stores read it back: plain columns, the event still in its stored
/// form. The backends only select and lease rows; turning them into claims is decided once, here.
public struct StoredClaim: Sendable {
    public var id: String
    public var eventID: String
    public var target: String
    public var targetKind: String
    public var displayTimeZone: String
    /// 1 for the first attempt (the lease already counted).
    public var attempt: Int
    public var createdAt: Date
    public var leaseToken: String
    /// The route resources as stored (`StoredJSON`).
    public var resources: String?
    public var throttles: Int
    /// The event (or relayed message) as stored, and the event's type column.
    public var payload: String
    public var eventType: String
    public var receivedAt: Date

    public init(
        id: String, eventID: String, target: String, targetKind: String, displayTimeZone: String, attempt: Int, createdAt: Date,
        leaseToken: String, resources: String?, throttles: Int, payload: String, eventType: String, receivedAt: Date
    ) {
        self.id = id
        self.eventID = eventID
        self.target = target
        self.targetKind = targetKind
        self.displayTimeZone = displayTimeZone
        self.attempt = attempt
        self.createdAt = createdAt
        self.leaseToken = leaseToken
        self.resources = resources
        self.throttles = throttles
        self.payload = payload
        self.eventType = eventType
        self.receivedAt = receivedAt
    }
}

/// How a stored event payload is read back, by every store and for every caller (claims, the
/// operators' detail view): an agent's event, or a relayed body with its placeholder event.
public enum StoredPayload {
    public static func decode(_ payload: String, type: String, eventID: String, receivedAt: Date) throws -> (PatchEvent, RelayedMessage?) {
        let decoder = JSONDecoder.patchbay()
        if type == RelayedMessage.eventType {
            let message = try decoder.decode(RelayedMessage.self, from: Data(payload.utf8))
            return (message.placeholderEvent(eventID: eventID, receivedAt: receivedAt), message)
        }
        return (try decoder.decode(PatchEvent.self, from: Data(payload.utf8)), nil)
    }
}

/// Leased rows sorted into claims and rows that can never be sent. A row whose event cannot be
/// decoded must be made dead with its reason and never leased again: it would otherwise be
/// claimed for ever and hold up every later delivery of its lane. Each store writes the
/// `undecodable` rows as dead (an attempt with `DeliveryReason.undecodable`, state `dead`).
public struct ClaimTriage: Sendable {
    public struct Undecodable: Sendable, Equatable {
        public var deliveryID: String
        public var attempt: Int
        /// The attempt's response excerpt: why the event could not be read, bounded.
        public var explanation: String

        /// A row whose columns (not only its payload) could not be read.
        public init(deliveryID: String, attempt: Int, error: any Error) {
            self.deliveryID = deliveryID
            self.attempt = attempt
            self.explanation = "the stored event cannot be read back: \(String(describing: error).prefix(300))"
        }
    }

    public var claims: [ClaimedDelivery] = []
    public var undecodable: [Undecodable] = []

    /// `rows` in the order the claims are handed out (oldest due first).
    public init(_ rows: [StoredClaim]) {
        for row in rows {
            do {
                let (event, relayed) = try StoredPayload.decode(
                    row.payload, type: row.eventType, eventID: row.eventID,
                    receivedAt: row.receivedAt)
                claims.append(
                    ClaimedDelivery(
                        id: row.id, eventID: row.eventID, target: row.target, targetKind: row.targetKind,
                        displayTimeZone: row.displayTimeZone, attempt: row.attempt, event: event, createdAt: row.createdAt,
                        leaseToken: row.leaseToken, resources: StoredJSON.decodeList(row.resources), throttles: row.throttles,
                        relayed: relayed, encodedEvent: relayed == nil ? Data(row.payload.utf8) : nil
                    ))
            } catch {
                undecodable.append(Undecodable(deliveryID: row.id, attempt: row.attempt, error: error))
            }
        }
    }
}

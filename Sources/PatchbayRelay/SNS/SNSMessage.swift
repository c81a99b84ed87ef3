import Foundation
import PatchbayCore

/// An SNS HTTP(S) delivery: a notification or a (un)subscription confirmation, as JSON.
public struct SNSMessage: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case notification = "Notification"
        case subscriptionConfirmation = "SubscriptionConfirmation"
        case unsubscribeConfirmation = "UnsubscribeConfirmation"
    }

    public var type: Kind
    public var messageID: String
    public var topicArn: String
    public var subject: String?
    public var message: String
    public var timestamp: String
    public var signatureVersion: String
    public var signature: String
    public var signingCertURL: String
    public var subscribeURL: String?
    public var token: String?

    public init(json: JSONValue) throws(RelayRejection) {
        func field(_ name: String) throws(RelayRejection) -> String {
            guard let value = json[name]?.stringValue, !value.isEmpty else { throw .malformed("\(name): missing from the SNS message") }
            return value
        }
        guard let type = Kind(rawValue: try field("Type")) else {
            throw .malformed("Type: expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation")
        }
        self.type = type
        messageID = try field("MessageId")
        topicArn = try field("TopicArn")
        subject = json["Subject"]?.stringValue
        message = json["Message"]?.stringValue ?? ""
        timestamp = try field("Timestamp")
        signatureVersion = try field("SignatureVersion")
        signature = try field("Signature")
        signingCertURL = try field("SigningCertURL")
        subscribeURL = json["SubscribeURL"]?.stringValue
        token = json["Token"]?.stringValue
        if type != .notification, subscribeURL == nil || token == nil {
            throw .malformed("SubscribeURL and Token: required in a \(type.rawValue)")
        }
    }

    /// `Name\nValue\n` for each signed field, in the order AWS documents for the message type.
    public var stringToSign: String {
        var pairs: [(String, String?)] = [("Message", message), ("MessageId", messageID)]
        switch type {
        case .notification:
            pairs += [("Subject", subject), ("Timestamp", timestamp), ("TopicArn", topicArn), ("Type", type.rawValue)]
        case .subscriptionConfirmation, .unsubscribeConfirmation:
            pairs += [("SubscribeURL", subscribeURL), ("Timestamp", timestamp), ("Token", token), ("TopicArn", topicArn), ("Type", type.rawValue)]
        }
        return pairs.compactMap { name, value in value.map { "\(name)\n\($0)\n" } }.joined()
    }
}

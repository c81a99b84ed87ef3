import Crypto
import Foundation
import PatchbayCore
import PatchbayRelay
import X509
import _CryptoExtras

/// A test signing key and certificate standing in for SNS's, made fresh by the tests.
public struct TestSNSSigner: Sendable {
    public let key: _RSA.Signing.PrivateKey
    public let certificatePEM: String

    public init() throws {
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let name = try DistinguishedName { CommonName("sns.test.invalid") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86400),
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption, extensions: .init(),
            issuerPrivateKey: .init(key)
        )
        certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// An SNS notification JSON signed with SignatureVersion 1 or 2.
    public func notification(
        message: String, topic: String, certURL: String, version: String = "2", messageID: String = UUID().uuidString,
        subject: String? = "Patch run"
    ) throws -> [String: String] {
        var fields: [String: String] = [
            "Type": "Notification", "MessageId": messageID, "TopicArn": topic, "Message": message,
            "Timestamp": Timestamp.rfc3339(Date()), "SignatureVersion": version, "SigningCertURL": certURL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        ]
        if let subject { fields["Subject"] = subject }
        fields["Signature"] = try sign(fields)
        return fields
    }

    public func confirmation(topic: String, certURL: String, subscribeURL: String) throws -> [String: String] {
        var fields: [String: String] = [
            "Type": "SubscriptionConfirmation", "MessageId": UUID().uuidString, "TopicArn": topic, "Token": "tok123",
            "Message": "You have chosen to subscribe to the topic \(topic).", "SubscribeURL": subscribeURL,
            "Timestamp": Timestamp.rfc3339(Date()), "SignatureVersion": "2", "SigningCertURL": certURL,
        ]
        fields["Signature"] = try sign(fields)
        return fields
    }

    public func sign(_ fields: [String: String]) throws -> String {
        let json = JSONValue.object(fields.mapValues(JSONValue.string))
        let content = Data(try SNSMessage(jsonIgnoringSignature: json).stringToSign.utf8)
        let signature =
            fields["SignatureVersion"] == "1"
            ? try key.signature(for: Insecure.SHA1.hash(data: content), padding: .insecurePKCS1v1_5)
            : try key.signature(for: SHA256.hash(data: content), padding: .insecurePKCS1v1_5)
        return signature.rawRepresentation.base64EncodedString()
    }
}

extension SNSMessage {
    public init(jsonIgnoringSignature json: JSONValue) throws {
        guard case .object(var fields) = json else { throw RelayRejection.malformed("not an object") }
        fields["Signature"] = .string("unsigned")
        try self.init(json: .object(fields))
    }
}

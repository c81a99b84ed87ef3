import Foundation
import PatchbayCore

/// Which app and environment AWS resources belong to: `awsMapping:` in the config.
public struct AWSMapping: Sendable, Equatable {
    public struct System: Sendable, Equatable {
        public var app: String
        public var environment: String

        public init(app: String, environment: String) {
            self.app = app
            self.environment = environment
        }
    }

    /// By maintenance window id (`mw-…`).
    public var windows: [String: System]
    /// By SSM document name (`AWS-RunPatchBaseline`).
    public var documents: [String: System]

    public init(windows: [String: System] = [:], documents: [String: System] = [:]) {
        self.windows = windows
        self.documents = documents
    }

    /// Reads `awsMapping: {windows: {mw-…: {app, environment}}, documents: {…}}`.
    public init(section: ConfigSection?) {
        self.init()
        guard let section else { return }
        section.allowOnly(["windows", "documents"])
        func read(_ key: String) -> [String: System] {
            var result: [String: System] = [:]
            for (name, entry) in section.section(key)?.namedSections() ?? [] {
                entry.allowOnly(["app", "environment"])
                if let app = entry.string("app", required: true), let environment = entry.string("environment", required: true) {
                    result[name] = System(app: app, environment: environment)
                }
            }
            return result
        }
        windows = read("windows")
        documents = read("documents")
    }
}

/// What an AWS event means for Patchbay.
public enum AWSMappingResult: Sendable, Equatable {
    /// A lifecycle event (a Patchbay event body) and the sender's id to dedupe on.
    case event(JSONValue, dedupeID: String)
    /// An AWS event with no lifecycle meaning (a compliance change, a window being disabled).
    case ignored(String)
    /// A lifecycle event Patchbay cannot place: no app and environment configured for it.
    case unmapped(String)
}

/// Turns Systems Manager events (EventBridge, and Run Command notifications through SNS) into
/// lifecycle events. In progress → started, success → completed, failed or timed out → failed,
/// cancelled (either spelling) → cancelled; the rest is ignored, with the reason.
public struct AWSEventMapper: Sendable {
    public let mapping: AWSMapping
    /// Used as the window's length when an event gives only a start.
    public static let assumedWindow: TimeInterval = 3600

    public init(mapping: AWSMapping) {
        self.mapping = mapping
    }

    static func lifecycle(_ status: String) -> EventType? {
        switch status.uppercased().replacingOccurrences(of: "_", with: "") {
        case "INPROGRESS": .started
        case "SUCCESS": .completed
        case "FAILED", "TIMEDOUT": .failed
        case "CANCELLED", "CANCELED": .cancelled
        default: nil
        }
    }

    /// An EventBridge event, as delivered by an API destination (or inside an SNS message).
    public func map(eventBridge event: JSONValue) -> AWSMappingResult {
        guard let detailType = event["detail-type"]?.stringValue, let detail = event["detail"] else {
            return .ignored("not an EventBridge event: no detail-type")
        }
        let id = event["id"]?.stringValue ?? UUID().uuidString
        let status = detail["status"]?.stringValue ?? ""
        switch detailType {
        case "Maintenance Window Execution State-change Notification":
            guard let type = Self.lifecycle(status) else { return .ignored("maintenance window execution status \(status) is not a lifecycle step") }
            let windowIDs = [detail["window-id"]?.stringValue].compactMap { $0 } + Self.resourceIDs(event, prefix: "maintenancewindow/")
            guard let system = windowIDs.lazy.compactMap({ mapping.windows[$0] }).first else {
                return .unmapped("no awsMapping.windows entry for \(windowIDs.joined(separator: " or "))")
            }
            let start = detail["start-time"]?.stringValue ?? event["time"]?.stringValue
            return build(
                type: type, system: system, instance: nil,
                windowID: detail["window-execution-id"]?.stringValue ?? windowIDs.first,
                start: start, end: detail["end-time"]?.stringValue, occurredAt: event["time"]?.stringValue,
                details: ["source": .string("aws.ssm maintenance window"), "status": .string(status)], dedupeID: id)
        case "EC2 Command Status-change Notification", "EC2 Command Invocation Status-change Notification":
            guard let type = Self.lifecycle(status) else { return .ignored("command status \(status) is not a lifecycle step") }
            let document = detail["document-name"]?.stringValue ?? ""
            guard let system = mapping.documents[document] else { return .unmapped("no awsMapping.documents entry for \(document)") }
            let instance = detail["instance-id"]?.stringValue
            return build(
                type: type, system: system, instance: instance, windowID: detail["command-id"]?.stringValue,
                start: detail["requested-date-time"]?.stringValue, end: detail["expire-after"]?.stringValue,
                occurredAt: event["time"]?.stringValue,
                details: ["source": .string("aws.ssm run command"), "document": .string(document), "status": .string(status)],
                dedupeID: id)
        case "Configuration Compliance State Change":
            return .ignored("compliance changes are not patch lifecycle events (they fire on a state change, not per run)")
        default:
            return .ignored("\(detailType) is not a patch lifecycle event")
        }
    }

    /// A Run Command notification (command summary or invocation), the `Message` of an SNS notification.
    public func map(runCommand message: JSONValue, dedupeID: String) -> AWSMappingResult {
        guard let document = message["documentName"]?.stringValue, let status = message["status"]?.stringValue else {
            return .ignored("not a Run Command notification: no documentName and status")
        }
        guard let type = Self.lifecycle(status) else { return .ignored("command status \(status) is not a lifecycle step") }
        guard let system = mapping.documents[document] else { return .unmapped("no awsMapping.documents entry for \(document)") }
        return build(
            type: type, system: system, instance: message["instanceId"]?.stringValue, windowID: message["commandId"]?.stringValue,
            start: message["requestedDateTime"]?.stringValue, end: message["expiresAfter"]?.stringValue,
            occurredAt: message["eventTime"]?.stringValue,
            details: ["source": .string("aws.ssm run command via sns"), "document": .string(document), "status": .string(status)],
            dedupeID: dedupeID)
    }

    private func build(
        type: EventType, system: AWSMapping.System, instance: String?, windowID: String?, start: String?, end: String?,
        occurredAt: String?, details: [String: JSONValue], dedupeID: String
    ) -> AWSMappingResult {
        guard let start, let startDate = Timestamp.parseRFC3339(start) else { return .ignored("the event carries no start time") }
        var endDate = end.flatMap(Timestamp.parseRFC3339) ?? startDate.addingTimeInterval(Self.assumedWindow)
        if endDate <= startDate { endDate = startDate.addingTimeInterval(Self.assumedWindow) }
        var window: [String: JSONValue] = ["start": .string(Timestamp.rfc3339(startDate)), "end": .string(Timestamp.rfc3339(endDate))]
        if let windowID { window["id"] = .string(windowID) }
        var event: [String: JSONValue] = [
            "type": .string(type.rawValue), "app": .string(system.app), "environment": .string(system.environment),
            "window": .object(window), "details": .object(details),
        ]
        if let instance { event["instance"] = .object(["id": .string(instance)]) }
        if let occurredAt, let date = Timestamp.parseRFC3339(occurredAt) { event["occurredAt"] = .string(Timestamp.rfc3339(date)) }
        return .event(.object(event), dedupeID: dedupeID)
    }

    /// IDs at the end of resource ARNs: `arn:…:maintenancewindow/mw-…` → `mw-…`.
    static func resourceIDs(_ event: JSONValue, prefix: String) -> [String] {
        guard case .array(let resources)? = event["resources"] else { return [] }
        return resources.compactMap { $0.stringValue }.compactMap { arn in
            arn.range(of: prefix).map { String(arn[$0.upperBound...]) }
        }
    }
}

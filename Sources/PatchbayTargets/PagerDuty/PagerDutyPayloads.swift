import Foundation
import PatchbayCore

/// `{"maintenance_window": {...}}`: the spec wraps the window on create and on update [PD1]
/// (go-pagerduty PUTs it bare [PD5]; whether both are accepted is unconfirmed, so we follow the spec).
struct PagerDutyWindowBody: Encodable {
    struct ServiceReference: Encodable, Equatable {
        var id: String
        var type = "service_reference"
    }

    struct Window: Encodable {
        var type = "maintenance_window"
        /// Encoded as RFC 3339 UTC (`Z`) by `JSONEncoder.patchbay()`; PagerDuty reads any offset [PD1].
        var startTime: Date
        var endTime: Date
        var description: String
        var services: [ServiceReference]

        enum CodingKeys: String, CodingKey {
            case type, description, services
            case startTime = "start_time"
            case endTime = "end_time"
        }
    }

    var maintenanceWindow: Window

    enum CodingKeys: String, CodingKey {
        case maintenanceWindow = "maintenance_window"
    }
}

/// An Events API v2 change event [PE1][PE2]. `routingKey` is the credential: the body as a whole
/// must be treated as secret-bearing (the target lists the key in `secrets` for the redactor).
struct PagerDutyChangeEvent: Encodable {
    struct Payload: Encodable {
        /// ≤ 1024 characters [PE1].
        var summary: String
        var source: String
        var timestamp: Date
        var customDetails: Details

        enum CodingKeys: String, CodingKey {
            case summary, source, timestamp
            case customDetails = "custom_details"
        }
    }

    /// Optional fields are left out of the JSON when nil.
    struct Details: Encodable {
        var app: String
        var environment: String
        var instance: String?
        var window: String?
        var packages: [String]
        /// How many of the instance's packages `packages` leaves out.
        var packagesNotListed: Int?
        var reason: String?

        enum CodingKeys: String, CodingKey {
            case app, environment, instance, window, packages, reason
            case packagesNotListed = "packages_not_listed"
        }
    }

    /// `links[].href` is required per link [PE1]; we send none.
    struct Link: Encodable {
        var href: String
        var text: String?
    }

    var routingKey: String
    var payload: Payload
    var links: [Link] = []

    enum CodingKeys: String, CodingKey {
        case payload, links
        case routingKey = "routing_key"
    }
}

import Foundation
import PatchbayCore

/// Grafana Alerting silences (`kind: grafana`): Grafana serves Alertmanager's v2 silence API
/// for its own alert manager under `/api/alertmanager/grafana/api/v2/` (and for an external one
/// under `/api/alertmanager/<datasource uid>/api/v2/`), so the lifecycle is `SilenceAPI`'s. A
/// create answers 202 with `silenceID` (older versions: `{"message": ..., "id": ...}`).
///
/// Config: `targets.<name>: {kind: grafana, url: https://grafana.example.com, token:
/// ${GRAFANA_TOKEN}}` (a service account token with `alert.silences:create` and `:write`;
/// `username`/`password` also work; `orgId` picks the organisation; `datasource` an external
/// alert manager). Route: `routes[].grafana: {target, matchers: [...], instances: {...}}`.
public struct GrafanaTarget: SilenceAPITarget {
    public static let kind = "grafana"
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 10, burst: 10))
    public static let traits = TargetKindTraits(
        kind: kind, routeResource: SilenceAPI.routeResourceKey(routeKey: "grafana"), keepsMaintenanceObject: true)

    public let name: String
    public let api: SilenceAPI
    private let credentials: [Secret]
    public var kind: String { Self.kind }
    public var secrets: [Secret] { credentials }

    public init(name: String, connection: MonitorConnection, datasource: String = "grafana", orgID: String? = nil) {
        self.name = name
        self.credentials = connection.secrets
        var headers = connection.headers
        if let orgID { headers.append(HTTPHeader("X-Grafana-Org-Id", orgID)) }
        self.api = SilenceAPI(
            urls: connection.urls, apiPath: "/api/alertmanager/\(VendorID.pathSegment(datasource))/api/v2", headers: headers,
            createdBy: "Patchbay", vendor: "Grafana",
            link: { base, id in
                SilenceAPI.page(base, "/alerting/silence/" + VendorID.pathSegment(id) + "/edit")
            })
    }

    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(MonitorConnection.keys).union(["orgId", "datasource"]))
        let datasource = section.string("datasource") ?? "grafana"
        if !VendorID.isValid(datasource, extra: ["-", "_"]) {
            section.report("datasource", "expected a datasource uid (letters, digits, - and _), got '\(datasource)'")
            return nil
        }
        let orgID = section.string("orgId")
        if let orgID, Int(orgID) == nil {
            section.report("orgId", "expected a number, got '\(orgID)'")
            return nil
        }
        guard let connection = MonitorConnection(section: section) else { return nil }
        self.init(name: name, connection: connection, datasource: datasource, orgID: orgID)
    }
}

import Foundation
import PatchbayCore

/// Prometheus Alertmanager silences (`kind: alertmanager`, API v2): one silence per maintenance
/// for the route's matchers, following the window, and with `instances` one per server from its
/// `started` report until `clearAfter` after its outcome, so nobody is paged while servers
/// reboot. The lifecycle and the requests are `SilenceAPI`'s, shared with Grafana.
///
/// Config: `targets.<name>: {kind: alertmanager, url: http://alertmanager:9093}` (or `urls:`
/// for an HA cluster, tried in order when one cannot be reached; `token` or `username` and
/// `password` when a proxy or `--web.config.file` asks for them; `caFile` for a private CA;
/// `createdBy`, default `Patchbay`). Route: `routes[].alertmanager: {target, matchers:
/// ['app="App1"'], clearAfter: 10m, instances: {matcher: 'instance=~"{{instance.name}}(:[0-9]+)?"', clearAfter: 10m}}`.
public struct AlertmanagerTarget: SilenceAPITarget {
    public static let kind = "alertmanager"
    /// Alertmanager publishes no rate limit; a silence per server report stays far below what
    /// one instance takes, and a pace keeps a burst of reports from crowding its API.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 20, burst: 20))
    public static let traits = TargetKindTraits(
        kind: kind, routeResource: SilenceAPI.routeResourceKey(routeKey: "alertmanager"), keepsMaintenanceObject: true)

    public let name: String
    public let api: SilenceAPI
    private let credentials: [Secret]
    public var kind: String { Self.kind }
    public var secrets: [Secret] { credentials }

    public init(name: String, connection: MonitorConnection, createdBy: String = "Patchbay") {
        self.name = name
        self.credentials = connection.secrets
        self.api = SilenceAPI(
            urls: connection.urls, apiPath: "/api/v2", headers: connection.headers, createdBy: createdBy,
            vendor: "Alertmanager",
            link: { base, id in
                SilenceAPI.page(base, "/#/silences/" + VendorID.pathSegment(id))
            })
    }

    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(MonitorConnection.keys).union(["createdBy"]))
        let createdBy = section.string("createdBy") ?? "Patchbay"
        guard let connection = MonitorConnection(section: section) else { return nil }
        self.init(name: name, connection: connection, createdBy: createdBy)
    }
}

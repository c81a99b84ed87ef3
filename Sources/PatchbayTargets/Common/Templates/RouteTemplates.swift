import Foundation
import PatchbayCore

/// Every route's `templates`, compiled for each target the route names: the dispatcher asks it
/// which wording a delivery uses. The first matching route that names the target and has
/// templates wins over the target's own.
public struct RouteTemplates: Sendable {
    private let routes: [(match: RouteMatch, byTarget: [String: MessageTemplates])]

    public static let none = RouteTemplates(routes: [])

    private init(routes: [(match: RouteMatch, byTarget: [String: MessageTemplates])]) {
        self.routes = routes
    }

    /// Compiles the templates of every route in `table`, reporting problems under `routes[i].templates`.
    public init(table: RouteTable, kindOf: (String) -> String?, diagnostics: ConfigDiagnostics) {
        var compiled: [(match: RouteMatch, byTarget: [String: MessageTemplates])] = []
        for route in table.routes {
            guard let sources = route.templates else { continue }
            let byTarget = TargetRegistry.compileRouteTemplates(sources, targets: route.targets.map(\.name), kindOf: kindOf, diagnostics: diagnostics)
            compiled.append((route.match, byTarget))
        }
        self.init(routes: compiled)
    }

    public var isEmpty: Bool { routes.isEmpty }

    public func templates(for event: PatchEvent, target: String) -> MessageTemplates? {
        for route in routes where route.match.matches(app: event.app, environment: event.environment, tags: event.tags) {
            if let templates = route.byTarget[target] { return templates }
        }
        return nil
    }
}

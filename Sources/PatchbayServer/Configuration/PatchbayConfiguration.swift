import Foundation
import PatchbayConfig
import PatchbayCore
import PatchbayPostgres
import PatchbayRelay
import PatchbaySQLite
import PatchbayTargets

/// The whole configuration, each section read by the component that owns it.
public struct PatchbayConfiguration: Sendable {
    public var server: ServerSettings
    public var store: StoreSettings
    /// `store.postgres`, checked: where the shared queue is. Nil for SQLite.
    public var postgres: PostgresSettings?
    public var delivery: DispatcherSettings
    /// By name, in file order.
    public var targets: [String: any DeliveryTarget]
    public var policies: [String: TargetPolicy]
    public var targetNames: [String]
    public var routes: RouteTable
    /// The routes' own wording, compiled for each target they name.
    public var routeTemplates: RouteTemplates = .none
    /// Relay sources by name (`sources:`).
    public var sources: [String: RelaySource]
    public var awsMapping: AWSMapping
    /// Maintenances Patchbay announces itself (`schedules:`).
    public var schedules: ScheduleBook

    public struct Invalid: Error, CustomStringConvertible {
        public var problems: [ConfigProblem]
        public var description: String {
            "the configuration has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    /// Every credential in the configuration, for the redactor.
    public var secrets: [Secret] {
        server.tokens + server.adminTokens + server.viewerTokens + [server.consoleKey, server.oidc?.clientSecret].compactMap { $0 }
            + targets.values.flatMap(\.secrets) + sources.values.flatMap(\.secrets)
            + [store.postgres?.url, store.postgres?.password, postgres?.password].compactMap { $0 }
    }

    public var redactor: Redactor { Redactor(secrets: secrets) }

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PatchbayConfiguration {
        let diagnostics = ConfigDiagnostics()
        let root = try ConfigFile.load(path: path, environment: environment, diagnostics: diagnostics)
        return try read(root, diagnostics: diagnostics)
    }

    public static func parse(yaml: String, environment: [String: String]) throws -> PatchbayConfiguration {
        let diagnostics = ConfigDiagnostics()
        return try read(ConfigFile.parse(yaml: yaml, environment: environment, diagnostics: diagnostics), diagnostics: diagnostics)
    }

    static func read(_ root: ConfigSection, diagnostics: ConfigDiagnostics) throws -> PatchbayConfiguration {
        // A file that is not YAML or not a mapping has no sections worth reporting on.
        if case .map(let entries) = root.value, entries.isEmpty, !diagnostics.problems.isEmpty {
            throw Invalid(problems: diagnostics.problems)
        }
        root.allowOnly(["server", "store", "delivery", "targets", "routes", "sources", "awsMapping", "schedules"])
        let server = ServerSettings(section: root.section("server", required: true))
        let store = StoreSettings(section: root.section("store"))
        var postgres: PostgresSettings?
        if let options = store.postgres {
            do {
                postgres = try PostgresSettings(url: options.url.reveal(), poolSize: options.poolSize, schema: options.schema)
                if let password = options.password { postgres?.password = password }
            } catch {
                // The message never quotes the URL: it may hold the password.
                diagnostics.report("store.postgres.url", "\(error)")
            }
        }
        let delivery = DispatcherSettings(section: root.section("delivery"))

        var targets: [String: any DeliveryTarget] = [:]
        var policies: [String: TargetPolicy] = [:]
        var names: [String] = []
        let targetsSection = root.section("targets", required: true)
        for (name, section) in targetsSection?.namedSections() ?? [] {
            names.append(name)
            if let problem = DeliveryLane.reservedNameProblem(name) { targetsSection?.report(name, problem) }
            if let (target, policy) = TargetRegistry.target(named: name, section: section, retryDefaults: delivery.retry) {
                targets[name] = target
                policies[name] = policy
            }
        }
        if let targetsSection, names.isEmpty { targetsSection.report("must define at least one target") }

        // Kinds of every named target, even one whose own section had problems, so route errors
        // are about routes.
        var kinds: [String: String] = [:]
        for (name, section) in targetsSection?.namedSections() ?? [] {
            kinds[name] = targets[name]?.kind ?? (section.isMap ? section.string("kind") : nil) ?? "unknown"
        }
        var routes: [Route] = []
        let routeSections = root.list("routes", required: true) ?? []
        for section in routeSections {
            if let route = Route(section: section, targetKinds: kinds, resourceKeys: TargetRegistry.routeResourceKeys) { routes.append(route) }
        }
        if root.has("routes"), routeSections.isEmpty {
            root.report("routes", "must hold at least one route, or no event would be delivered")
        }
        var sources: [String: RelaySource] = [:]
        for (name, section) in root.section("sources")?.namedSections() ?? [] {
            guard let source = RelaySource(name: name, section: section) else { continue }
            let passthroughKinds = TargetRegistry.kinds.filter { TargetRegistry.traits(of: $0)?.acceptsPassthrough == true }
            for (index, target) in source.passthrough.enumerated() {
                guard let kind = kinds[target], TargetRegistry.traits(of: kind)?.acceptsPassthrough == true else {
                    let why = kinds[target].map { "is a \($0) target" } ?? "is not a configured target"
                    diagnostics.report(
                        "\(section.keyPath("passthrough"))[\(index)]",
                        "'\(target)' \(why); passthrough sends to \(passthroughKinds.joined(separator: ", ")) targets only")
                    continue
                }
            }
            sources[name] = source
        }
        let awsMapping = AWSMapping(section: root.section("awsMapping"))
        var schedules: [ScheduleEntry] = []
        for section in root.list("schedules") ?? [] {
            guard let entry = ScheduleEntry(section: section) else { continue }
            if let earlier = schedules.first(where: { $0.windowID == entry.windowID && $0.app == entry.app && $0.environment == entry.environment }) {
                section.report("windowId", "'\(entry.windowID)' is already used by another schedule of \(earlier.app) - \(earlier.environment)")
                continue
            }
            if RouteTable(routes: routes).matching(app: entry.app, environment: entry.environment, tags: entry.tags).isEmpty {
                section.report("no route matches app '\(entry.app)' and environment '\(entry.environment)', so its announcements would go nowhere")
            }
            schedules.append(entry)
        }
        let routeTemplates = RouteTemplates(table: RouteTable(routes: routes), kindOf: { kinds[$0] }, diagnostics: diagnostics)
        guard diagnostics.problems.isEmpty else { throw Invalid(problems: diagnostics.problems) }
        var configuration = PatchbayConfiguration(
            server: server, store: store, postgres: postgres, delivery: delivery, targets: targets, policies: policies, targetNames: names,
            routes: RouteTable(routes: routes), sources: sources, awsMapping: awsMapping, schedules: ScheduleBook(entries: schedules))
        configuration.routeTemplates = routeTemplates
        return configuration
    }
}

import Foundation

extension Route {
    /// Reads one entry of `routes:`:
    /// ```yaml
    /// - match: {app: App1, environment: Production, tags: {team: web}}
    ///   targets: [ops-slack, ops-teams]
    ///   statuspage: {target: status, components: [8kbf7d35c070]}
    ///   pingdom: {target: uptime, checks: [12345]}
    ///   timezone: America/Los_Angeles
    ///   reminders: [24h, 1h]      # default [1h]; [] turns them off
    ///   announceStart: true       # "Patching Beginning" at the window start
    ///   overrunGrace: 15m         # overrun notice this long after the window end
    ///   overrunExtend: 30m        # how far the Pingdom window and incident are extended
    ///   templates: {title: "...", text: "..."}   # wording for this route's targets (wins over the target's)
    ///   chat: {mode: per-maintenance, groupWait: 30s}   # one summary per maintenance and stage
    /// ```
    /// `targetKinds` maps each configured target name to its kind, so a `statuspage:` entry that
    /// names a Slack target is caught here. `resourceKeys` are the route-level keys the target
    /// kinds declare (`statuspage:`, `pingdom:`), from the target registry.
    public init?(section: ConfigSection, targetKinds: [String: String], resourceKeys: [(kind: String, key: RouteResourceKey)]) {
        section.allowOnly(
            Set(["match", "targets", "templates", "chat", "timezone", "reminders", "announceStart", "overrunGrace", "overrunExtend"])
                .union(resourceKeys.map(\.key.routeKey)))
        var match = RouteMatch()
        if let matchSection = section.section("match") {
            matchSection.allowOnly(["app", "environment", "tags"])
            match.app = matchSection.string("app")
            match.environment = matchSection.string("environment")
            match.tags = matchSection.stringMap("tags") ?? [:]
        }
        var valid = true
        var targets: [RouteTarget] = []
        let known = targetKinds.isEmpty ? "none are configured" : "configured: \(targetKinds.keys.sorted().joined(separator: ", "))"
        if let names = section.stringList("targets") {
            if names.isEmpty { section.report("targets", "must name at least one target") }
            for (index, name) in names.enumerated() {
                guard targetKinds[name] != nil else {
                    section.diagnostics.report("\(section.keyPath("targets"))[\(index)]", "'\(name)' is not a configured target (\(known))")
                    valid = false
                    continue
                }
                targets.append(RouteTarget(name))
            }
        }
        for (kind, resourceKey) in resourceKeys {
            let key = resourceKey.routeKey
            guard let entry = section.section(key) else { continue }
            entry.allowOnly(
                Set(["target"] + [resourceKey.listKey].compactMap { $0 }).union(resourceKey.scalarKeys).union(resourceKey.optionalScalarKeys)
                    .union(resourceKey.sections.keys))
            var resources: [String] = []
            if let resourcesKey = resourceKey.listKey {
                resources = entry.stringList(resourcesKey, required: resourceKey.listRequired) ?? []
                for (index, item) in resources.enumerated() where item.hasPrefix("@") {
                    entry.diagnostics.report("\(entry.keyPath(resourcesKey))[\(index)]", "may not start with '@'")
                    valid = false
                }
            }
            for scalar in resourceKey.scalarKeys {
                guard let value = entry.string(scalar, required: true) else {
                    valid = false
                    continue
                }
                resources.append(RouteResources.encode(scalar: scalar, value))
            }
            for scalar in resourceKey.optionalScalarKeys {
                if let value = entry.string(scalar) { resources.append(RouteResources.encode(scalar: scalar, value)) }
            }
            for (name, keys) in resourceKey.sections.sorted(by: { $0.key < $1.key }) {
                guard let map = entry.section(name) else { continue }
                map.allowOnly(Set(keys))
                for inner in keys {
                    if let value = map.string(inner) { resources.append(RouteResources.encode(section: name, key: inner, value)) }
                }
            }
            for (problemKey, problem) in resourceKey.check(resources) {
                if problemKey.isEmpty { entry.report(problem) } else { entry.diagnostics.report(entry.keyPath(problemKey), problem) }
                valid = false
            }
            guard let name = entry.string("target", required: true) else {
                valid = false
                continue
            }
            guard let actual = targetKinds[name] else {
                entry.report("target", "'\(name)' is not a configured target (\(known))")
                valid = false
                continue
            }
            guard actual == kind else {
                entry.report("target", "'\(name)' is a \(actual) target; \(key) needs a target of kind \(kind)")
                valid = false
                continue
            }
            for (index, resource) in RouteResources.items(in: resources).enumerated() {
                if let problem = resourceKey.validate(resource) {
                    entry.diagnostics.report("\(entry.keyPath(resourceKey.listKey ?? ""))[\(index)]", problem)
                    valid = false
                }
            }
            targets.append(RouteTarget(name, resources: resources))
        }
        if targets.isEmpty, valid {
            let keys = ["targets"] + resourceKeys.map(\.key.routeKey)
            section.report("a route needs \(keys.dropLast().joined(separator: ", ")) or \(keys.last ?? "targets")")
            valid = false
        }
        let timezone = section.timeZone("timezone")
        let defaults = NoticeSettings()
        let week: Duration = .seconds(7 * 86_400)
        let notices = NoticeSettings(
            reminders: section.durationList("reminders", range: .seconds(1)...(week * 5)) ?? defaults.reminders,
            announceStart: section.bool("announceStart", default: defaults.announceStart),
            overrunGrace: section.duration("overrunGrace", default: defaults.overrunGrace, range: .zero...week),
            overrunExtend: section.duration("overrunExtend", default: defaults.overrunExtend, range: .seconds(60)...week)
        )
        if notices.overrunExtend <= notices.overrunGrace {
            section.report(
                "overrunExtend",
                "must be longer than overrunGrace (\(DurationText.short(Int(notices.overrunGrace.components.seconds)))), or the extended window would already have ended when the overrun notice goes out"
            )
        }
        let templates = TemplateSources(section: section)
        let chat = ChatGrouping(section: section)
        guard valid else { return nil }
        self.init(match: match, targets: targets, timezone: timezone, notices: notices)
        self.templates = templates
        self.chat = chat
    }
}

import Foundation

extension Route {
    /// Reads one entry of `routes:`:
    /// `{match: {app: App1, environment: Production, tags: {team: web}}, targets: [ops-slack], timezone: America/Los_Angeles}`.
    public init?(section: ConfigSection, knownTargets: Set<String>) {
        section.allowOnly(["match", "targets", "timezone"])
        var match = RouteMatch()
        if let matchSection = section.section("match") {
            matchSection.allowOnly(["app", "environment", "tags"])
            match.app = matchSection.string("app")
            match.environment = matchSection.string("environment")
            match.tags = matchSection.stringMap("tags") ?? [:]
        }
        let targets = section.stringList("targets", required: true) ?? []
        if targets.isEmpty, section.has("targets") {
            section.report("targets", "must name at least one target")
        }
        var valid = !targets.isEmpty
        for (index, target) in targets.enumerated() where !knownTargets.contains(target) {
            let known = knownTargets.isEmpty ? "none are configured" : "configured: \(knownTargets.sorted().joined(separator: ", "))"
            section.diagnostics.report("\(section.keyPath("targets"))[\(index)]", "'\(target)' is not a configured target (\(known))")
            valid = false
        }
        let timezone = section.timeZone("timezone")
        guard valid else { return nil }
        self.init(match: match, targets: targets, timezone: timezone)
    }
}

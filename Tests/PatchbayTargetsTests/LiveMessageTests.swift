import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// One living message per maintenance (`chat: {mode: live}`): which deliveries go to the live
/// lane, what the message says at each stage (golden files for Slack and Discord), the requests
/// of a step (post, edit, a lost message posted anew, replies) and how the vendors' answers read.
@Suite("Live messages")
struct LiveMessageTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let window = MaintenanceWindow(id: "w-1", start: start, end: start.addingTimeInterval(45 * 60), timezone: "America/Los_Angeles")
    static let slack = SlackTarget(name: "ops-slack-app", token: Secret("xoxb-live-0123456789"), channel: "C0123456789")
    static let discord = DiscordTarget(name: "ops-discord", url: Secret("https://discord.com/api/webhooks/123456789012345678/tok-en"))
    static let heldTS = "1700000000.000100"
    static let heldDiscordID = "1234567890123456789"

    static func event(_ type: EventType, instance: String? = nil, notice: NoticeKind? = nil, details: [String: JSONValue] = [:]) -> PatchEvent {
        PatchEvent(
            type: type, app: "App1", environment: "Production", instance: instance.map { Instance(id: "i-\($0)", name: $0) },
            window: window, details: details, notice: notice)
    }

    /// 30 servers: `stages` says how many reached each stage, in order web-01, web-02, …
    static func snapshot(_ stages: [(EventType, Int)], names: [String] = []) -> MaintenanceSnapshot {
        var reports: [MaintenanceSnapshot.InstanceReport] = []
        var index = 0
        for (stage, count) in stages {
            for _ in 0..<count {
                index += 1
                let name = index <= names.count ? names[index - 1] : String(format: "web-%02d", index)
                reports.append(.init(instance: Instance(id: "i-\(index)", name: name), lastType: stage))
            }
        }
        return MaintenanceSnapshot(instances: reports, links: ["statuspage": "https://stspg.io/abc123", "ops-slack-app/live": "x"])
    }

    static func context(
        _ snapshot: MaintenanceSnapshot, held: String? = nil, role: LiveRole = .update, laterQueued: Bool = false,
        now: Date = start.addingTimeInterval(600)
    ) -> RenderContext {
        RenderContext(
            displayTimeZone: TimeZone(identifier: "America/Los_Angeles")!, deliveryID: "dlv_1", now: now,
            followUp: held.map { FollowUpState(objectID: $0, status: "in progress") }, maintenance: snapshot,
            live: LiveSend(role: role, laterQueued: laterQueued))
    }

    static func answer(_ body: String, status: Int = 200, headers: [HTTPHeader] = []) -> TransportResponse {
        TransportResponse(status: status, headers: headers, body: Data(body.utf8), latency: .zero)
    }

    /// Every request of a step, each answered by `answer(request)`.
    static func requests(_ step: DeliveryStep, answer: (OutboundRequest) -> TransportResponse) -> [OutboundRequest] {
        var requests: [OutboundRequest] = []
        var current: DeliveryStep? = step
        while let step = current, requests.count < DeliveryStep.maxLinks {
            switch step {
            case .send(let request):
                return requests + [request]
            case .then(let request, let next):
                requests.append(request)
                current = next(answer(request))
            case .skip, .refuse:
                return requests
            }
        }
        return requests
    }

    static func slackAnswer(_ request: OutboundRequest) -> TransportResponse {
        answer(#"{"ok":true,"channel":"C0123456789","ts":"1700000000.000200","message":{}}"#)
    }

    static func discordAnswer(_ request: OutboundRequest) -> TransportResponse {
        answer(#"{"id":"2234567890123456789","channel_id":"1"}"#)
    }

    // MARK: Routing

    @Test func aLiveRouteGivesEditableChatTargetsTheirLiveLaneAndTheOthersSummaries() {
        var route = Route(match: RouteMatch(), targets: ["app", "hookslack", "teams", "hook"])
        route.chat = ChatGrouping(mode: .live, groupWait: .seconds(20))
        let kinds = ["app": "slack", "hookslack": "slack", "teams": "teams", "hook": "webhook"]
        let table = RouteTable(routes: [route])
        func plans(_ event: PatchEvent) -> [String] {
            table.plans(
                for: event, kindOf: { kinds[$0] }, isChat: { ["slack", "teams"].contains($0) }, editsInPlace: { $0 == "app" }
            ).map { "\($0.lane.storedName)@\($0.summaryWait.map { Int($0) } ?? 0)" }
        }
        #expect(plans(Self.event(.completed, instance: "web-01")) == ["app/live@0", "hookslack/digest@20", "teams/digest@20", "hook@0"])
        #expect(plans(Self.event(.failed, instance: "web-01")) == ["app/live@0", "hookslack@0", "teams@0", "hook@0"])
        #expect(plans(Self.event(.scheduled)) == ["app/live@0", "hookslack@0", "teams@0", "hook@0"], "the announcement posts the live message")
        #expect(plans(Self.event(.started, notice: .overrun)) == ["app/live@0", "hookslack@0", "teams@0", "hook@0"])
        let live = DeliveryPlan(target: "app", targetKind: "slack", displayTimeZone: "UTC", live: true)
        #expect(live.settled(for: Self.event(.scheduled, instance: "web-01", notice: .rescheduled)) == live, "a reschedule stays in the lane")
    }

    @Test func theLiveLaneRoundTripsAndItsNameIsReserved() {
        let lane = DeliveryLane(storedName: "ops/live")
        #expect(lane.isLive && !lane.isSummary && lane.target == "ops" && lane.storedName == "ops/live")
        #expect(DeliveryLane.storedNames(of: "ops") == ["ops", "ops/digest", "ops/live"])
        #expect(DeliveryLane.reservedNameProblem("team/live")?.contains("live lane") == true)
        #expect(DeliveryLane.reservedNameProblem("team/digest")?.contains("summary lane") == true)
        #expect(DeliveryLane.reservedNameProblem("team-live") == nil)
    }

    @Test func failuresOverrunsAndReschedulesAreRepliesTheRestUpdates() {
        #expect(LiveRole(for: Self.event(.failed, instance: "web-01")) == .reply)
        #expect(LiveRole(for: Self.event(.started, notice: .overrun)) == .reply)
        #expect(LiveRole(for: Self.event(.scheduled, notice: .rescheduled)) == .reply)
        for type in [EventType.scheduled, .reminder, .started, .completed, .cancelled] {
            #expect(LiveRole(for: Self.event(type, instance: "web-01")) == .update, "\(type)")
            #expect(LiveRole(for: Self.event(type, instance: "web-01")).isSupersedable)
        }
        #expect(LiveRole(for: Self.event(.started, notice: .beginning)) == .update)
        #expect(LiveRole(for: Self.event(.reminder, notice: .reminder)) == .update)
        #expect(!LiveRole.reply.isSupersedable)
    }

    // MARK: What it says

    /// The stages of one maintenance, as the live message shows each.
    static let stages: [(name: String, event: PatchEvent, snapshot: MaintenanceSnapshot, now: Date)] = [
        ("announced", event(.scheduled), MaintenanceSnapshot(instances: []), start.addingTimeInterval(-86_400)),
        ("started-12-of-30", event(.started, instance: "web-12"), snapshot([(.started, 12), (.scheduled, 18)]), start.addingTimeInterval(300)),
        (
            "completed-28-failed-2", event(.completed, instance: "web-30"), snapshot([(.completed, 28), (.failed, 2)]),
            start.addingTimeInterval(2400)
        ),
        (
            "overrun-late", event(.started, notice: .overrun, details: ["overdue": .array([.string("web-29"), .string("web-30")])]),
            snapshot([(.completed, 27), (.failed, 1), (.started, 2)]), start.addingTimeInterval(3000)
        ),
        ("cancelled", event(.cancelled), snapshot([(.scheduled, 30)]), start.addingTimeInterval(-3600)),
    ]

    @Test(arguments: 0..<5)
    func eachStageMatchesGoldenForSlackAndDiscord(_ index: Int) throws {
        let stage = Self.stages[index]
        let slackSteps = Self.requests(
            try Self.slack.plan(stage.event, context: Self.context(stage.snapshot, held: Self.heldTS, now: stage.now)), answer: Self.slackAnswer)
        let discordSteps = Self.requests(
            try Self.discord.plan(stage.event, context: Self.context(stage.snapshot, held: Self.heldDiscordID, now: stage.now)),
            answer: Self.discordAnswer)
        let slackEdit = try #require(slackSteps.first)
        let discordEdit = try #require(discordSteps.first)
        #expect(slackEdit.url.reveal().hasSuffix("/chat.update") && discordEdit.method == "PATCH")
        #expect(discordEdit.url.reveal().hasSuffix("/webhooks/123456789012345678/tok-en/messages/\(Self.heldDiscordID)"))
        for (directory, body) in [("slack", slackEdit.body), ("discord", discordEdit.body)] {
            let file = Golden.directory("PatchbayTargetsTests/Golden/live").appendingPathComponent("\(directory)-\(stage.name).json")
            if let problem = try Golden.mismatch(body, file: file) { Issue.record("\(problem)") }
        }
    }

    @Test func theLastEditOfABurstCountsTheFleetAndNamesTheFailures() throws {
        let snapshot = Self.snapshot([(.completed, 28), (.failed, 2)], names: [])
        let message = LiveMessage(event: Self.event(.completed, instance: "web-28"), context: Self.context(snapshot))
        #expect(message.summary(markup: SlackEscaping.markup, zone: TimeZone(identifier: "UTC")!) == "28 of 30 servers completed, 2 failed.")
        #expect(message.failedNames == ["web-29", "web-30"] && message.state == .completedWithFailures)
        let content = message.content(zone: TimeZone(identifier: "UTC")!, markup: SlackEscaping.markup, budget: 2900)
        #expect(content.facts.first { $0.title == "Failed" }?.value == "web-29, web-30")
        #expect(content.facts.first { $0.title == "Links" }?.value == "statuspage: https://stspg.io/abc123", "its own lane's link is not listed")
        #expect(content.fallback == "Patching App1 - Production: 28 of 30 completed, 2 failed")
    }

    @Test func serversWithoutAnOutcomeAfterTheWindowAreLate() {
        let snapshot = Self.snapshot([(.completed, 28), (.started, 2)])
        let during = LiveMessage(event: Self.event(.completed, instance: "web-01"), context: Self.context(snapshot))
        #expect(during.lateNames.isEmpty && during.state == .inProgress)
        let after = LiveMessage(
            event: Self.event(.completed, instance: "web-01"), context: Self.context(snapshot, now: Self.start.addingTimeInterval(3600)))
        #expect(after.lateNames == ["web-29", "web-30"] && after.state == .overrun)
    }

    @Test func lateNamesAreListedOnceWithOneCountOfTheRest() {
        let names = (1...60).map { String(format: "web-%02d", $0) }
        let snapshot = Self.snapshot([(.started, 60)], names: names)
        let overdue: [JSONValue] = [.string("web-01"), .string("db-1")]
        let late = LiveMessage(
            event: Self.event(.started, notice: .overrun, details: ["overdue": .array(overdue)]),
            context: Self.context(snapshot, now: Self.start.addingTimeInterval(3600)))
        #expect(late.lateNames.count == MessageText.maxNamesListed + 1 && late.lateNames.last == "and 11 more", "\(late.lateNames.suffix(2))")
        #expect(late.lateNames.filter { $0 == "web-01" }.count == 1)
        let few = LiveMessage(
            event: Self.event(.started, notice: .overrun, details: ["overdue": .array(overdue)]),
            context: Self.context(Self.snapshot([(.started, 2)]), now: Self.start.addingTimeInterval(3600)))
        #expect(few.lateNames == ["web-01", "web-02", "db-1"])
    }

    @Test func aFleetThatCancelledEveryServerIsCancelledAndAMaintenanceCancelIsAReply() {
        let message = LiveMessage(event: Self.event(.cancelled, instance: "web-02"), context: Self.context(Self.snapshot([(.cancelled, 2)])))
        #expect(message.state == .cancelled)
        #expect(LiveRole(for: Self.event(.cancelled)) == .reply, "people are told of the cancellation, and it is never superseded")
        #expect(LiveRole(for: Self.event(.cancelled, instance: "web-02")) == .update)
    }

    @Test func onlyPlainLinksAreShown() {
        var snapshot = Self.snapshot([(.completed, 1)])
        snapshot.links = [
            "good": "https://stspg.io/abc-123_x", "ping": "https://x.io/<!channel>", "masked": "https://x.io/[a](b)", "js": "javascript:x",
        ]
        let message = LiveMessage(event: Self.event(.completed), context: Self.context(snapshot))
        #expect(message.links.map(\.target) == ["good"])
    }

    @Test func theProgressBarIsBoundedAndCountsDown() {
        #expect(ProgressBar.text(done: 0, of: 30) == String(repeating: "░", count: 20) + " 0%")
        #expect(ProgressBar.text(done: 15, of: 30) == String(repeating: "█", count: 10) + String(repeating: "░", count: 10) + " 50%")
        #expect(ProgressBar.text(done: 30, of: 30) == String(repeating: "█", count: 20) + " 100%")
        #expect(ProgressBar.text(done: 40, of: 30) == String(repeating: "█", count: 20) + " 100%", "never past full")
        #expect(ProgressBar.text(done: 0, of: 0).hasSuffix(" 0%"))
    }

    @Test func hostileNamesAreInertInBothChannels() throws {
        let snapshot = Self.snapshot([(.failed, 2)], names: ["<!channel> web", "@everyone **x**"])
        let slackBody = try #require(
            Self.requests(try Self.slack.plan(Self.event(.completed), context: Self.context(snapshot, held: Self.heldTS)), answer: Self.slackAnswer)
                .first
        ).body
        let slackText = String(decoding: slackBody, as: UTF8.self)
        #expect(!slackText.contains("<!channel>") && slackText.contains("&lt;!channel&gt;"))
        let discordBody = try #require(
            Self.requests(
                try Self.discord.plan(Self.event(.completed), context: Self.context(snapshot, held: Self.heldDiscordID)), answer: Self.discordAnswer
            ).first
        ).body
        let discordText = String(decoding: discordBody, as: UTF8.self)
        #expect(!discordText.contains("@everyone") && discordText.contains(#"\\*\\*x\\*\\*"#))
        #expect(discordText.contains(#""allowed_mentions":{"parse":[]}"#))
    }

    @Test func templatesLiveWordTheLiveMessage() throws {
        let diagnostics = ConfigDiagnostics()
        let sources = TemplateSources(
            texts: ["title": "ignored for the live message"], keyPath: "targets.ops.templates",
            live: TemplateSources(
                texts: ["text": "{{live.completed}}/{{live.total}} done; failed: {{#live.failedNames}}{{.}} {{/live.failedNames}}"],
                keyPath: "targets.ops.templates.live"))
        var target = Self.slack
        target.templates = try #require(
            TargetRegistry.compileTemplates(sources, for: SlackTarget.self, diagnostics: diagnostics, reportUnusedKeys: true))
        #expect(diagnostics.problems.isEmpty, "\(diagnostics.problems)")
        let snapshot = Self.snapshot([(.completed, 28), (.failed, 2)])
        let body = try #require(
            Self.requests(try target.plan(Self.event(.completed), context: Self.context(snapshot, held: Self.heldTS)), answer: Self.slackAnswer).first
        ).body
        guard case .array(let attachments)? = try JSONValue.parse(body)["attachments"], let attachment = attachments.first else {
            Issue.record("no attachment")
            return
        }
        #expect(attachment["text"]?.stringValue == "28/30 done; failed: web-29 web-30 ")
        #expect(attachment["title"]?.stringValue == "Patching App1 - Production", "the target's own title is for its other messages")
        // A route's live wording wins key by key, as its other templates do.
        let route = try #require(
            TargetRegistry.compileTemplates(
                TemplateSources(
                    texts: [:], keyPath: "routes[0].templates", live: TemplateSources(texts: ["title": "Live: {{system}}"], keyPath: "r.live")),
                for: SlackTarget.self, diagnostics: diagnostics, reportUnusedKeys: true))
        let merged = try #require(MessageTemplates.preferring(route, over: target.templates)?.live)
        #expect(merged.keys == ["title", "text"])
        let unknown = ConfigDiagnostics()
        let bad = TemplateSources(texts: [:], keyPath: "t", live: TemplateSources(texts: ["text": "{{live.nope}}"], keyPath: "t.live"))
        #expect(TargetRegistry.compileTemplates(bad, for: SlackTarget.self, diagnostics: unknown, reportUnusedKeys: true) == nil)
        #expect(unknown.problems.contains { $0.description.contains("t.live.text") }, "\(unknown.problems)")
    }

    // MARK: The step

    @Test func theFirstDeliveryPostsAndAFailureRepliesInItsThread() throws {
        let failure = Self.event(.failed, instance: "web-07", details: ["reason": .string("yum exited 1")])
        let step = try Self.slack.plan(failure, context: Self.context(Self.snapshot([(.failed, 1)]), role: .reply))
        let requests = Self.requests(step, answer: Self.slackAnswer)
        #expect(requests.map { $0.url.reveal().components(separatedBy: "/").last ?? "" } == ["chat.postMessage", "chat.postMessage"])
        let post = try JSONValue.parse(requests[0].body)
        #expect(post["thread_ts"] == nil && post["ts"] == nil)
        let reply = try JSONValue.parse(requests[1].body)
        #expect(reply["thread_ts"]?.stringValue == "1700000000.000200", "under the message just posted")
        #expect(reply["reply_broadcast"] == .bool(true) && String(decoding: requests[1].body, as: UTF8.self).contains(#""title":"Patching Failed""#))
        let file = Golden.directory("PatchbayTargetsTests/Golden/live").appendingPathComponent("slack-failed-reply.json")
        if let problem = try Golden.mismatch(requests[1].body, file: file) { Issue.record("\(problem)") }
        let discord = Self.requests(
            try Self.discord.plan(failure, context: Self.context(Self.snapshot([(.failed, 1)]), held: Self.heldDiscordID, role: .reply)),
            answer: Self.discordAnswer)
        #expect(discord.map(\.method) == ["PATCH", "POST"], "edit, then the failure as a message of its own")
        #expect(discord[1].url.reveal().hasSuffix("/tok-en?wait=true"))
        let discordFile = Golden.directory("PatchbayTargetsTests/Golden/live").appendingPathComponent("discord-failed-reply.json")
        if let problem = try Golden.mismatch(discord[1].body, file: discordFile) { Issue.record("\(problem)") }
    }

    @Test func aReplyWithALaterDeliveryQueuedOnlyReplies() throws {
        let failure = Self.event(.failed, instance: "web-07")
        let requests = Self.requests(
            try Self.slack.plan(failure, context: Self.context(Self.snapshot([(.failed, 1)]), held: Self.heldTS, role: .reply, laterQueued: true)),
            answer: Self.slackAnswer)
        let only = try JSONValue.parse(try #require(requests.first).body)
        #expect(requests.count == 1 && only["thread_ts"]?.stringValue == Self.heldTS)
    }

    @Test func aLostMessageIsPostedOnceAndItsNewIDKept() throws {
        let context = Self.context(Self.snapshot([(.completed, 3)]), held: Self.heldTS, role: .reply)
        let failure = Self.event(.failed, instance: "web-07")
        let lost = #"{"ok":false,"error":"message_not_found"}"#
        let requests = Self.requests(try Self.slack.plan(failure, context: context)) { request in
            request.url.reveal().hasSuffix("chat.update") ? Self.answer(lost) : Self.slackAnswer(request)
        }
        #expect(requests.map { $0.url.reveal().components(separatedBy: "/").last ?? "" } == ["chat.update", "chat.postMessage", "chat.postMessage"])
        #expect((try JSONValue.parse(requests[2].body))["thread_ts"]?.stringValue == "1700000000.000200", "the reply goes under the new message")
        // The edit's answer is read as delivered, so the step goes on; the state forgets the old id.
        #expect(Self.slack.classify(.success(Self.answer(lost)), for: requests[0]).label == "delivered")
        #expect(Self.slack.classify(.success(Self.answer(lost)), for: requests[1]).label == "permanent", "only an edit's")
        let forgotten = Self.slack.followUp(after: Self.answer(lost), to: requests[0], event: failure, context: context)
        #expect(forgotten?.objectID == nil, "a retry after a failed post posts again")
        let posted = Self.slack.followUp(after: Self.slackAnswer(requests[1]), to: requests[1], event: failure, context: context)
        #expect(posted?.objectID == "1700000000.000200" && posted?.link == "https://slack.com/app_redirect?channel=C0123456789")
        #expect(Self.slack.followUp(after: Self.slackAnswer(requests[2]), to: requests[2], event: failure, context: context) == nil)
        let discord = Self.requests(try Self.discord.plan(failure, context: Self.context(Self.snapshot([]), held: "99", role: .update))) { request in
            request.method == "PATCH" ? Self.answer(#"{"message":"Unknown Message","code":10008}"#, status: 404) : Self.discordAnswer(request)
        }
        #expect(discord.map(\.method) == ["PATCH", "POST"])
        #expect(
            Self.discord.followUp(after: Self.discordAnswer(discord[1]), to: discord[1], event: failure, context: Self.context(Self.snapshot([])))?
                .objectID == "2234567890123456789")
    }

    @Test func aPostAnsweredWithoutAnIDIsNotRepliedUnder() throws {
        let step = try Self.slack.plan(Self.event(.failed, instance: "web-07"), context: Self.context(Self.snapshot([]), role: .reply))
        guard case .then(_, let next) = step else {
            Issue.record("expected a post, then the reply")
            return
        }
        guard case .refuse? = next(Self.answer(#"{"ok":true,"ts":"<script>"}"#)) else {
            Issue.record("a ts that is not one must not go into the reply")
            return
        }
    }

    @Test func aSlackWebhookKeepsNoLiveMessage() throws {
        let webhook = SlackTarget(name: "hook", url: Secret("https://hooks.slack.com/services/T/B/x"))
        #expect(!webhook.editsMessagesInPlace && Self.slack.editsMessagesInPlace && Self.discord.editsMessagesInPlace)
        guard case .refuse = try webhook.plan(Self.event(.completed, instance: "web-1"), context: Self.context(Self.snapshot([]))) else {
            Issue.record("a webhook cannot edit")
            return
        }
    }

    // MARK: Answers

    @Test func slackErrorCodesOfAnEditAreClassified() throws {
        let update = try #require(
            Self.requests(
                try Self.slack.plan(Self.event(.completed), context: Self.context(Self.snapshot([]), held: Self.heldTS)), answer: Self.slackAnswer
            )
            .first)
        func outcome(_ body: String, status: Int = 200, headers: [HTTPHeader] = []) -> DeliveryOutcome {
            Self.slack.classify(.success(Self.answer(body, status: status, headers: headers)), for: update)
        }
        #expect(outcome(#"{"ok":true,"channel":"C0123456789","ts":"1.2"}"#).label == "delivered")
        #expect(
            outcome(#"{"ok":false,"error":"ratelimited"}"#, headers: [HTTPHeader("Retry-After", "30")])
                == .retry(after: .seconds(30), reason: .rateLimited))
        #expect(outcome("", status: 429, headers: [HTTPHeader("Retry-After", "5")]) == .retry(after: .seconds(5), reason: .rateLimited))
        #expect(outcome(#"{"ok":false,"error":"internal_error"}"#).label == "retry")
        for code in [
            "invalid_auth", "not_authed", "channel_not_found", "not_in_channel", "msg_too_long", "cant_update_message", "edit_window_closed",
        ] {
            #expect(outcome(#"{"ok":false,"error":"\#(code)"}"#) == .permanent(reason: .clientError), "\(code)")
        }
        #expect(outcome(#"{"ok":false,"error":"message_not_found"}"#).label == "delivered", "posted anew by the step")
    }

    @Test func discordAnswersToAnEditAreClassified() throws {
        let patch = try #require(
            Self.requests(
                try Self.discord.plan(Self.event(.completed), context: Self.context(Self.snapshot([]), held: Self.heldDiscordID)),
                answer: Self.discordAnswer
            ).first)
        func outcome(_ body: String, status: Int, headers: [HTTPHeader] = []) -> DeliveryOutcome {
            Self.discord.classify(.success(Self.answer(body, status: status, headers: headers)), for: patch)
        }
        #expect(outcome(#"{"id":"1"}"#, status: 200).label == "delivered")
        #expect(outcome(#"{"message":"Unknown Message","code":10008}"#, status: 404).label == "delivered", "posted anew by the step")
        #expect(outcome(#"{"message":"Unknown Webhook","code":10015}"#, status: 404) == .permanent(reason: .clientError))
        #expect(outcome(#"{"message":"Invalid Webhook Token","code":50027}"#, status: 401).label == "permanent")
        #expect(outcome(#"{"message":"Maximum number of edits","code":30046}"#, status: 400) == .retry(after: .seconds(60), reason: .clientError))
        #expect(outcome(#"{"retry_after":1.5,"global":false}"#, status: 429) == .retry(after: .milliseconds(1500), reason: .rateLimited))
        #expect(
            outcome(#"{"message":"Unknown Message","code":10008}"#, status: 404) != Self.discord.classify(.success(Self.answer("{}", status: 404))))
    }

    @Test func editsKeepOnlyTheQueryAPatchTakes() {
        #expect(
            DiscordTarget.messageURL("https://discord.com/api/webhooks/1/t?wait=true&thread_id=42", id: "9")
                == "https://discord.com/api/webhooks/1/t/messages/9?thread_id=42")
        #expect(DiscordTarget.messageURL("https://discord.com/api/webhooks/1/t", id: "9") == "https://discord.com/api/webhooks/1/t/messages/9")
        #expect(DiscordTarget.messageURL("https://discord.com/api/webhooks/1/t/", id: "9") == "https://discord.com/api/webhooks/1/t/messages/9")
    }

    @Test func theWebAPIIsPacedAtTier3PerChannel() {
        #expect(Self.slack.defaultPacing == PacingPolicy(rate: 50.0 / 60.0, burst: 3))
        let other = SlackTarget(name: "other", token: Secret("xoxb-live-0123456789"), channel: "C9999999999")
        let same = SlackTarget(name: "same", token: Secret("xoxb-live-0123456789"), channel: "C0123456789")
        #expect(other.pacingKey != Self.slack.pacingKey && same.pacingKey == Self.slack.pacingKey)
        #expect(SlackTarget(name: "hook", url: Secret("https://hooks.slack.com/services/T/B/x")).defaultPacing == nil)
    }
}

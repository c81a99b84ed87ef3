import Foundation
import PatchbayCore

/// The requests of one live-lane delivery, shared by the chat kinds that can edit a message
/// (Slack's Web API, Discord webhooks); each kind supplies its own requests and reads its answers.
///
/// - No message yet: post it (and the reply under it, for a `reply` role).
/// - A message held: edit it; when the vendor says it is gone (deleted in the channel), post a new
///   one once and keep its id; then the reply. A `reply` with a later delivery queued only
///   replies: that later one edits.
///
/// The message's id is in the live lane's follow-up state (`objectID`), recorded with the
/// attempt; a post whose record is lost to a crash (between the vendor's answer and the
/// commit) is posted again by the retry: neither vendor can be asked for it afterwards.
public struct LiveStep: Sendable {
    /// The request's `object` tag, for the kind's reading of the answer.
    public enum Link: String, Sendable {
        case post = "live#post"
        case edit = "live#edit"
        case reply = "live#reply"

        public init?(_ request: OutboundRequest) {
            guard let object = request.object, let link = Link(rawValue: object) else { return nil }
            self = link
        }
    }

    public var post: OutboundRequest
    public var edit: @Sendable (_ messageID: String) -> OutboundRequest
    /// Nil for an `update`: nothing to reply.
    public var reply: (@Sendable (_ messageID: String) -> OutboundRequest)?
    /// The new message's id in the answer to `post`.
    public var postedID: @Sendable (TransportResponse) -> String?
    /// Whether the answer to an edit says the message is gone (the kind classifies that answer
    /// as delivered, so the step goes on to post a new one).
    public var isLost: @Sendable (TransportResponse) -> Bool

    public init(
        post: OutboundRequest, edit: @escaping @Sendable (String) -> OutboundRequest,
        reply: (@Sendable (String) -> OutboundRequest)?, postedID: @escaping @Sendable (TransportResponse) -> String?,
        isLost: @escaping @Sendable (TransportResponse) -> Bool
    ) {
        self.post = post.tagged(.post)
        self.edit = { edit($0).tagged(.edit) }
        if let reply {
            self.reply = { @Sendable id in reply(id).tagged(.reply) }
        } else {
            self.reply = nil
        }
        self.postedID = postedID
        self.isLost = isLost
    }

    /// The step for a delivery with `send`'s role, given the id of the message held (if any).
    public func step(held: String?, send: LiveSend) -> DeliveryStep {
        guard let held else { return postThenReply() }
        if let reply, send.role == .reply, send.laterQueued { return .send(reply(held)) }
        let reply = self.reply
        let repost = postThenReply()
        return .then(
            edit(held),
            next: { [isLost] answer in
                if isLost(answer) { return repost }
                return reply.map { .send($0(held)) }
            })
    }

    private func postThenReply() -> DeliveryStep {
        guard let reply else { return .send(post) }
        return .then(
            post,
            next: { [postedID] answer in
                guard let id = postedID(answer) else {
                    return .refuse(reason: "the live message was posted, but the answer held no message id to reply under")
                }
                return .send(reply(id))
            })
    }

    /// The live lane's follow-up state after a delivered link: a post's new message id (and
    /// `link`), a lost message forgotten (so a retry posts), else unchanged.
    public static func followUp(
        after response: TransportResponse, to request: OutboundRequest, held: FollowUpState?, state: String,
        postedID: (TransportResponse) -> String?, isLost: (TransportResponse) -> Bool, link: (String) -> String?
    ) -> FollowUpState? {
        var followUp = held ?? FollowUpState()
        switch Link(request) {
        case .post?:
            guard let id = postedID(response) else { return nil }
            followUp.objectID = id
            followUp.link = link(id)
        case .edit? where isLost(response):
            followUp.objectID = nil
            followUp.link = nil
        case .edit?:
            break
        case .reply?, nil:
            return nil
        }
        followUp.status = state
        return followUp
    }
}

extension OutboundRequest {
    fileprivate func tagged(_ link: LiveStep.Link) -> OutboundRequest {
        var request = self
        request.object = link.rawValue
        return request
    }
}

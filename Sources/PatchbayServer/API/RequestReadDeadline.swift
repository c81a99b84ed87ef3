import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Bounds how long a client may take to send a request, on every route of the server: the head
/// must arrive within `timeout` of the connection opening (or of the previous response), and the
/// rest of the request, its body, within `timeout` of its head. Slowloris clients trickle a byte
/// every few seconds, and each byte resets the idle timer, so without this a trickled console
/// form held its connection for ever and 40 of them took `/healthz` and intake down (review F1).
///
/// One mechanism for the whole server, below the routes, so no route (the console's forms, the
/// relay, one added later) can forget its deadline. When the deadline passes before anything was
/// answered, the client gets a 408 naming `server.readTimeout`; the connection is closed either way.
final class RequestReadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    /// Told when this connection reads and when it stalls, to free slots when the server is full.
    private let shedder: StalledReaderShedder?
    private var deadline: Scheduled<Void>?
    /// A request head was read and its end has not arrived yet.
    private var readingRequest = false
    /// A response head was written for the request being read: no 408 can follow it.
    private var answered = false
    /// Request heads read whose response has not ended (pipelined requests).
    private var outstanding = 0

    init(timeout: TimeAmount, shedder: StalledReaderShedder? = nil) {
        self.timeout = timeout
        self.shedder = shedder
    }

    private var id: ObjectIdentifier { ObjectIdentifier(self) }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context)
        shedder?.reading(id, channel: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        shedder?.doneReading(id)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            // The head is in: the body now has `timeout` to arrive, whatever the route does with it.
            outstanding += 1
            readingRequest = true
            answered = false
            arm(context)
            shedder?.progressed(id)
        case .body:
            shedder?.progressed(id)
        case .end:
            readingRequest = false
            deadline?.cancel()
            deadline = nil
            if outstanding == 0 {
                // Answered before its body ended (a 401 that read nothing): the answer is out,
                // so the next request's head has `timeout` from now.
                arm(context)
                shedder?.reading(id, channel: context.channel)
            } else {
                shedder?.doneReading(id)
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            answered = true
            if readingRequest { shedder?.answeredEarly(id) }
        case .body:
            break
        case .end:
            outstanding = max(0, outstanding - 1)
            // Every response is complete and the request was read whole: the next request's head
            // has `timeout` to arrive. A response written before its request's body ended (a 401
            // that did not read it) leaves the body's deadline running.
            if outstanding == 0 && !readingRequest {
                arm(context)
                shedder?.reading(id, channel: context.channel)
            }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) { [self] in
            expire(bound.value)
        }
    }

    private func expire(_ context: ChannelHandlerContext) {
        deadline = nil
        guard readingRequest, !answered else {
            context.close(promise: nil)
            return
        }
        answered = true
        let seconds = timeout.nanoseconds / 1_000_000_000
        let body = ByteBuffer(string: #"{"error":"body_timeout","message":"request: not received within \#(seconds) s (server.readTimeout)"}"#)
        var fields = HTTPFields()
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .requestTimeout, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}

import Access
import FHIRCore
import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// A request a service can answer without waiting (everything it needs in memory), or nil: the request then takes
/// the router like any other. There are two: `RORFHIRService.readNow` (a consumer's read of a cached resource) and
/// `RORCapacityFeed.patchNow` (a capacity PATCH of a cached Location).
struct ImmediateAnswer: Sendable {
    /// The method it answers.
    var method: HTTPMethod = .GET
    /// Paths it may answer start with this.
    var pathPrefix: String
    /// Longest body it takes (0: none); a longer one goes to the router as it comes.
    var maximumBody = 0
    /// The request, its whole body, the context.
    var answer: @Sendable (Request, ByteBuffer, SandboxRequestContext) -> ImmediateReply?
}

/// An answer given at once: its head and body, and the stored resource version the body is, if it is one (the
/// journal then names that version instead of keeping a copy of the bytes).
struct ImmediateReply {
    var head: HTTPResponse
    var body: Data
    var storedVersion: StoredVersion?
}

/// ``AccessResponder/respondNow(to:context:answer:headerMemos:)``, bound to a listener.
typealias ImmediateResponder =
    @Sendable (
        Request, ByteBuffer, SandboxRequestContext, ImmediateAnswer,
        (request: JournalEntry.HeaderMemo, response: JournalEntry.HeaderMemo)
    ) -> (HTTPResponse, Data)?

/// Answers on the connection's event loop the keep-alive requests an ``ImmediateAnswer`` can, through
/// ``AccessResponder/respondNow(to:body:context:answer:headerMemos:)`` (same access decision, same journal row); hands
/// everything else to Hummingbird, unchanged (a request held here and not answered is passed on whole).
///
/// Why: on a keep-alive `GET Location/{id}`, Hummingbird's per-connection task (async reader and writer, task
/// switches) cost more CPU than the read itself; answered here, the same bytes cost about half, and a capacity PATCH
/// a tenth less (`docs/performance.md`, measured with `scripts/bench-ab get|patch`).
/// Order is kept: a request is only answered here while no earlier one is still with Hummingbird.
final class ImmediateAnswers: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let answers: [ImmediateAnswer]
    private let respond: ImmediateResponder
    private let peer: ConnectionVerification
    private let logger: Logger
    /// Requests handed to Hummingbird whose response has not ended yet.
    private var withHummingbird = 0
    /// A head held until its end arrives, with the answer that may take it and the body so far (nil: none yet; a
    /// body in one part is kept as it came).
    private var held: (head: HTTPRequestHead, answer: ImmediateAnswer, body: ByteBuffer?)?
    private var date = (second: -1, text: "")
    private let headerMemos = (request: JournalEntry.HeaderMemo(), response: JournalEntry.HeaderMemo())
    /// The peer's address as the journal writes it, once per connection.
    private var remoteAddress: String?

    init(
        answers: [ImmediateAnswer],
        peer: ConnectionVerification,
        logger: Logger,
        respond: @escaping ImmediateResponder
    ) {
        self.answers = answers
        self.peer = peer
        self.logger = logger
        self.respond = respond
    }

    func handlerAdded(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress.map(SandboxRequestContext.describe)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // `Expect: 100-continue` waits for an answer before sending the body: Hummingbird's to give.
            if withHummingbird == 0, held == nil, head.isKeepAlive, !head.headers.contains(name: "expect"),
                let answer = answers.first(where: { $0.method == head.method && head.uri.hasPrefix($0.pathPrefix) })
            {
                held = (head, answer, nil)
                return
            }
            pass(context, .head(head))
        case .body(var body):
            guard let (head, answer, gathered) = held else {
                context.fireChannelRead(wrapInboundOut(.body(body)))
                return
            }
            held = nil
            guard (gathered?.readableBytes ?? 0) + body.readableBytes <= answer.maximumBody else {
                // Over what the answer takes (a GET with a body is never one of ours): the router's.
                pass(context, .head(head))
                if let gathered { context.fireChannelRead(wrapInboundOut(.body(gathered))) }
                context.fireChannelRead(wrapInboundOut(.body(body)))
                return
            }
            if var gathered {
                gathered.writeBuffer(&body)
                held = (head, answer, gathered)
            } else {
                held = (head, answer, body)
            }
        case .end(let trailers):
            if let (head, answer, body) = held {
                held = nil
                if let (response, responseBody) = answerNow(
                    head,
                    body: body ?? ByteBuffer(),
                    answer: answer,
                    context: context
                ) {
                    write(response, body: responseBody, version: head.version, context: context)
                    return
                }
                pass(context, .head(head))
                if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
            }
            context.fireChannelRead(wrapInboundOut(.end(trailers)))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { withHummingbird -= 1 }
        context.write(data, promise: promise)
    }

    private func pass(_ context: ChannelHandlerContext, _ head: HTTPServerRequestPart) {
        withHummingbird += 1
        context.fireChannelRead(wrapInboundOut(head))
    }

    private func answerNow(
        _ head: HTTPRequestHead,
        body: ByteBuffer,
        answer: ImmediateAnswer,
        context: ChannelHandlerContext
    ) -> (HTTPResponse, Data)? {
        // Only callers whose certificate was presented (reject mode http lets others through to be refused).
        // Origin-form targets only (`/…`): then the path is the URI as sent, as NIO's conversion would find it
        // (without parsing it as a URL, which was a tenth of this function).
        guard let identity = peer.published, head.uri.hasPrefix("/"),
            let method = HTTPRequest.Method(head.method.rawValue)
        else { return nil }
        let fields = HTTPRequest(
            method: method,
            scheme: "https",
            authority: head.headers.first(name: "host"),
            path: head.uri,
            headerFields: HTTPFields(head.headers, splitCookie: false)
        )
        let request = Request(head: fields, body: RequestBody(buffer: body))
        let requestContext = SandboxRequestContext(
            source: ApplicationRequestContextSource(channel: context.channel, logger: logger),
            identity: identity,
            remoteAddress: remoteAddress
        )
        return respond(request, body, requestContext, answer, headerMemos)
    }

    /// Head, body and end in one flush, with the `Date` Hummingbird would have added.
    private func write(_ response: HTTPResponse, body: Data, version: HTTPVersion, context: ChannelHandlerContext) {
        var head = HTTPResponseHead(response)
        head.version = version
        head.headers.add(name: "Date", value: currentDate())
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func currentDate() -> String {
        let second = Int(Date().timeIntervalSince1970)
        if second != date.second { date = (second, HTTPDate.string(secondsSince1970: second)) }
        return date.text
    }
}

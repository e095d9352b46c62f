import Access
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOSSL
import NIOTLS
import X509

#if canImport(Glibc)
import Glibc
#endif

/// How a listener refuses a client certificate chain that does not verify.
public enum RejectMode: String, Sendable, CaseIterable {
    /// TLS alert during the handshake (what a real mTLS front does).
    case tls
    /// Complete the handshake and answer 403 naming the reason (for trainers and learners).
    case http
}

/// The identity captured by the TLS layer for the connection a request arrived on.
enum PeerIdentity {
    @TaskLocal static var current: ClientIdentity?
}

/// What the TLS layer learnt about the peer of a completed handshake.
enum ConnectionPeer: Sendable {
    case identified(ClientIdentity)
    /// Handshake completed without a client certificate (only possible in reject mode http).
    case anonymous

    var identity: ClientIdentity? {
        if case .identified(let identity) = self { return identity }
        return nil
    }
}

/// A refused handshake, reported by the TLS layer to whoever journals it.
public struct HandshakeRefusal: Sendable {
    public var reason: String
    public var identity: ClientIdentity?
    public var remoteAddress: String?
    public var duration: Duration
}

/// Per-connection state shared by the verification callback and the capture handler; both run on the channel's
/// event loop, so no locking is needed.
final class ConnectionVerification: @unchecked Sendable {
    var chain: [Certificate] = []
    /// DER of the presented leaf (for the RFC 8705 thumbprint without re-encoding).
    var leafDER: [UInt8]?
    var verdict: ChainVerdict?
    /// The identity published at the end of the handshake (nil before, or without a certificate).
    var published: ClientIdentity?
    let started = ContinuousClock.now

    /// The identity for the presented leaf, with the chain verdict; nil when no certificate was presented.
    func identity() -> ClientIdentity? {
        guard let leaf = chain.first, let verdict else { return nil }
        return try? ClientIdentity(certificate: leaf, der: leafDER, verdict: verdict)
    }
}

/// Replaces HummingbirdTLS' `TLSChannel`: creates the TLS handler **per connection** so that (a) the chain is checked
/// by ``TrustStore`` with a precise reason, (b) `--reject-mode http` can let a bad chain through to answer 403, and
/// (c) the identity is parsed once per connection and bound as a task local for every request on it.
struct MTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let base: Base.Value
        let peer: EventLoopFuture<ConnectionPeer?>
        var channel: any Channel { base.channel }
    }

    let base: Base
    let sslContext: NIOSSLContext
    let trustStore: TrustStore
    let rejectMode: RejectMode
    /// The longest a connection may take to deliver a request (``RequestDeadline``).
    let requestTimeout: TimeAmount
    let onRefusal: @Sendable (HandshakeRefusal) -> Void
    /// Requests answered on the event loop when they can (``ImmediateAnswers``); none: all go to Hummingbird.
    var immediate: (answers: [ImmediateAnswer], respond: ImmediateResponder)?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let state = ConnectionVerification()
        return channel.eventLoop.makeCompletedFuture { () -> EventLoopFuture<ConnectionPeer?> in
            let promise = channel.eventLoop.makePromise(of: ConnectionPeer?.self)
            let trustStore = self.trustStore
            let rejectMode = self.rejectMode
            // Small responses must not wait for delayed ACKs (Nagle): 40 ms per exchange otherwise.
            try channel.syncOptions?.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            let eventLoop = channel.eventLoop
            let tls = NIOSSLServerHandler(context: sslContext) { presented, result in
                let encoded = presented.compactMap { try? $0.toDERBytes() }
                let chain = encoded.compactMap { try? Certificate(derEncoded: $0) }
                state.chain = chain
                state.leafDER = encoded.first
                let finish = { (verdict: ChainVerdict) in
                    state.verdict = verdict
                    if case .refused = verdict, rejectMode == .tls {
                        result.succeed(.failed)
                    } else {
                        result.succeed(.certificateVerified)
                    }
                }
                guard chain.count == presented.count else { return finish(.refused(.unparsable)) }
                // swift-certificates' Verifier is async, but nothing in it waits: it runs to its end right here, and
                // the handshake goes on in this same read. (Completing the promise later lost a request: a TLS 1.3
                // client's first request, arriving with its Finished while the verification was pending, was never
                // read.) Should a verification ever suspend, it finishes on this event loop.
                let verdict = InlineVerification(eventLoop: eventLoop).run { await trustStore.verify(chain: chain) }
                switch verdict {
                case .done(let verdict): finish(verdict)
                case .pending(let future): future.whenSuccess(finish)
                }
            }
            try channel.pipeline.syncOperations.addHandler(tls)
            try channel.pipeline.syncOperations.addHandler(
                PeerCertificateCapture(promise: promise, state: state, onRefusal: onRefusal)
            )
            return promise.futureResult
        }.flatMap { peer in
            base.setup(channel: channel, logger: logger).flatMapThrowing { value in
                // HTTP/1.0 semantics sit between NIO's HTTP/1 decoder and Hummingbird's HTTP-types codec.
                let codec = try channel.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self)
                try channel.pipeline.syncOperations.addHandler(
                    RequestDeadline(limit: requestTimeout),
                    position: .before(codec)
                )
                try channel.pipeline.syncOperations.addHandler(HTTP10ConnectionHandler(), position: .before(codec))
                if let immediate {
                    try channel.pipeline.syncOperations.addHandler(
                        ImmediateAnswers(
                            answers: immediate.answers,
                            peer: state,
                            logger: logger,
                            respond: immediate.respond
                        ),
                        position: .before(codec)
                    )
                }
                return Value(base: value, peer: peer)
            }
        }
    }

    func handle(value: Value, logger: Logger) async {
        let peer = (try? await value.peer.get()) ?? nil
        if peer == nil {
            // The handshake was refused or the peer left: close, then let the HTTP handler drain and finish its
            // async channel (dropping it unfinished traps in NIO). No request can arrive without an identity.
            try? await value.channel.close()
        }
        await PeerIdentity.$current.withValue(peer?.identity) {
            await base.handle(value: value.base, logger: logger)
        }
    }
}

/// Waits for the end of the handshake, then publishes the identity; reports refused handshakes.
final class PeerCertificateCapture: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let promise: EventLoopPromise<ConnectionPeer?>
    private let state: ConnectionVerification
    private let onRefusal: @Sendable (HandshakeRefusal) -> Void
    private var done = false

    init(
        promise: EventLoopPromise<ConnectionPeer?>,
        state: ConnectionVerification,
        onRefusal: @escaping @Sendable (HandshakeRefusal) -> Void
    ) {
        self.promise = promise
        self.state = state
        self.onRefusal = onRefusal
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !done, let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            done = true
            Self.acknowledgeNow(context.channel)
            // No certificate here is only possible in reject mode http: the access layer then answers 403.
            state.published = state.identity()
            promise.succeed(state.published.map(ConnectionPeer.identified) ?? .anonymous)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// TLS 1.3 with a client certificate: the server sends nothing after the client's Finished, so Linux delays
    /// its ACK (up to 40 ms) and a client with Nagle on (`ab`, many older stacks) holds its request until then —
    /// 25 handshakes/s per connection instead of hundreds. Setting TCP_QUICKACK sends the pending ACK now.
    static func acknowledgeNow(_ channel: any Channel) {
        #if os(Linux)
        try? channel.syncOptions?.setOption(
            ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_QUICKACK)),
            value: 1
        )
        #endif
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            let reason: String
            if case .refused(let failure) = state.verdict {
                reason = failure.rawValue
            } else if "\(error)".contains("KEY_USAGE_BIT_INCORRECT") {
                // BoringSSL refuses a client certificate that may not sign before the sandbox sees the chain, in
                // both reject modes: the reason is the sandbox's all the same.
                reason = ChainFailure.wrongKeyUsage.rawValue
            } else if state.chain.isEmpty, "\(error)".contains("CERTIFICATE") {
                reason = ChainFailure.noCertificate.rawValue
            } else {
                reason = "tls-error: \(error)"
            }
            onRefusal(
                HandshakeRefusal(
                    reason: reason,
                    identity: state.identity(),
                    remoteAddress: context.channel.remoteAddress.map(SandboxRequestContext.describe),
                    duration: ContinuousClock.now - state.started
                )
            )
            promise.succeed(nil)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishSilently()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finishSilently()
    }

    private func finishSilently() {
        if !done {
            done = true
            promise.succeed(nil)
        }
    }
}

/// HTTP/1.0 for old clients (`ab`, `openssl s_time -www`, legacy publisher stacks): Hummingbird 2 answers HTTP/1.0
/// with HTTP/1.1 and keeps the connection open without saying so, and those clients hang. This answers in the
/// request's version and closes unless the client asked `Connection: keep-alive` (echoed when kept).
/// It also makes `Connection: Close` (any case) close, as RFC 9110 says header values are case-insensitive.
final class HTTP10ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Exchange {
        var version: HTTPVersion
        var keepAlive: Bool
    }

    /// One per request awaiting its response (requests may be pipelined).
    private var exchanges: [Exchange] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var part = unwrapInboundIn(data)
        if case .head(var head) = part {
            let keepAlive = head.isKeepAlive
            exchanges.append(Exchange(version: head.version, keepAlive: keepAlive))
            if !keepAlive {
                // Hummingbird closes after the response only on this exact header value.
                head.headers.replaceOrAdd(name: "connection", value: "close")
                part = .head(head)
            }
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var part = unwrapOutboundIn(data)
        if case .head(var head) = part, head.status.code >= 200, !exchanges.isEmpty {
            let exchange = exchanges.removeFirst()
            if exchange.version.major == 1, exchange.version.minor == 0 {
                head.version = .http1_0
                head.headers.replaceOrAdd(name: "connection", value: exchange.keepAlive ? "keep-alive" : "close")
            } else if !exchange.keepAlive {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            part = .head(head)
        }
        context.write(wrapOutboundOut(part), promise: promise)
    }
}

/// Closes a connection that does not deliver a whole request in time: from the moment it may send one (open, or
/// the previous response sent) to the request's end. A client trickling its headers or body byte by byte, or never
/// finishing them, then holds a connection (and its memory) for at most `limit`, and an idle keep-alive connection
/// is closed after it too, as web servers do.
final class RequestDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let limit: TimeAmount
    private var timer: Scheduled<Void>?
    /// Requests read whose response has not ended yet.
    private var answering = 0

    init(limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            answering += 1
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            answering = max(0, answering - 1)
            if answering == 0 { arm(context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}

/// Runs an async computation that does not suspend to its end on the calling thread (an event loop), through a task
/// executor that runs each job as it is enqueued; one that does suspend completes a future on the event loop.
struct InlineVerification {
    enum Outcome {
        case done(ChainVerdict)
        case pending(EventLoopFuture<ChainVerdict>)
    }

    let eventLoop: any EventLoop

    func run(_ body: @escaping @Sendable () async -> ChainVerdict) -> Outcome {
        let promise = eventLoop.makePromise(of: ChainVerdict.self)
        let result = NIOLockedValueBox<ChainVerdict?>(nil)
        Task(executorPreference: InlineTaskExecutor(eventLoop: eventLoop)) {
            let verdict = await body()
            result.withLockedValue { $0 = verdict }
            promise.succeed(verdict)
        }
        if let verdict = result.withLockedValue({ $0 }) { return .done(verdict) }
        return .pending(promise.futureResult)
    }
}

/// Runs a job at once when it is enqueued on the event loop's thread (the first, from `Task` creation), on the event
/// loop otherwise (a job resumed from elsewhere).
final class InlineTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if eventLoop.inEventLoop {
            job.runSynchronously(on: asUnownedTaskExecutor())
        } else {
            eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }
}

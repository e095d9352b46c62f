import Access
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import RORFHIR
import Recette

/// The front of the mutual-TLS listener, wrapped around the router: decides access **on the path prefix, before
/// any route exists behind it** (a caller that is not whitelisted gets 403, not 404), turns every error into the
/// service's own form, and journals every request with its bodies.
struct AccessResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == SandboxRequestContext {
    typealias Context = SandboxRequestContext

    let inner: Inner
    let environment: String
    let whitelist: Whitelist
    let journal: Journal
    /// Bytes of each body kept in the journal.
    let journalBodyLimit: Int
    let faults: FaultInjector
    /// Answers an open recette run gives its client instead of the service's.
    let recette: RecetteInjector

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        var request = request
        var context = context
        context.environment = environment
        let path = request.uri.path
        let service = SandboxService.owning(path: path)
        let form = service?.errorForm(path: path)

        var requestBytes: [UInt8] = []
        var response: Response
        let notes = JournalNotes()
        // The realm's discovery, JWKS and summary are public in Keycloak: any verified certificate may read them.
        var decision = decide(
            service: RORTokenService.publicMetadataPaths.contains(path) ? nil : service,
            identity: context.identity
        )
        let fault = faults.effect(path: path, service: service)
        if let delay = fault.delay { try? await Task.sleep(for: delay) }
        do {
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            requestBytes = Array(body.readableBytesView)
            if case .unavailable(let retryAfter, let message, let reason) = fault.outcome {
                // Injected fault: the service's own 503 (before access, as a real outage or maintenance would be).
                decision = AccessDecision(allowed: false, reason: reason, message: message, entry: nil)
                response = ServiceErrors.response(
                    form: form,
                    status: .serviceUnavailable,
                    message: message,
                    subcode: "ServiceUnavailable",
                    retryAfter: retryAfter
                )
            } else if fault.outcome == .drop {
                // Injected fault: the connection closes with no answer at all.
                context.channel.close(promise: nil)
                var entry = journalEntry(
                    request: request,
                    requestBytes: requestBytes,
                    service: service,
                    status: 0,
                    decision: AccessDecision(allowed: false, reason: "fault-dropped", message: "", entry: nil),
                    context: context
                )
                entry.durationMs = Self.milliseconds(ContinuousClock.now - started)
                journal.record(entry)
                return Response(status: .serviceUnavailable)
            } else if decision.allowed,
                let injected = recette.answer(
                    identity: context.identity,
                    service: service?.rawValue,
                    method: request.method.rawValue,
                    path: path,
                    query: request.uri.query,
                    headers: Dictionary(
                        Self.pairs(request.headers).map { ($0.0.lowercased(), $0.1) },
                        uniquingKeysWith: { "\($0), \($1)" }
                    ),
                    body: Data(requestBytes)
                )
            {
                // The run's own answer (a 412, a 503 with Retry-After, an INSi CR 01…), journaled with its reason.
                decision = AccessDecision(allowed: true, reason: injected.reason, message: "", entry: decision.entry)
                response = Self.injectedResponse(injected.answer)
            } else if decision.allowed {
                context.access = decision
                do {
                    response = try await JournalNotes.$current.withValue(notes) {
                        try await inner.respond(to: request, context: context)
                    }
                    if response.status == .notFound, response.headers[.contentType] == nil {
                        // The router's bare 404 (no route): answer in the service's own form.
                        response = ServiceErrors.response(
                            form: form,
                            status: .notFound,
                            message:
                                "No \(service?.rawValue ?? "sandbox") operation answers \(request.method.rawValue) \(path) in this sandbox version.",
                            subcode: "NotFound"
                        )
                    }
                } catch let error as any HTTPResponseError where !(error is HTTPError) {
                    // A service's own error type already knows its protocol form (e.g. FHIRError → OperationOutcome).
                    response =
                        (try? error.response(from: request, context: context))
                        ?? ServiceErrors.response(for: error, form: form)
                } catch {
                    response = ServiceErrors.response(for: error, form: form)
                }
            } else if path == WhoAmI.path, context.identity != nil {
                // whoami explains a refused chain instead of hiding it behind a bare 403.
                response = WhoAmI.response(
                    identity: context.identity,
                    environment: environment,
                    whitelist: whitelist,
                    status: .forbidden
                )
            } else {
                response = ServiceErrors.refusal(form: form, decision: decision)
            }
        } catch {
            // Body over the upload limit (413) or the client went away while sending it.
            response = ServiceErrors.response(for: error, form: form)
        }
        return await journaled(
            response,
            request: request,
            requestBytes: requestBytes,
            service: service,
            decision: decision,
            context: context,
            notes: notes,
            started: started
        )
    }

    /// The exchange answered without waiting, when `answer` can (``ImmediateAnswers``): no fault rule in force,
    /// a service path, the caller accepted by the same decision as ``respond(to:context:)``, and the same journal
    /// row. Nil for anything else: the request then takes ``respond(to:context:)``, which decides it from scratch.
    func respondNow(
        to request: Request,
        body requestBody: ByteBuffer,
        context: Context,
        answer: ImmediateAnswer,
        headerMemos: (request: JournalEntry.HeaderMemo, response: JournalEntry.HeaderMemo)
    ) -> (HTTPResponse, Data)? {
        let started = ContinuousClock.now
        var context = context
        context.environment = environment
        guard faults.isQuiet, recette.isQuiet, let service = SandboxService.owning(path: request.uri.path) else {
            return nil
        }
        let decision = decide(service: service, identity: context.identity)
        guard decision.allowed else { return nil }
        context.access = decision
        guard let reply = answer.answer(request, requestBody, context) else { return nil }
        var head = reply.head
        let body = reply.body
        // As Hummingbird's `Response` states it for a body of known length (and the journal then keeps it).
        head.headerFields[.contentLength] = String(body.count)
        var entry = journalEntry(
            request: request,
            requestBytes: requestBody.readableBytesView,
            service: service,
            status: Int(head.status.code),
            decision: decision,
            context: context,
            headerMemo: headerMemos.request
        )
        entry.responseHeaders = headerMemos.response.encode(Self.pairs(head.headerFields))
        // The stored version the body is, or the body itself when it fits (no copy: the journal then knows it as the
        // one it stored last time).
        let kept: (Data?, Bool)
        if body.count <= journalBodyLimit, let version = reply.storedVersion {
            entry.responseVersion = version
            kept = (nil, false)
        } else {
            kept =
                body.count <= journalBodyLimit
                ? (body.isEmpty ? nil : body, false) : JournalEntry.clip(body, limit: journalBodyLimit)
        }
        Self.record(entry, body: kept, started: started, in: journal)
        return (head, body)
    }

    /// Service paths need a verified chain and a whitelist entry; other paths only a verified chain.
    private func decide(service: SandboxService?, identity: ClientIdentity?) -> AccessDecision {
        if let service {
            return whitelist.decide(identity: identity, service: service, environment: environment)
        }
        if let refusal = Whitelist.chainRefusal(identity) { return refusal }
        return AccessDecision(allowed: true, reason: "chain-verified", message: "chain verified", entry: nil)
    }

    /// Bodies up to this length are gathered before they are written (see ``journaled(_:request:requestBytes:service:decision:context:notes:started:)``).
    static var gatheredBodyLimit: Int { 16 << 20 }

    /// Journals the exchange with its response body (up to the limit).
    ///
    /// A body of known length up to ``gatheredBodyLimit`` — every answer the services build in memory — is gathered
    /// here, journaled, and handed back as one buffer: Hummingbird then writes head, body and end in one batch (one TLS
    /// record, one system call), where a body wrapped to be copied as it was written went out in two. Other bodies
    /// are copied as they are written, and journaled once written (`duration` then covers the whole response).
    private func journaled(
        _ response: Response,
        request: Request,
        requestBytes: [UInt8],
        service: SandboxService?,
        decision: AccessDecision,
        context: Context,
        notes: JournalNotes,
        started: ContinuousClock.Instant
    ) async -> Response {
        var response = response
        let original = response.body
        var entry = journalEntry(
            request: request,
            requestBytes: requestBytes,
            service: service,
            status: Int(response.status.code),
            decision: decision,
            context: context
        )
        entry.responseHeaders = JournalEntry.encodeHeaders(Self.pairs(response.headers))
        let journal = self.journal
        if let length = original.contentLength, length <= Self.gatheredBodyLimit {
            let (body, bytes) = await GatheredBody.gather(original)
            response.body = body
            let kept: (Data?, Bool)
            if var page = notes.page(of: bytes.readableBytesView) {
                // Made of stored versions (a search page): kept as them, up to the same limit.
                page.length = min(page.length, journalBodyLimit)
                entry.responsePage = page
                kept = (nil, bytes.readableBytes > journalBodyLimit)
            } else {
                kept = JournalEntry.clip(bytes.readableBytesView, limit: journalBodyLimit)
            }
            Self.record(entry, body: kept, started: started, in: journal)
            return response
        }
        let captured = CapturedBody(limit: journalBodyLimit)
        let pending = entry
        response.body = ResponseBody(contentLength: original.contentLength) { writer in
            let tee = TeeBodyWriter(base: writer, captured: captured)
            defer { Self.record(pending, body: captured.snapshot(), started: started, in: journal) }
            try await original.write(tee)
        }
        return response
    }

    /// The journal row of a request (its headers and body kept), before its response is known.
    private func journalEntry(
        request: Request,
        requestBytes: some Collection<UInt8>,
        service: SandboxService?,
        status: Int,
        decision: AccessDecision,
        context: Context,
        headerMemo: JournalEntry.HeaderMemo? = nil
    ) -> JournalEntry {
        var entry = JournalEntry(
            environment: environment,
            service: service?.rawValue,
            method: request.method.rawValue,
            path: request.uri.path,
            query: request.uri.query,
            status: status,
            decision: decision.allowed ? .accepted : .refused,
            reason: decision.reason,
            identity: context.identity,
            durationMs: 0,
            remoteAddress: context.remoteAddress
        )
        let headers = Self.pairs(request.headers)
        entry.requestHeaders = headerMemo?.encode(headers) ?? JournalEntry.encodeHeaders(headers)
        (entry.requestBody, entry.requestBodyTruncated) = JournalEntry.clip(requestBytes, limit: journalBodyLimit)
        return entry
    }

    /// The row completed with the response body kept (and whether it was cut) and the duration, then recorded.
    static func record(
        _ entry: JournalEntry,
        body: (Data?, Bool),
        started: ContinuousClock.Instant,
        in journal: Journal
    ) {
        var entry = entry
        (entry.responseBody, entry.responseBodyTruncated) = body
        entry.durationMs = milliseconds(ContinuousClock.now - started)
        journal.record(entry)
    }

    /// An answer a recette pack gives: its status, headers and body (the content type guessed from the body when
    /// the pack does not name it).
    static func injectedResponse(_ answer: RecettePack.Injection) -> Response {
        let body = answer.body ?? ""
        var headers = HTTPFields()
        let guessed =
            body.hasPrefix("{") ? "application/fhir+json" : body.hasPrefix("<") ? "application/soap+xml" : "text/plain"
        headers[.contentType] = answer.contentType ?? guessed
        for (name, value) in (answer.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }

    /// Header fields as the journal encodes them.
    static func pairs(_ fields: HTTPFields) -> [(String, String)] {
        fields.map { ($0.name.canonicalName, $0.value) }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

/// The first `limit` bytes of a response body.
final class CapturedBody: Sendable {
    private let state = NIOLockedValueBox<(bytes: [UInt8], truncated: Bool)>(([], false))
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func append(_ buffer: ByteBuffer) {
        state.withLockedValue { state in
            let room = limit - state.bytes.count
            if buffer.readableBytes > room { state.truncated = true }
            if room > 0 { state.bytes += buffer.readableBytesView.prefix(room) }
        }
    }

    func snapshot() -> (Data?, Bool) {
        state.withLockedValue { state in
            (state.bytes.isEmpty ? nil : Data(state.bytes), state.truncated)
        }
    }
}

struct TeeBodyWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let captured: CapturedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        captured.append(buffer)
        try await base.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }
}

/// A response body collected in memory.
final class GatheredBody: @unchecked Sendable {
    // One task writes, then reads: no lock needed.
    private var buffer: ByteBuffer?
    private var trailers: HTTPFields?

    /// Runs `body` into memory: what to send in its place — one buffer (Hummingbird's single-write path), with its
    /// trailers if it had some, or the same failure if producing it failed — and the bytes it produced.
    static func gather(_ body: ResponseBody) async -> (body: ResponseBody, bytes: ByteBuffer) {
        let gathered = GatheredBody()
        do {
            try await body.write(Writer(gathered: gathered))
        } catch {
            // The client sees the body fail as it would have; the journal keeps what there was.
            return (
                ResponseBody(contentLength: body.contentLength) { _ in throw error }, gathered.buffer ?? ByteBuffer()
            )
        }
        let buffer = gathered.buffer ?? ByteBuffer()
        guard let trailers = gathered.trailers else {
            return (buffer.readableBytes == 0 ? ResponseBody() : ResponseBody(byteBuffer: buffer), buffer)
        }
        return (
            ResponseBody(contentLength: buffer.readableBytes) { writer in
                try await writer.write(buffer)
                try await writer.finish(trailers)
            }, buffer
        )
    }

    struct Writer: ResponseBodyWriter {
        let gathered: GatheredBody

        mutating func write(_ buffer: ByteBuffer) async throws {
            if gathered.buffer == nil {
                gathered.buffer = buffer
            } else {
                var incoming = buffer
                gathered.buffer!.writeBuffer(&incoming)
            }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            gathered.trailers = trailingHeaders
        }
    }
}

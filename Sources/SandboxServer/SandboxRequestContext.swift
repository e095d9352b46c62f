import Access
import Foundation
import HTTPCommon
import Hummingbird
import NIOCore
import Store

/// Request context of the mutual-TLS listener: the caller's identity is read from the connection (captured once
/// per TLS connection by ``MTLSChannel``), never re-parsed per request.
public struct SandboxRequestContext: RequestContext, CallerContext {
    public var coreContext: CoreRequestContextStorage
    /// Nil only in reject mode http when no certificate was presented.
    public let identity: ClientIdentity?
    public let remoteAddress: String?
    /// Set by the access layer for service paths, once the whitelist accepted the caller.
    public var access: AccessDecision?
    /// Set by the access layer: the listener's environment.
    public var environment = SandboxEnvironment.sandbox
    /// The connection (fault injection closes it to simulate a dropped connection).
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.init(
            source: source,
            identity: PeerIdentity.current,
            remoteAddress: source.channel.remoteAddress.map(Self.describe)
        )
    }

    /// With what the connection already knows (``ImmediateAnswers``).
    init(source: ApplicationRequestContextSource, identity: ClientIdentity?, remoteAddress: String?) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.identity = identity
        self.remoteAddress = remoteAddress
    }

    public var responseEncoder: JSONEncoder { SandboxJSON.encoder }

    /// `127.0.0.1:54321` rather than NIO's `[IPv4]127.0.0.1/127.0.0.1:54321`.
    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return address.description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Service bodies may be large (FHIR bundles); the journal keeps at most its own limit of them.
    public var maxUploadSize: Int { 10 * 1024 * 1024 }
}

/// JSON as the sandbox writes it: sorted keys (stable bytes across runs), unescaped slashes, ISO 8601 dates.
public enum SandboxJSON {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// A JSON response with the given status.
    public static func response<T: Encodable>(
        _ value: T,
        status: HTTPResponse.Status = .ok,
        contentType: String = "application/json"
    ) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: contentType],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// An error the API has no answer of its own for: a full disk is 507 with a Retry-After (nothing was stored, the
    /// call may be sent again), anything else a 500 naming what failed.
    public static func unexpected(_ error: any Error, doing task: String = "internal error") -> Response {
        unexpected(error, doing: task, as: Self.error)
    }

    /// The same answer in another form (`form` makes the response from a status and a message).
    static func unexpected(
        _ error: any Error,
        doing task: String = "internal error",
        as form: (HTTPResponse.Status, String) -> Response
    ) -> Response {
        guard StorageSpace.isExhausted(error) else { return form(.internalServerError, "\(task): \(error)") }
        var response = form(.insufficientStorage, StorageSpace.message)
        response.headers[.retryAfter] = String(StorageSpace.retryAfterSeconds)
        return response
    }

    /// `{"error": message}` with the given status: the admin API's error form.
    public static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        response(["error": message], status: status)
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// Response bodies gathered before they are written (so that head, body and end go out in one write), as the access
/// layer does for the journal: the same bytes, trailers and failures reach the client.
@Suite("Gathered response bodies")
struct GatheredBodyTests {
    final class Sink: @unchecked Sendable {
        var bytes = ByteBuffer()
        var writes = 0
        var trailers: HTTPFields?
        var finished = false
    }

    struct SinkWriter: ResponseBodyWriter {
        let sink: Sink
        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            sink.bytes.writeBuffer(&buffer)
            sink.writes += 1
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            sink.trailers = trailingHeaders
            sink.finished = true
        }
    }

    static func send(_ body: ResponseBody) async throws -> Sink {
        let sink = Sink()
        try await body.write(SinkWriter(sink: sink))
        return sink
    }

    struct Failure: Error {}

    @Test func severalBuffersBecomeOne() async throws {
        let original = ResponseBody(contentLength: 6) { writer in
            try await writer.write(ByteBuffer(string: "abc"))
            try await writer.write(ByteBuffer(string: "def"))
            try await writer.finish(nil)
        }
        let (body, bytes) = await GatheredBody.gather(original)
        #expect(String(buffer: bytes) == "abcdef")
        #expect(body.contentLength == 6)
        let sent = try await Self.send(body)
        #expect(String(buffer: sent.bytes) == "abcdef" && sent.writes == 1 && sent.finished && sent.trailers == nil)
    }

    @Test func emptyBodiesStayEmpty() async throws {
        let (body, bytes) = await GatheredBody.gather(ResponseBody())
        #expect(bytes.readableBytes == 0 && body.contentLength == 0)
        let sent = try await Self.send(body)
        #expect(sent.writes == 0 && sent.finished)
    }

    @Test func trailersFollowTheBody() async throws {
        let original = ResponseBody(contentLength: 2) { writer in
            try await writer.write(ByteBuffer(string: "ok"))
            try await writer.finish([.init("X-Checksum")!: "42"])
        }
        let (body, _) = await GatheredBody.gather(original)
        let sent = try await Self.send(body)
        #expect(String(buffer: sent.bytes) == "ok")
        #expect(sent.trailers?[.init("X-Checksum")!] == "42")
    }

    /// A body that fails while produced still fails when sent (the client sees a broken response, as it would have),
    /// and what it produced before failing is what the journal keeps.
    @Test func aFailingBodyFailsWhenSent() async throws {
        let original = ResponseBody(contentLength: 10) { writer in
            try await writer.write(ByteBuffer(string: "part"))
            throw Failure()
        }
        let (body, bytes) = await GatheredBody.gather(original)
        #expect(String(buffer: bytes) == "part")
        await #expect(throws: Failure.self) { _ = try await Self.send(body) }
    }
}

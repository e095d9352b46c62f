import Foundation
import GRDB
import NIOConcurrencyHelpers
import Store

/// A response body made of stored resource versions and the bytes between them — a FHIR `searchset` page — kept by
/// the journal as this recipe and rebuilt when the row is read, as a single read's body is kept as the version it is
/// (``StoredVersion``). Under a live feed every national search page differs from the last (a place's capacity
/// changed on it) and each was a megabyte written, hashed, logged and checkpointed: the server's p99 under writes
/// was the journal's (`docs/performance.md`).
public struct JournalPage: Sendable, Hashable {
    public enum Part: Sendable, Hashable {
        case bytes(Data)
        case version(StoredVersion)
    }

    public var parts: [Part]
    /// Bytes of the rebuilt body the journal keeps: all of them, or the first `--journal-body-limit` (truncated).
    public var length: Int

    public init(parts: [Part], length: Int) {
        self.parts = parts
        self.length = length
    }

    /// As stored in `journal.response_page`: `length`, then each part as a tag (0: bytes, 1: a version as
    /// `type NUL id NUL version NUL lastUpdated`), its byte count and its bytes; counts are 4-byte little-endian.
    /// Written by hand: `JSONSerialization` of a national page's 300 parts was a fifth of a search's CPU.
    public func encoded() -> Data {
        var out = [UInt8]()
        out.reserveCapacity(parts.count * 128)
        func count(_ value: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { out += $0 } }
        count(length)
        for part in parts {
            switch part {
            case .bytes(let bytes):
                out.append(0)
                count(bytes.count)
                out += bytes
            case .version(let version):
                let named = Array(
                    "\(version.type)\u{0}\(version.id)\u{0}\(version.version)\u{0}\(version.lastUpdated)".utf8
                )
                out.append(1)
                count(named.count)
                out += named
            }
        }
        return Data(out)
    }

    public init?(encoded: Data) {
        let bytes = [UInt8](encoded)
        var at = 0
        func count() -> Int? {
            guard at + 4 <= bytes.count else { return nil }
            defer { at += 4 }
            return (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
        }
        guard let length = count() else { return nil }
        var parts: [Part] = []
        while at < bytes.count {
            let tag = bytes[at]
            at += 1
            guard let size = count(), at + size <= bytes.count else { return nil }
            let slice = bytes[at..<at + size]
            at += size
            switch tag {
            case 0: parts.append(.bytes(Data(slice)))
            case 1:
                let fields = slice.split(separator: 0, omittingEmptySubsequences: false).map {
                    String(decoding: $0, as: UTF8.self)
                }
                guard fields.count == 4, let version = Int(fields[2]) else { return nil }
                parts.append(
                    .version(StoredVersion(type: fields[0], id: fields[1], version: version, lastUpdated: fields[3]))
                )
            default: return nil
            }
        }
        self.init(parts: parts, length: length)
    }

    /// The body again, its versions read from the store (current or kept); nil if one of them is no longer there.
    func rebuild(_ versions: inout ResourceHistory.Reader) throws -> Data? {
        var body = Data()
        for part in parts {
            guard body.count < length else { break }
            switch part {
            case .bytes(let bytes): body += bytes
            case .version(let named):
                guard
                    let json = try versions.json(
                        type: named.type,
                        id: named.id,
                        version: named.version,
                        lastUpdated: named.lastUpdated
                    )
                else { return nil }
                body += json
            }
        }
        return body.prefix(length)
    }
}

/// What a service tells the journal of the answer it is building, beside its bytes: the access layer binds one to
/// each call's task (``current``) and reads it when it journals the call.
public final class JournalNotes: Sendable {
    @TaskLocal public static var current: JournalNotes?

    private let state = NIOLockedValueBox<(page: JournalPage, body: Data)?>(nil)

    public init() {}

    /// The body about to be answered is `body`, made as `page` says (the journal checks the bytes are the same).
    public static func answering(_ body: Data, madeAs page: JournalPage) {
        current?.state.withLockedValue { $0 = (page, body) }
    }

    /// The page of the answer, if the answer's bytes are those the service said.
    public func page(of answered: some Collection<UInt8>) -> JournalPage? {
        guard let (page, body) = state.withLockedValue({ $0 }), !body.isEmpty, body.count == answered.count else {
            return nil
        }
        let same =
            answered.withContiguousStorageIfAvailable { answered in
                body.withUnsafeBytes { memcmp($0.baseAddress!, answered.baseAddress!, body.count) == 0 }
            } ?? body.elementsEqual(answered)
        return same ? page : nil
    }
}

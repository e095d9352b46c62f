import Foundation
import GRDB

/// The bytes that rebuild a resource version from the version that replaced it (a reverse delta): copies of the
/// newer version's bytes and the bytes it does not have.
///
/// Why: a capacity PATCH keeps the Location it replaces, and that version differs from the new one in its `meta` and
/// one or two indicators. Keeping it whole wrote its 12.7 KB again (four pages, then the checkpoint's copy) on every
/// PATCH; its delta is a few hundred bytes that fit in the history row.
public enum VersionDelta {
    /// `old[old]` is (or is expected to be: each is checked) `new[new ..< new + old.count]`.
    public typealias Match = (old: Range<Int>, new: Int)

    /// Matches shorter than this are left as literal bytes (an operation costs about as much).
    static let shortest = 8

    /// The delta that rebuilds `old` from `new`, or nil when it would not be under half of `old`.
    /// `matches`: where `new` copied `old`'s bytes (hints: each is checked, extended both ways while bytes agree, and
    /// the common head and tail are found without them).
    ///
    /// Format: operations one after the other, each a varint `length << 1 | isCopy`, then a copy's offset in `new`
    /// (varint) or a literal's bytes.
    public static func encode(old: Data, new: Data, matches: [Match] = []) -> Data? {
        old.withUnsafeBytes { oldRaw in
            new.withUnsafeBytes { newRaw -> Data? in
                let o = oldRaw.bindMemory(to: UInt8.self)
                let n = newRaw.bindMemory(to: UInt8.self)
                var out: [UInt8] = []
                out.reserveCapacity(1024)
                var cursor = 0  // `old`'s bytes encoded so far
                func literal(upTo end: Int) {
                    guard end > cursor else { return }
                    appendVarint((end - cursor) << 1, to: &out)
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: o[cursor..<end]))
                    cursor = end
                }
                // The two empty matches find the common head and tail.
                let hints =
                    [(old: 0..<0, new: 0)] + matches.sorted { $0.old.lowerBound < $1.old.lowerBound }
                    + [(old: o.count..<o.count, new: n.count)]
                for hint in hints {
                    var start = hint.old.lowerBound
                    var newStart = hint.new
                    var end = hint.old.upperBound
                    guard start >= 0, start <= end, end <= o.count, newStart >= 0, newStart + (end - start) <= n.count,
                        end >= cursor
                    else { continue }
                    if start < cursor {
                        newStart += cursor - start
                        start = cursor
                    }
                    guard memcmp(o.baseAddress! + start, n.baseAddress! + newStart, end - start) == 0 else { continue }
                    while start > cursor, newStart > 0, o[start - 1] == n[newStart - 1] {
                        start -= 1
                        newStart -= 1
                    }
                    let newEnd = newStart + (end - start)
                    end += commonLength(
                        o.baseAddress! + end,
                        n.baseAddress! + newEnd,
                        min(o.count - end, n.count - newEnd)
                    )
                    guard end - start >= shortest else { continue }
                    literal(upTo: start)
                    appendVarint((end - start) << 1 | 1, to: &out)
                    appendVarint(newStart, to: &out)
                    cursor = end
                }
                literal(upTo: o.count)
                return out.count < o.count / 2 ? Data(out) : nil
            }
        }
    }

    /// The bytes `delta` rebuilds from `new`; nil if it does not fit them (not a delta of `new`).
    public static func apply(_ delta: Data, to new: Data) -> Data? {
        delta.withUnsafeBytes { deltaRaw in
            new.withUnsafeBytes { newRaw -> Data? in
                let d = deltaRaw.bindMemory(to: UInt8.self)
                let n = newRaw.bindMemory(to: UInt8.self)
                var out: [UInt8] = []
                out.reserveCapacity(n.count + 256)
                var position = 0
                while position < d.count {
                    guard let header = readVarint(d, &position) else { return nil }
                    let length = header >> 1
                    if header & 1 == 1 {
                        guard let offset = readVarint(d, &position), offset <= n.count, length <= n.count - offset
                        else { return nil }
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: n[offset..<offset + length]))
                    } else {
                        guard length <= d.count - position else { return nil }
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: d[position..<position + length]))
                        position += length
                    }
                }
                return Data(out)
            }
        }
    }

    /// How many bytes `a` and `b` have in common from their start, up to `limit`: eight at a time (the forward
    /// extension runs over most of a Location, byte by byte it was 1.4 % of a capacity PATCH's CPU).
    static func commonLength(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ limit: Int) -> Int {
        var length = 0
        while length + 8 <= limit {
            let difference =
                UnsafeRawPointer(a + length).loadUnaligned(as: UInt64.self)
                ^ UnsafeRawPointer(b + length).loadUnaligned(as: UInt64.self)
            if difference != 0 { return length + UInt64(littleEndian: difference).trailingZeroBitCount / 8 }
            length += 8
        }
        while length < limit, a[length] == b[length] { length += 1 }
        return length
    }

    static func appendVarint(_ value: Int, to out: inout [UInt8]) {
        var value = UInt(value)
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    static func readVarint(_ bytes: UnsafeBufferPointer<UInt8>, _ position: inout Int) -> Int? {
        var value = 0
        var shift = 0
        while position < bytes.count, shift < 63 {
            let byte = bytes[position]
            position += 1
            value |= Int(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}

/// The versions of FHIR resources a write replaced (`fhir_history`), kept so that what changed stays visible (the
/// console's differences, the journal's response bodies).
///
/// A version replaced by a write that knows what it copied (a capacity PATCH) is kept as a ``VersionDelta`` from the
/// next version (`base_updated` names it: version + 1, with that `last_updated`), except every
/// ``wholeEvery``th version, kept whole, so that rebuilding a version applies at most that many deltas.
public enum ResourceHistory {
    /// A capacity PATCH's delta is ~25 bytes (its `meta` and the count it changed), a whole Location 12.7 KB: at one
    /// in 16 the whole ones were 94 % of the history's bytes. Rebuilding a version then copies at most 63 versions'
    /// bytes (~0.1 ms for a Location).
    public static let wholeEvery = 64

    /// Keeps `version` of a resource (its `lastUpdated`, its bytes `json`) that a write replaces; `next`: the version
    /// replacing it (version + 1) and where it copied `json`'s bytes, when known.
    public static func keep(
        type: String,
        id: String,
        version: Int,
        lastUpdated: String,
        json: Data,
        next: (lastUpdated: String, json: Data, matches: [VersionDelta.Match])?,
        in db: Database
    ) throws {
        var stored = json
        var base: String?
        if let next, version % wholeEvery != 0,
            let delta = VersionDelta.encode(old: json, new: next.json, matches: next.matches)
        {
            stored = delta
            base = next.lastUpdated
        }
        try db.cachedStatement(
            sql:
                "INSERT OR REPLACE INTO fhir_history (type, id, version, last_updated, json, base_updated) VALUES (?, ?, ?, ?, ?, ?)"
        )
        .execute(arguments: [type, id, version, lastUpdated, stored, base])
    }

    /// The bytes of a version, current or kept; nil when the store no longer has it (or has another version under
    /// that number: `lastUpdated` differs, e.g. the data was reloaded).
    public static func json(
        type: String,
        id: String,
        version: Int,
        lastUpdated: String?,
        in db: Database
    ) throws -> Data? {
        var reader = Reader(db)
        return try reader.json(type: type, id: id, version: version, lastUpdated: lastUpdated)
    }

    /// The newest `limit` versions kept, newest first, rebuilt.
    public static func versions(
        type: String,
        id: String,
        limit: Int,
        in db: Database
    ) throws -> [(version: Int, lastUpdated: String, json: Data)] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT version, last_updated, json, base_updated FROM fhir_history WHERE type = ? AND id = ? ORDER BY version DESC LIMIT ?
                """,
            arguments: [type, id, limit]
        )
        var reader = Reader(db)
        return try reader.rebuild(rows.reversed().map(KeptVersion.init), type: type, id: id).reversed().map {
            ($0.version, $0.lastUpdated, $0.json)
        }
    }

    /// Reads versions in one snapshot, remembering those it rebuilt: the journal lists consecutive versions of a
    /// Location, each the base of the one before (rebuilding each from the next version kept whole made a page of
    /// 100 rows copy ~3 000 versions).
    public struct Reader {
        let db: Database
        var known: [Key: (lastUpdated: String, json: Data)] = [:]

        struct Key: Hashable {
            var type: String
            var id: String
            var version: Int
        }

        public init(_ db: Database) { self.db = db }

        /// The bytes of a version, current or kept (see ``ResourceHistory/json(type:id:version:lastUpdated:in:)``).
        public mutating func json(type: String, id: String, version: Int, lastUpdated: String?) throws -> Data? {
            guard let found = try self.version(Key(type: type, id: id, version: version)),
                lastUpdated == nil || found.lastUpdated == lastUpdated
            else {
                return nil
            }
            return found.json
        }

        mutating func version(_ key: Key) throws -> (lastUpdated: String, json: Data)? {
            if let known = known[key] { return known }
            if let current = try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT last_updated, json FROM fhir_resource WHERE type = ? AND id = ? AND version = ?"
                ),
                arguments: [key.type, key.id, key.version]
            ) {
                return (current["last_updated"], current["json"])
            }
            // The version and those after it, up to the first kept whole or whose next one is known (or the current one).
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT version, last_updated, json, base_updated FROM fhir_history WHERE type = ? AND id = ? AND version >= ? ORDER BY version LIMIT ?
                        """
                ),
                arguments: [key.type, key.id, key.version, wholeEvery + 1]
            )
            var chain: [KeptVersion] = []
            for row in rows.lazy.map(KeptVersion.init) {
                guard row.version == key.version + chain.count else { break }
                chain.append(row)
                if row.baseUpdated == nil || known[Key(type: key.type, id: key.id, version: row.version + 1)] != nil {
                    break
                }
            }
            guard let found = try rebuild(chain, type: key.type, id: key.id).first, found.version == key.version else {
                return nil
            }
            return (found.lastUpdated, found.json)
        }

        /// Consecutive kept versions, oldest first, as far as each one can be rebuilt (a delta's base is the next one
        /// in `kept`, or read when it is the last), remembered.
        mutating func rebuild(_ kept: [KeptVersion], type: String, id: String) throws -> [KeptVersion] {
            var rebuilt = kept
            var newer: (version: Int, lastUpdated: String, json: Data)?
            for index in kept.indices.reversed() {
                var version = kept[index]
                if let base = version.baseUpdated {
                    if newer?.version != version.version + 1 {
                        newer = try self.version(Key(type: type, id: id, version: version.version + 1)).map {
                            (version.version + 1, $0.lastUpdated, $0.json)
                        }
                    }
                    guard let next = newer, next.lastUpdated == base,
                        let json = VersionDelta.apply(version.json, to: next.json)
                    else {
                        return Array(rebuilt[(index + 1)...])
                    }
                    version.json = json
                    version.baseUpdated = nil
                    rebuilt[index] = version
                }
                known[Key(type: type, id: id, version: version.version)] = (version.lastUpdated, version.json)
                newer = (version.version, version.lastUpdated, version.json)
            }
            return rebuilt
        }
    }

    struct KeptVersion {
        var version: Int
        var lastUpdated: String
        var json: Data
        /// Nil: `json` is the version; otherwise it is a delta from version + 1, which has this `last_updated`.
        var baseUpdated: String?

        init(_ row: Row) {
            version = row["version"]
            lastUpdated = row["last_updated"]
            json = row["json"]
            baseUpdated = row["base_updated"]
        }
    }
}

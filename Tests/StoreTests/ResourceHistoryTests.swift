import Foundation
import GRDB
import Store
import Testing

@Suite("Kept versions (deltas)")
struct ResourceHistoryTests {
    /// A small deterministic generator: the cases are the same on every run.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(bound, 1)))
        }
        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next(256)) } }
    }

    /// Whatever the two versions and the hints (right, shifted, out of range), a delta rebuilds the old bytes exactly.
    @Test func deltasRebuildTheOldBytesWhateverTheHints() throws {
        var random = Generator(state: 42)
        var encoded = 0
        for round in 0..<400 {
            let new = Data(random.bytes(random.next(3_000)))
            // The old version: the new one with a few spans replaced, inserted or removed (or unrelated bytes).
            var old = [UInt8](new)
            if round % 10 == 9 {
                old = random.bytes(random.next(3_000))
            } else {
                for _ in 0..<random.next(4) {
                    let at = random.next(old.count + 1)
                    let length = min(random.next(40), old.count - at)
                    old.replaceSubrange(at..<at + length, with: random.bytes(random.next(40)))
                }
            }
            let oldData = Data(old)
            var hints: [VersionDelta.Match] = []
            for _ in 0..<random.next(6) {
                let start = random.next(old.count + 1) - 5
                let length = random.next(300)
                hints.append((start..<start + length, random.next(new.count + 10) - 5))
            }
            if let delta = VersionDelta.encode(old: oldData, new: new, matches: hints) {
                encoded += 1
                #expect(delta.count < old.count / 2)
                #expect(VersionDelta.apply(delta, to: new) == oldData, "round \(round)")
            }
        }
        #expect(encoded > 100, "versions that differ little are kept as deltas (\(encoded) of 400)")
    }

    /// One byte changed at each position (every alignment of the eight-byte comparisons): the delta is that byte and
    /// two copies (near an end, the few bytes before it are literal too: a copy of under 8 bytes is not worth one).
    @Test func aChangedByteIsFoundAtEveryPosition() throws {
        let new = Data((0..<48).map { UInt8($0 + 65) })
        for position in new.indices {
            var old = new
            old[position] = 0x2A
            let delta = try #require(
                VersionDelta.encode(old: old, new: new, matches: [(0..<1, 0)]),
                "position \(position)"
            )
            #expect(delta.count <= ((8..<40).contains(position) ? 8 : 12), "position \(position): \(delta.count) bytes")
            #expect(VersionDelta.apply(delta, to: new) == old, "position \(position)")
        }
    }

    /// The hints a JSON layout gives (members copied) find what the common head and tail cannot: a change near each end.
    @Test func copiedRangesFindTheUnchangedMiddle() throws {
        let middle = String(repeating: #"{"url":"indicator","valueInteger":7},"#, count: 100)
        let old =
            Data(#"{"meta":{"versionId":"1"},"extension":["#.utf8) + Data(middle.utf8)
            + Data(#"{"url":"last","valueInteger":1}]}"#.utf8)
        let new =
            Data(#"{"meta":{"versionId":"22"},"extension":["#.utf8) + Data(middle.utf8)
            + Data(#"{"url":"last","valueInteger":2}]}"#.utf8)
        let start = 37
        #expect(VersionDelta.encode(old: old, new: new) == nil, "head and tail alone leave the middle as literal bytes")
        let delta = try #require(
            VersionDelta.encode(old: old, new: new, matches: [(start..<start + middle.utf8.count, start + 1)])
        )
        #expect(delta.count < 100)
        #expect(VersionDelta.apply(delta, to: new) == old)
    }

    /// Bytes that are not a delta of the version given (cut short, a copy past its end) rebuild nothing.
    @Test func aDeltaThatDoesNotFitRebuildsNothing() throws {
        let new = Data(String(repeating: "abcdefgh", count: 64).utf8)
        let old = Data("x".utf8) + new.dropLast(3)
        let delta = try #require(VersionDelta.encode(old: old, new: new, matches: [(1..<old.count, 0)]))
        #expect(VersionDelta.apply(delta, to: new) == old)
        #expect(VersionDelta.apply(delta, to: new.prefix(100)) == nil, "a copy past the end")
        #expect(VersionDelta.apply(delta.dropLast(), to: new) == nil, "cut in its last operation")
        #expect(VersionDelta.apply(Data([0x80]), to: new) == nil, "an unfinished varint")
        #expect(VersionDelta.apply(Data([0x06, 0x61]), to: new) == nil, "a literal longer than what follows")
    }

    /// A chain of versions kept by deltas: every one reads back exactly (one whole every `wholeEvery`); a version
    /// asked for with another time, or whose chain lost a link, reads as nothing.
    @Test func keptVersionsReadBackExactly() throws {
        let store = try SandboxStore.inMemory()
        func version(_ n: Int) -> Data {
            // What changes is at the end: the common head and tail make the delta (no hints needed).
            Data(
                #"{"resourceType":"Location","id":"l1","extension":[\#((0..<60).map { #"{"v":\#($0)}"# }.joined(separator: ","))],"meta":{"versionId":"\#(n)"}}"#
                    .utf8
            )
        }
        let w = ResourceHistory.wholeEvery
        let count = 2 * w + 8
        try store.writer.write { db in
            try db.execute(
                sql:
                    "INSERT INTO fhir_resource (type, id, version, last_updated, json) VALUES ('Location', 'l1', 1, 't1', ?)",
                arguments: [version(1)]
            )
            for n in 1..<count {
                try ResourceHistory.keep(
                    type: "Location",
                    id: "l1",
                    version: n,
                    lastUpdated: "t\(n)",
                    json: version(n),
                    next: ("t\(n + 1)", version(n + 1), []),
                    in: db
                )
                try db.execute(
                    sql: "UPDATE fhir_resource SET version = ?, last_updated = ?, json = ?",
                    arguments: [n + 1, "t\(n + 1)", version(n + 1)]
                )
            }
        }
        try store.writer.read { db in
            for n in 1...count {
                #expect(
                    try ResourceHistory.json(type: "Location", id: "l1", version: n, lastUpdated: "t\(n)", in: db)
                        == version(n),
                    "version \(n)"
                )
            }
            // Newest first, as the journal lists them: each rebuilt from the one read before it.
            var reader = ResourceHistory.Reader(db)
            for n in (1...count).reversed() {
                #expect(
                    try reader.json(type: "Location", id: "l1", version: n, lastUpdated: "t\(n)") == version(n),
                    "version \(n), newest first"
                )
            }
            #expect(try ResourceHistory.json(type: "Location", id: "l1", version: 5, lastUpdated: "t6", in: db) == nil)
            #expect(
                try ResourceHistory.json(type: "Location", id: "l1", version: count + 1, lastUpdated: nil, in: db)
                    == nil
            )
            let newest = try ResourceHistory.versions(type: "Location", id: "l1", limit: 20, in: db)
            #expect(newest.map(\.version) == Array((count - 20..<count).reversed()))
            #expect(newest.allSatisfy { $0.json == version($0.version) && $0.lastUpdated == "t\($0.version)" })
            let whole = try Int.fetchAll(
                db,
                sql: "SELECT version FROM fhir_history WHERE base_updated IS NULL ORDER BY version"
            )
            #expect(whole == [w, 2 * w])
            #expect(
                try Int.fetchOne(db, sql: "SELECT MAX(LENGTH(json)) FROM fhir_history WHERE base_updated IS NOT NULL")!
                    < version(1).count / 4
            )
        }
        // A link lost (version w + 4's row): w + 1 to w + 3 cannot be rebuilt, w (whole) and w + 4's successors still can.
        try store.writer.write { db in
            try db.execute(sql: "DELETE FROM fhir_history WHERE version = ?", arguments: [w + 4])
        }
        let (read, listed) = try store.writer.read { db in
            (
                try [w, w + 1, w + 3, w + 4, w + 5, count - 1].map {
                    try ResourceHistory.json(type: "Location", id: "l1", version: $0, lastUpdated: nil, in: db)
                },
                try ResourceHistory.versions(type: "Location", id: "l1", limit: count, in: db).map(\.version)
            )
        }
        #expect(read == [version(w), nil, nil, nil, version(w + 5), version(count - 1)])
        #expect(listed == Array((w + 5..<count).reversed()))
    }
}

import Foundation
import GRDB
import Store
import SwiftASN1
import TestPKI
import Testing
import X509

@testable import Access

@Suite("Whitelist entries, decisions and the journal")
struct WhitelistTests {
    static let dn = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    /// An identity for a freshly minted client certificate (P-256, fast), chain verdict given.
    static func identity(_ dn: String, verdict: ChainVerdict = .trusted) throws -> ClientIdentity {
        let root = try CertificateMinter.authority(
            subject: try SandboxPKI.caName("TEST ROOT"),
            algorithm: .p256,
            issuer: nil,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        let leaf = try CertificateMinter.client(
            subject: try SubjectDN(parsing: dn).distinguishedName(),
            algorithm: .p256,
            issuer: root,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        return try ClientIdentity(certificate: leaf.certificate, verdict: verdict)
    }

    @Test func dnEntryAcceptsTheSameDNWrittenAnyWay() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity(Self.dn)
        for form in [caller.subject.openSSLOneLine, caller.subject.slashForm, Self.dn.lowercased()] {
            try whitelist.removeAll()
            try whitelist.add(try Whitelist.entry(from: .init(service: "ror-fhir", subjectDN: form), origin: "test"))
            let decision = whitelist.decide(
                identity: caller,
                service: .rorFHIR,
                environment: SandboxEnvironment.sandbox
            )
            #expect(decision.allowed, "written as \(form)")
        }
    }

    @Test func refusalQuotesTheDNAndNamesTheWhitelist() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity(Self.dn)
        try whitelist.add(try Whitelist.entry(from: .init(service: "insi", subjectDN: Self.dn), origin: "test"))
        let decision = whitelist.decide(identity: caller, service: .rorFHIR, environment: SandboxEnvironment.sandbox)
        #expect(!decision.allowed)
        #expect(decision.reason == "not-whitelisted")
        #expect(decision.message.contains("'\(Self.dn)'"))
        #expect(decision.message.contains("ror-fhir whitelist of environment 'bac-a-sable'"))
        #expect(decision.message.contains("whitelisted for: insi@bac-a-sable"))
    }

    @Test func nearMissInAnotherRDNOrderIsExplainedNotAccepted() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity(Self.dn)
        try whitelist.add(
            try Whitelist.entry(
                from: .init(
                    service: "ror-fhir",
                    subjectDN: "C=FR,ST=Paris (75),O=GIP - TEST3012,OU=33333333333,CN=CLIENT_TEST_RORN"
                ),
                origin: "test"
            )
        )
        let decision = whitelist.decide(identity: caller, service: .rorFHIR, environment: SandboxEnvironment.sandbox)
        #expect(!decision.allowed)
        #expect(decision.message.contains("same attributes in another order"))
    }

    @Test func publicKeyEntryMatchesWhateverTheDN() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity("CN=ANYTHING,O=Whatever,C=FR")
        try whitelist.add(
            try Whitelist.entry(
                from: .init(service: "ror-csd", publicKeySHA256: caller.spkiSHA256.base64),
                origin: "test"
            )
        )
        #expect(whitelist.decide(identity: caller, service: .rorCSD, environment: SandboxEnvironment.sandbox).allowed)
        let other = try Self.identity("CN=ANYTHING,O=Whatever,C=FR")  // same DN, another key
        let refused = whitelist.decide(identity: other, service: .rorCSD, environment: SandboxEnvironment.sandbox)
        #expect(!refused.allowed)
        #expect(refused.message.contains(other.spkiSHA256.hex))
    }

    @Test func environmentsAreSeparate() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity(Self.dn)
        try whitelist.add(
            try Whitelist.entry(
                from: .init(environment: "production", service: "ror-fhir", subjectDN: Self.dn),
                origin: "test"
            )
        )
        #expect(!whitelist.decide(identity: caller, service: .rorFHIR, environment: SandboxEnvironment.sandbox).allowed)
        #expect(whitelist.decide(identity: caller, service: .rorFHIR, environment: "production").allowed)
    }

    @Test func chainFailureWinsOverTheWhitelist() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let caller = try Self.identity(Self.dn, verdict: .refused(.expired))
        try whitelist.add(try Whitelist.entry(from: .init(service: "ror-fhir", subjectDN: Self.dn), origin: "test"))
        let decision = whitelist.decide(identity: caller, service: .rorFHIR, environment: SandboxEnvironment.sandbox)
        #expect(!decision.allowed)
        #expect(decision.reason == "expired")
        #expect(decision.message.contains("expired"))
    }

    @Test func addingTwiceUpdatesInsteadOfDuplicating() throws {
        let whitelist = try Whitelist(store: try SandboxStore.inMemory())
        let first = try whitelist.add(
            try Whitelist.entry(from: .init(service: "ror-fhir", subjectDN: Self.dn), origin: "test")
        )
        let second = try whitelist.add(
            try Whitelist.entry(
                from: .init(
                    service: "ror-fhir",
                    subjectDN: "C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN",
                    role: "feed",
                    establishments: ["750099992"]
                ),
                origin: "test"
            )
        )
        #expect(first.id == second.id)
        let entries = try whitelist.entries()
        #expect(entries.count == 1)
        #expect(entries[0].role == .feed)
        #expect(entries[0].establishments == ["750099992"])
        #expect(try whitelist.remove(id: first.id!))
        #expect(try !whitelist.remove(id: first.id!))
    }

    @Test(arguments: [
        (WhitelistRequest(service: "ror-fhr", subjectDN: dn), "unknown service"),
        (WhitelistRequest(service: "ror-fhir"), "whitelists by subject DN"),
        (WhitelistRequest(service: "ror-fhir", subjectDN: "CN=x,FOO=y"), "unknown attribute type 'FOO'"),
        (WhitelistRequest(service: "ror-csd", subjectDN: dn), "whitelists by public key"),
        (WhitelistRequest(service: "ror-csd", publicKeySHA256: "abcd"), "64 hex digits"),
        (WhitelistRequest(service: "ror-csd", certificatePEM: "not pem"), "expected a PEM"),
        (WhitelistRequest(service: "ror-fhir", subjectDN: dn, role: "admin"), "unknown role"),
        (WhitelistRequest(service: "ror-fhir", subjectDN: dn, establishments: ["75 01"]), "not an identifier"),
        (WhitelistRequest(environment: "prod env", service: "ror-fhir", subjectDN: dn), "not a valid name"),
        (WhitelistRequest(service: "insi", subjectDN: dn, clientId: "x"), "apply to ror-fhir entries only"),
        (WhitelistRequest(service: "ror-fhir", subjectDN: dn, clientId: "bad id"), "not a valid client id"),
        (
            WhitelistRequest(service: "ror-fhir", subjectDN: dn, clientId: "x", accessProfile: 6),
            "accessProfile must be 0 to 5"
        ),
        (
            WhitelistRequest(service: "ror-fhir", subjectDN: dn, clientId: "x", rorHeaders: ["Ror-Bogus": "1"]),
            "unknown header(s) Ror-Bogus"
        ),
    ])
    func invalidRequests(request: WhitelistRequest, message: String) {
        #expect {
            _ = try Whitelist.entry(from: request, origin: "test")
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func certificatePEMGivesTheDNForDNServicesAndTheKeyForCSD() throws {
        let root = try CertificateMinter.authority(
            subject: try SandboxPKI.caName("TEST ROOT"),
            algorithm: .p256,
            issuer: nil,
            validity: DateInterval(start: Date(), duration: 86400)
        )
        let leaf = try CertificateMinter.client(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .p256,
            issuer: root,
            validity: DateInterval(start: Date(), duration: 86400)
        )
        let pem = try leaf.certificatePEM
        let fhir = try Whitelist.entry(from: .init(service: "ror-fhir", certificatePEM: pem), origin: "test")
        #expect(fhir.subjectDN == Self.dn)
        #expect(fhir.publicKeySHA256 == nil)
        let csd = try Whitelist.entry(from: .init(service: "ror-csd", certificatePEM: pem), origin: "test")
        #expect(csd.subjectDN == nil)
        #expect(csd.publicKeySHA256 == (try SPKIDigest(publicKey: leaf.certificate.publicKey)))
    }

    @Test func editsByAnotherConnectionAreSeen() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        let server = try Whitelist(store: try SandboxStore.open(path: path), externalRefreshInterval: 0)
        let cli = try Whitelist(store: try SandboxStore.open(path: path))
        try cli.add(try Whitelist.entry(from: .init(service: "insi", subjectDN: Self.dn), origin: "cli"))
        #expect(try server.entries().count == 1)
    }

    @Test func journalKeepsAtMostMaxRowsAndMasksAuthorization() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 5)
        for index in 0..<12 {
            var entry = JournalEntry(
                environment: "bac-a-sable",
                service: "ror-fhir",
                method: "GET",
                path: "/p\(index)",
                status: 200,
                decision: .accepted,
                reason: "whitelisted",
                identity: nil,
                durationMs: 1
            )
            entry.requestHeaders = JournalEntry.encodeHeaders([("Authorization", "Bearer secret-token-value")])
            journal.record(entry)
            if index % 4 == 0 { journal.flush() }
        }
        let rows = try journal.entries(JournalFilter(limit: 100))
        #expect(rows.count == 5)
        #expect(rows.first?.path == "/p11")
        #expect(rows.last?.path == "/p7")
        #expect(rows[0].requestHeaders?.contains("secret-token-value") == false)
        #expect(rows[0].requestHeaders?.contains("Bearer ***(18 chars)") == true)
        let clipped = JournalEntry.clip(Array(repeating: 65, count: 10), limit: 4)
        #expect(clipped.0?.count == 4 && clipped.1)
    }

    /// Journaled headers are a JSON object: names lowercased and sorted, repeated names merged, values escaped
    /// (quotes, backslashes, control characters) with UTF-8 kept whole, secrets masked.
    @Test func journaledHeadersAreValidJSON() throws {
        let text = JournalEntry.encodeHeaders([
            ("X-Quote", "say \"hi\" \\ tab\tend\u{01}"), ("accept", "a"), ("Accept", "b"),
            ("x-nom", "Hôpital Sainte-Anne"),
            ("Cookie", "session=abc"),
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(
            object == [
                "accept": "a, b", "cookie": "***(11 chars)", "x-nom": "Hôpital Sainte-Anne",
                "x-quote": "say \"hi\" \\ tab\tend\u{01}",
            ]
        )
        #expect(text.hasPrefix("{\"accept\":"))
        #expect(text.contains("\\u0001"))
        #expect(JournalEntry.encodeHeaders([]) == "{}")
    }

    /// A secret is replaced by its length in characters (scalars), its scheme kept when it has one.
    @Test(arguments: [
        ("Bearer abc.def.ghi", "Bearer ***(11 chars)"), ("session=abc", "***(11 chars)"), ("Bearer ", "***(7 chars)"),
        (" abc", "***(4 chars)"), ("Basic  x", "Basic ***(2 chars)"), ("Jeton é€", "Jeton ***(2 chars)"),
        ("", "***(0 chars)"),
    ])
    func secretsAreMasked(_ value: String, _ masked: String) {
        #expect(JournalEntry.mask(value) == masked)
    }

    /// A long body repeated by many calls is stored once; every row still gives it back whole; bodies no row
    /// refers to any more are removed as rows are pruned; short bodies stay in their row.
    @Test func journalStoresARepeatedBodyOnce() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 20)
        func record(_ path: String, response: String, request: String? = nil) {
            var entry = JournalEntry(
                environment: "bac-a-sable",
                service: "ror-fhir",
                method: "GET",
                path: path,
                status: 200,
                decision: .accepted,
                reason: nil,
                identity: nil,
                durationMs: 1
            )
            entry.responseBody = Data(response.utf8)
            entry.requestBody = request.map { Data($0.utf8) }
            journal.record(entry)
        }
        let location = String(repeating: "{\"resourceType\":\"Location\"}", count: 100)  // 2 700 bytes
        for index in 0..<10 { record("/same\(index)", response: location, request: "short") }
        journal.flush()
        record("/other", response: location + " ", request: location)
        journal.flush()
        func count(_ table: String) throws -> Int {
            try store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
        }
        #expect(try count("journal") == 11)
        #expect(try count("journal_body") == 2)
        let rows = try journal.entries(JournalFilter(limit: 100))
        #expect(
            rows.allSatisfy { $0.responseBody.map { String(decoding: $0, as: UTF8.self).hasPrefix(location) } == true }
        )
        #expect(rows.first?.requestBody == Data(location.utf8))
        #expect(rows.last?.requestBody == Data("short".utf8))
        let one = try #require(rows.first?.id)
        #expect(try journal.entry(id: one)?.responseBody == Data((location + " ").utf8))

        // 30 rows with their own bodies push the first ones out: their bodies go with them.
        for index in 0..<30 { record("/unique\(index)", response: location + String(index)) }
        journal.flush()
        #expect(try count("journal") == 20)
        #expect(try count("journal_body") <= 20 + 2)
        #expect(
            try journal.entries(JournalFilter(limit: 100)).allSatisfy { $0.responseBody?.count ?? 0 > location.count }
        )
        let stale = try store.writer.read {
            try Int.fetchOne(
                $0,
                sql:
                    "SELECT COUNT(*) FROM journal_body WHERE id NOT IN (SELECT response_body_id FROM journal WHERE response_body_id IS NOT NULL) AND id NOT IN (SELECT request_body_id FROM journal WHERE request_body_id IS NOT NULL)"
            )
        }
        #expect(stale == 0)
        // The same body again after its copy was removed is stored anew.
        record("/again", response: location)
        journal.flush()
        #expect(try journal.entries(JournalFilter(limit: 1)).first?.responseBody == Data(location.utf8))
        try journal.removeAll()
        #expect(try count("journal_body") == 0)
    }

    /// Collecting the bodies no row refers to looks each one up by index (migration v13) instead of scanning the
    /// journal: at 100 000 rows the scans held the writer ~130 ms every 10 000 rows pruned.
    @Test func unreferencedBodiesAreFoundByIndex() throws {
        let store = try SandboxStore.inMemory()
        let plan = try store.writer.write { db in
            try Journal.prepareCollection(db)
            return try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + Journal.collectSQL).map { $0["detail"] as String }
        }
        // Only the candidates are read, not every body kept.
        #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(plan)")
        #expect(plan.contains { $0.hasPrefix("SEARCH b USING INTEGER PRIMARY KEY") }, "\(plan)")
        #expect(plan.filter { $0.contains("USING COVERING INDEX") }.count == 3, "\(plan)")
    }

    /// A response body named as a stored version reads back as that version's bytes, current or replaced since
    /// (kept in `fhir_history`); a version the data no longer has (reloaded: same number, another time) reads as no
    /// body, never as another resource's bytes.
    @Test func storedVersionBodiesReadBackFromTheStore() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 20)
        let v1 = Data(#"{"resourceType":"Location","id":"l1","meta":{"versionId":"1"}}"#.utf8)
        let v2 = Data(#"{"resourceType":"Location","id":"l1","meta":{"versionId":"2"}}"#.utf8)
        try store.writer.write { db in
            try db.execute(
                sql:
                    "INSERT INTO fhir_resource (type, id, version, last_updated, json) VALUES ('Location', 'l1', 1, 't1', ?)",
                arguments: [v1]
            )
        }
        func record(_ version: Int, _ updated: String) {
            var entry = JournalEntry(
                environment: "bac-a-sable",
                service: "ror-fhir",
                method: "PATCH",
                path: "/Location",
                status: 200,
                decision: .accepted,
                reason: nil,
                identity: nil,
                durationMs: 1
            )
            entry.responseVersion = StoredVersion(type: "Location", id: "l1", version: version, lastUpdated: updated)
            journal.record(entry)
        }
        record(1, "t1")
        journal.flush()
        #expect(try journal.entries(JournalFilter(limit: 1)).first?.responseBody == v1)
        #expect(
            try store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM journal_body") } == 0,
            "no copy"
        )
        // Version 2 replaces 1, which is kept: both rows give their own bytes.
        try store.writer.write { db in
            try db.execute(
                sql:
                    "INSERT INTO fhir_history (type, id, version, last_updated, json) VALUES ('Location', 'l1', 1, 't1', ?)",
                arguments: [v1]
            )
            try db.execute(
                sql: "UPDATE fhir_resource SET version = 2, last_updated = 't2', json = ? WHERE id = 'l1'",
                arguments: [v2]
            )
        }
        record(2, "t2")
        journal.flush()
        #expect(try journal.entries(JournalFilter(limit: 10)).map(\.responseBody) == [v2, v1])
        // Reloaded: version 2 again, written at another time. The old row's body is gone, not replaced.
        try store.writer.write { db in
            try db.execute(sql: "DELETE FROM fhir_history")
            try db.execute(sql: "UPDATE fhir_resource SET last_updated = 't3' WHERE id = 'l1'")
        }
        #expect(try journal.entries(JournalFilter(limit: 10)).map(\.responseBody) == [nil, nil])
    }

    /// A long body is kept as its head and a tail shared by the bodies that end the same way (a search page answered
    /// again with a new Bundle id): each row gives its own bytes back exactly, and a tail goes when its last head does.
    @Test func longBodiesShareTheirTail() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 4)
        // Bytes of every value (NUL and invalid UTF-8 included), longer than a split body.
        let tail = Data((0..<(Journal.splitBodySize + 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        func page(_ id: Int) -> Data {
            Data("{\"id\":\"\(id)\"}".utf8) + Data(repeating: 0xFF, count: Journal.headSize) + tail
        }
        func record(_ body: Data) {
            var entry = JournalEntry(
                environment: "bac-a-sable",
                service: "ror-fhir",
                method: "GET",
                path: "/Location",
                status: 200,
                decision: .accepted,
                reason: nil,
                identity: nil,
                durationMs: 1
            )
            entry.responseBody = body
            entry.requestBody = body
            journal.record(entry)
        }
        func count(_ sql: String) throws -> Int { try store.writer.read { try Int.fetchOne($0, sql: sql) ?? 0 } }
        func stored() throws -> Int { try count("SELECT SUM(LENGTH(body)) FROM journal_body") }
        record(page(1))
        journal.flush()
        let first = try stored()
        for id in 2...4 { record(page(id)) }
        journal.flush()
        #expect(try count("SELECT COUNT(*) FROM journal_body WHERE tail_id IS NOT NULL") == 4, "one head per page")
        #expect(try stored() == first + 3 * Journal.headSize, "the tail stored once")
        let rows = try journal.entries(JournalFilter(limit: 10))
        #expect(rows.map(\.responseBody) == (1...4).reversed().map(page))
        #expect(rows.map(\.requestBody) == (1...4).reversed().map(page))
        #expect(try journal.entry(id: try #require(rows.last?.id))?.responseBody == page(1))
        // A body whose tail is a whole long body stored before (a head with its own tail) gets a tail of its own.
        let nested = Data(repeating: 0x41, count: Journal.headSize) + page(1)
        record(nested)
        journal.flush()
        #expect(try journal.entries(JournalFilter(limit: 1)).first?.responseBody == nested)
        #expect(try journal.entries(JournalFilter(limit: 4)).last?.responseBody == page(2))

        // Short pages push the long ones out: their heads, then their tail, are removed.
        for index in 0..<8 { record(Data("short \(index)".utf8)) }
        journal.flush()
        #expect(try count("SELECT COUNT(*) FROM journal") == 4)
        #expect(try count("SELECT COUNT(*) FROM journal_body") == 0)
    }
}

@Test func thumbprintIsTheSameFromTheCertificateOrItsDER() throws {
    let identity = try WhitelistTests.identity(WhitelistTests.dn)
    let root = try CertificateMinter.authority(
        subject: try SandboxPKI.caName("R"),
        algorithm: .p256,
        issuer: nil,
        validity: DateInterval(start: Date(), duration: 60)
    )
    var serializer = DER.Serializer()
    try serializer.serialize(root.certificate)
    let viaDER = try ClientIdentity(certificate: root.certificate, der: serializer.serializedBytes, verdict: .trusted)
    let viaCertificate = try ClientIdentity(certificate: root.certificate, verdict: .trusted)
    #expect(viaDER.certificateThumbprint == viaCertificate.certificateThumbprint)
    #expect(viaDER.certificateThumbprint.count == 43)  // 32 bytes, base64url without padding
    #expect(identity.certificateThumbprint != viaDER.certificateThumbprint)
}

/// The journal writes its times itself, in GRDB's `Date` storage format: the same text, so that stored rows read back
/// as GRDB would read its own and compare with times GRDB writes (filters, pruning).
@Test func journalTimesAreStoredAsGRDBStoresDates() throws {
    var generator = SystemRandomNumberGenerator()
    var instants = [
        Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_764_900_000.999),
        Date(timeIntervalSince1970: 951_782_400.5),
    ]
    for _ in 0..<2000 {
        instants.append(
            Date(
                timeIntervalSince1970: Double(Int.random(in: 0...4_102_444_800, using: &generator))
                    + Double.random(in: 0..<1, using: &generator)
            )
        )
    }
    for instant in instants {
        #expect(
            JournalEntry.storedTime(instant).databaseValue == instant.databaseValue,
            "\(instant.timeIntervalSince1970)"
        )
    }
}

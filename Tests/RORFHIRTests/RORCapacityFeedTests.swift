import FHIRCore
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// The ROR capacity feed end to end: mutual TLS, a feeder token, FHIRPath Patch bodies as bed-management software
/// sends them (scenarios 2, 2bis, 3 of the ROR documentation).
@Suite("ROR capacity feed")
struct RORCapacityFeedTests {
    @Test func replaceThenAddThenDeleteAsTheRORClientAlgorithm() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            // Scenario 2bis: replace the current undifferentiated availability.
            let replaced = try await CapacityFeed.replaceAvailable(running, count: 7, client: feeder, token: token)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.headers[.eTag] == "W/\"2\"")
            #expect(replaced.headers[.lastModified] != nil)
            #expect(replaced.headers[HTTPField.Name("X-Sandbox-Previous-Version")!] == "1")
            #expect(try await CapacityFeed.available(running) == [7], "a consumer sees the new availability at once")

            // The client algorithm: replace an indicator the Location does not have → 404 on the indicators → add.
            let selector48 = CapacityFeed.selector(status: "02", temporality: "04")
            let missing = try await CapacityFeed.patch(
                running,
                body: CapacityFeed.body(
                    "replace",
                    path: selector48,
                    value: CapacityFeed.indicator(status: "02", temporality: "04", count: 3)
                ),
                client: feeder,
                token: token
            )
            #expect(missing.status == .notFound)
            let outcome = try missing.json()["issue"] as? [[String: Any]]
            #expect(outcome?.first?["code"] as? String == "not-found")
            #expect(
                outcome?.first?["expression"] as? [String] == [
                    "Location.extension.where(url='\(CapacityFeed.capacity)')"
                ]
            )
            #expect(
                (outcome?.first?["diagnostics"] as? String)?.contains("Aucun indicateur présent en base ne correspond")
                    == true
            )
            let added = try await CapacityFeed.patch(
                running,
                body: CapacityFeed.body(
                    "add",
                    path: "Location.extension.where(url='\(CapacityFeed.capacity)')",
                    value: CapacityFeed.indicator(status: "02", temporality: "04", count: 3)
                ),
                client: feeder,
                token: token
            )
            #expect(added.status == .ok, "\(added.text)")
            #expect(try await CapacityFeed.available(running, temporality: "04") == [3])
            #expect(
                try await CapacityFeed.patch(
                    running,
                    body: CapacityFeed.body(
                        "replace",
                        path: selector48,
                        value: CapacityFeed.indicator(status: "02", temporality: "04", count: 5)
                    ),
                    client: feeder,
                    token: token
                ).status == .ok
            )
            #expect(try await CapacityFeed.available(running, temporality: "04") == [5])

            // Scenario 3: delete; a second delete finds nothing.
            let deleted = try await CapacityFeed.patch(
                running,
                body: CapacityFeed.body("delete", path: selector48),
                client: feeder,
                token: token
            )
            #expect(deleted.status == .ok && deleted.headers[.eTag] == "W/\"5\"")
            #expect(try await CapacityFeed.available(running, temporality: "04").isEmpty)
            #expect(
                try await CapacityFeed.patch(
                    running,
                    body: CapacityFeed.body("delete", path: selector48),
                    client: feeder,
                    token: token
                ).status == .notFound
            )

            // Every accepted PATCH kept the version it replaced.
            let versions = try await running.sandbox.store.writer.read { db in
                try Int.fetchAll(
                    db,
                    sql:
                        "SELECT version FROM fhir_history WHERE type = 'Location' AND id = 'loc-00001-1' ORDER BY version"
                )
            }
            #expect(versions == [1, 2, 3, 4])
            // Kept as deltas from the next version, each rebuilt exactly (the journal gives 200s' bodies back from them:
            // `keepAlivePatchesAnswerAndJournalLikeTheRoute`): the bytes of the indicators replaced or removed and of `meta`,
            // not the whole Location (the seeded version 1, whose layout no PATCH recorded, shares only its head and tail).
            let (kept, size) = try await running.sandbox.store.writer.read { db in
                (
                    try Row.fetchAll(
                        db,
                        sql:
                            "SELECT LENGTH(json) AS size, base_updated FROM fhir_history WHERE type = 'Location' AND id = 'loc-00001-1' ORDER BY version"
                    ),
                    try Int.fetchOne(
                        db,
                        sql: "SELECT LENGTH(json) FROM fhir_resource WHERE type = 'Location' AND id = 'loc-00001-1'"
                    ) ?? 0
                )
            }
            #expect(
                kept.allSatisfy { ($0["base_updated"] as String?) != nil }
                    && kept.dropFirst().allSatisfy { ($0["size"] as Int) < size / 5 },
                "\(kept), \(size)"
            )
            // The indicators' search rows, kept by difference, are exactly those of the Location as stored.
            try await Self.expectExactIndex(running, id: "loc-00001-1")
            let journal = try await running.journalRows { $0.method == "PATCH" && $0.status == 200 }
            #expect(
                journal.contains { $0.responseHeaders?.lowercased().contains("x-sandbox-previous-version") == true }
            )
        }
    }

    /// The stored search rows of a Location are a full extraction of its stored JSON, row for row.
    static func expectExactIndex(_ running: RunningSandbox, id: String) async throws {
        let repository = running.sandbox.ror.repository
        let stored = try #require(try await repository.read(type: "Location", id: id))
        // The stored bytes are the Location written whole, though a PATCH copies those of what it did not change.
        if case .object(let parsed) = try JSON(parsing: stored.json) {
            #expect(JSON.object(parsed).data() == stored.json)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: stored.json) as? [String: Any])
        let full = SearchIndexer.rows(
            for: object,
            parameters: Array(repository.registry.parameters["Location"]!.values)
        )
        let rows = try await repository.store.writer.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT param, system, code, text, number, low, high, ref_type, ref_id FROM fhir_index WHERE type = 'Location' AND id = ?",
                arguments: [id]
            ).map { (row: Row) -> SearchIndexRow in
                let numbers: (Double?, Double?, Double?) = (row[4], row[5], row[6])
                return SearchIndexRow(
                    param: row[0],
                    system: row[1],
                    code: row[2],
                    text: row[3],
                    number: numbers.0,
                    low: numbers.1,
                    high: numbers.2,
                    refType: row[7],
                    refID: row[8]
                )
            }
        }
        func counted(_ rows: [SearchIndexRow]) -> [SearchIndexRow: Int] {
            rows.reduce(into: [:]) { $0[$1, default: 0] += 1 }
        }
        #expect(counted(rows) == counted(full))
        #expect(rows.contains { $0.param == "nb-capacity" }, "capacity rows present")
    }

    struct RefusalCase: Sendable, CustomStringConvertible {
        var label: String
        var identifier: String = CapacityFeed.place
        var body: String
        var status: HTTPResponse.Status
        var code: String
        var message: String
        var expression: String?
        var description: String { label }
    }

    static let refusals: [RefusalCase] = [
        RefusalCase(
            label: "unknown Location",
            identifier: "1759000001/NOPE",
            body: CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", count: 1)
            ),
            status: .notFound,
            code: "not-found",
            message:
                "La Location avec l'identifiant externe de synchro OU l'identifiant unique de saisie : '1759000001/NOPE' n'a pas été trouvée.",
            expression: "Location"
        ),
        RefusalCase(
            label: "invalid indicator",
            body: CapacityFeed.body(
                "add",
                path: "Location.extension.where(url='\(CapacityFeed.capacity)')",
                value: CapacityFeed.indicator(status: "07", gender: nil, count: 1)
            ),
            status: .badRequest,
            code: "business-rule",
            message:
                "Les valeurs du nouvel objet ne correspondent pas à un indicateur valide : capacityStatus: 07 / temporalityCapacity: 01 / genderCapacityAvailable: null / capacityClosingType: null / additionalBedType: null / crisisType: null / temporaryAssignement: 01"
        ),
        RefusalCase(
            label: "places on a beds Location",
            body: CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", type: "02", count: 1)
            ),
            status: .badRequest,
            code: "business-rule",
            message: "L'attribut 'natureCapacite' a un code différent de celui attendu"
        ),
        RefusalCase(
            label: "indicator without nbCapacity",
            body: CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", count: 1, leaving: "nbCapacity")
            ),
            status: .badRequest,
            code: "business-rule",
            message: "'nbCapacity' est obligatoire"
        ),
        RefusalCase(
            label: "an indicator twice",
            body: CapacityFeed.body(
                "add",
                path: "Location.extension.where(url='\(CapacityFeed.capacity)')",
                value: CapacityFeed.indicator(status: "02", count: 1)
            ),
            status: .badRequest,
            code: "business-rule",
            message: "L'indicateur 02/01/03/null/null/null/01 serait présent deux fois : utiliser replace"
        ),
        RefusalCase(
            label: "path outside the indicators",
            body: CapacityFeed.body("replace", path: "Location.name", value: ["url": "x"]),
            status: .badRequest,
            code: "invalid",
            message: "only changes capacity indicators",
            expression: "Location.name"
        ),
        RefusalCase(
            label: "unsupported FHIRPath",
            body: CapacityFeed.body("delete", path: "Location.extension.where(url='\(CapacityFeed.capacity)').last()"),
            status: .badRequest,
            code: "not-supported",
            message: "function 'last()' is not supported"
        ),
        RefusalCase(
            label: "several indicators for a replace",
            body: CapacityFeed.body(
                "replace",
                path: "Location.extension.where(url='\(CapacityFeed.capacity)')",
                value: CapacityFeed.indicator(status: "02", count: 1)
            ),
            status: .badRequest,
            code: "business-rule",
            message: "un seul indicateur"
        ),
        RefusalCase(
            label: "insert",
            body: CapacityFeed.body("insert", path: CapacityFeed.selector(status: "02")),
            status: .badRequest,
            code: "not-supported",
            message: "'insert' is not supported"
        ),
        RefusalCase(
            label: "not Parameters",
            body: #"{"resourceType":"Location"}"#,
            status: .badRequest,
            code: "invalid",
            message: "Parameters resource"
        ),
        RefusalCase(
            label: "malformed JSON",
            body: #"{"resourceType": "Parameters", "#,
            status: .badRequest,
            code: "structure",
            message: "not a JSON object"
        ),
        RefusalCase(
            label: "duplicate member",
            body: #"{"resourceType": "Parameters", "parameter": [], "parameter": []}"#,
            status: .badRequest,
            code: "structure",
            message: "'parameter' appears twice"
        ),
        RefusalCase(
            label: "deep JSON",
            body: String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
            status: .badRequest,
            code: "structure",
            message: "deeper than 64"
        ),
        RefusalCase(
            label: "nbCapacity as text (profile)",
            body: CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: {
                    var value = CapacityFeed.indicator(status: "02", count: 1)
                    value["extension"] = (value["extension"] as! [[String: Any]]).map {
                        $0["url"] as? String == "nbCapacity" ? ["url": "nbCapacity", "valueInteger": "douze"] : $0
                    }
                    return value
                }()
            ),
            status: .unprocessableContent,
            code: "value",
            message: "is not a valid integer",
            expression:
                "Location.extension.where(url='\(CapacityFeed.capacity)').extension.where(url='nbCapacity').valueInteger"
        ),
        RefusalCase(
            label: "not an extension value",
            body: CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: ["url": "https://example.org/x"]
            ),
            status: .badRequest,
            code: "invalid",
            message: "valueExtension"
        ),
        // Delete then add again: the added (last) indicator is checked against the profile.
        RefusalCase(
            label: "bad date on an added indicator (profile)",
            body: {
                var value = CapacityFeed.indicator(status: "02", count: 1)
                value["extension"] = (value["extension"] as! [[String: Any]]).map {
                    $0["url"] as? String == "capacityUpdateDate"
                        ? ["url": "capacityUpdateDate", "valueDateTime": "22/11/2026"] : $0
                }
                let operations: [[String: Any]] = [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "delete"],
                            ["name": "path", "valueString": CapacityFeed.selector(status: "02")],
                        ],
                    ],
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "add"],
                            [
                                "name": "path",
                                "valueString": "Location.extension.where(url='\(CapacityFeed.capacity)')",
                            ],
                            ["name": "value", "valueExtension": value],
                        ],
                    ],
                ]
                return String(
                    decoding: try! JSONSerialization.data(withJSONObject: [
                        "resourceType": "Parameters", "parameter": operations,
                    ]),
                    as: UTF8.self
                )
            }(),
            status: .unprocessableContent,
            code: "value",
            message: "is not a valid dateTime",
            expression:
                "Location.extension.where(url='\(CapacityFeed.capacity)').extension.where(url='capacityUpdateDate').valueDateTime"
        ),
    ]

    @Test(arguments: refusals)
    func refusalsNameTheProblemAndChangeNothing(_ test: RefusalCase) async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let before = try await running.sandbox.ror.repository.read(type: "Location", id: "loc-00001-1")
            let response = try await CapacityFeed.patch(
                running,
                test.identifier,
                body: test.body,
                client: feeder,
                token: token
            )
            #expect(response.status == test.status, "\(response.text)")
            let issue = try #require((try response.json()["issue"] as? [[String: Any]])?.first)
            #expect(issue["code"] as? String == test.code)
            #expect((issue["diagnostics"] as? String)?.contains(test.message) == true, "\(issue["diagnostics"] ?? "")")
            if let expression = test.expression { #expect(issue["expression"] as? [String] == [expression]) }
            #expect(
                try await running.sandbox.ror.repository.read(type: "Location", id: "loc-00001-1") == before,
                "nothing stored"
            )
            // Still serving.
            #expect(
                try await CapacityFeed.replaceAvailable(running, count: 2, client: feeder, token: token).status == .ok
            )
        }
    }

    /// Concurrent feeds of one Location: each is applied on the version the previous one wrote (none lost).
    @Test func concurrentFeedsOfOneLocationAreAllApplied() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for count in 1...8 {
                    group.addTask {
                        let response = try await CapacityFeed.replaceAvailable(
                            running,
                            count: count,
                            client: feeder,
                            token: token
                        )
                        return (response.status, response.headers[.eTag])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0.0 == .ok })
            #expect(Set(statuses.compactMap(\.1)) == Set((2...9).map { "W/\"\($0)\"" }), "eight distinct versions")
            let versions = try await running.sandbox.store.writer.read { db in
                try Int.fetchAll(
                    db,
                    sql:
                        "SELECT version FROM fhir_history WHERE type = 'Location' AND id = 'loc-00001-1' ORDER BY version"
                )
            }
            #expect(versions == Array(1...8))
            try await Self.expectExactIndex(running, id: "loc-00001-1")
        }
    }

    @Test func severalLocationsForOneIdentifierAnswer412() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let repository = running.sandbox.ror.repository
            let stored = try #require(try await repository.read(type: "Location", id: "loc-00001-1"))
            try await repository.store.writer.write { db in
                var copy = try JSONSerialization.jsonObject(with: stored.json) as! [String: Any]
                copy["id"] = "loc-copy"
                _ = try repository.save(copy, in: db)
            }
            let response = try await CapacityFeed.patch(
                running,
                body: CapacityFeed.body("delete", path: CapacityFeed.selector(status: "02")),
                client: feeder,
                token: token
            )
            #expect(response.status == .preconditionFailed)
            let issue = try #require((try response.json()["issue"] as? [[String: Any]])?.first)
            #expect(issue["code"] as? String == "multiple-matches")
            #expect(issue["diagnostics"] as? String == "La Location recherchée n'est pas unique, il y a '2' résultats")
        }
    }

    @Test func accessRulesOfTheFeed() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let update = CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", count: 1)
            )
            #expect(
                try await CapacityFeed.patch(running, body: update, client: feeder, token: nil).status == .unauthorized
            )
            // An establishment outside the feeder's list (loc-00002-1 belongs to eg-00002, FINESS 699000003).
            let other = try await CapacityFeed.patch(
                running,
                "1699000003/LIT000021",
                body: update,
                client: feeder,
                token: token
            )
            #expect(other.status == .forbidden)
            #expect(other.text.contains("699000003"))
            // A consumer's token: whitelisted to consume, not to feed.
            let consumerFiles = try #require(running.info.clientCertificates["ror-consumer"])
            let consumer = ClientFiles(
                folder: consumerFiles.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(consumerFiles)
            )
            let consumerToken = try await RORConsumer.accessToken(running, client: consumer)
            let refused = try await CapacityFeed.patch(running, body: update, client: consumer, token: consumerToken)
            #expect(refused.status == .forbidden && refused.text.contains("role feed"))
            // Refused before its body is read: a broken body does not change the answer.
            let refusedFirst = try await CapacityFeed.patch(
                running,
                body: "{\"resourceType\": ",
                client: consumer,
                token: consumerToken
            )
            #expect(
                refusedFirst.status == .forbidden && refusedFirst.text.contains("role feed"),
                "\(refusedFirst.text)"
            )
            // A proprietary solution: one certificate per establishment, FINESS in the OU (1<FINESS>), no list.
            let dn = "CN=LOGICIEL LITS,OU=1699000003,O=CLINIQUE SANDBOX,C=FR"
            let own = try SharedPKI.client(dn)
            let body =
                #"{"service": "ror-fhir", "subjectDN": "\#(dn)", "role": "feed", "clientId": "own-feeder", "accessProfile": 1}"#
            #expect(try await running.admin("/admin/whitelist", method: .post, body: body).status == .created)
            let ownToken = try #require(
                try await RORConsumer.token(
                    running,
                    client: own,
                    form: "grant_type=client_credentials&client_id=own-feeder"
                ).json()["access_token"] as? String
            )
            let mine = try await CapacityFeed.patch(
                running,
                "1699000003/LIT000021",
                body: update,
                client: own,
                token: ownToken
            )
            #expect(mine.status == .ok, "\(mine.text)")
            #expect(
                try await CapacityFeed.patch(running, body: update, client: own, token: ownToken).status == .forbidden
            )
        }
    }

    @Test func transportRefusals() async throws {
        let (running, feeder, token) = try await CapacityFeed.start(configure: { $0.maxBody = 4096 })
        try await running.whileRunning {
            let update = CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", count: 1)
            )
            // The media type before its parameters, case and spaces aside; token verified and Location cached from here,
            // so the refusals below are checked where an accepted PATCH is answered at once too.
            let accepted = try await CapacityFeed.patch(
                running,
                body: CapacityFeed.body(
                    "replace",
                    path: CapacityFeed.selector(status: "02"),
                    value: CapacityFeed.indicator(status: "02", count: 3)
                ),
                client: feeder,
                token: token,
                contentType: " Application/FHIR+JSON ; charset=UTF-8"
            )
            #expect(accepted.status == .ok, "\(accepted.text)")
            let media = try await CapacityFeed.patch(
                running,
                body: update,
                client: feeder,
                token: token,
                contentType: "application/json-patch+json"
            )
            #expect(media.status == .unsupportedMediaType)
            #expect((try media.json()["issue"] as? [[String: Any]])?.first?["code"] as? String == "not-supported")
            let large = try await CapacityFeed.patch(
                running,
                body: String(repeating: " ", count: 5000) + update,
                client: feeder,
                token: token
            )
            #expect(large.status == .contentTooLarge)
            let utf8 = try await CapacityFeed.patch(
                running,
                body: "",
                client: feeder,
                token: token,
                bytes: [0x7B, 0xFF, 0xFE, 0x7D]
            )
            #expect(utf8.status == .badRequest && utf8.text.contains("UTF-8"))
            let noIdentifier = try await running.request(
                "/ws-synchro-dispo-lits-fhir/Location",
                method: .patch,
                client: feeder,
                headers: [.contentType: "application/fhir+json", .authorization: "Bearer \(token)"],
                body: update
            )
            #expect(noIdentifier.status == .badRequest)
            #expect(
                (try noIdentifier.json()["issue"] as? [[String: Any]])?.first?["expression"] as? [String] == [
                    "identifier"
                ]
            )
            #expect(try await CapacityFeed.available(running) == [3], "nothing stored")
        }
    }
}

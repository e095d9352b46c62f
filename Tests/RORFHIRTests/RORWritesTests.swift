import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// Writes under `/ws-diffusion-fhir`: create, conditional create, update with `If-Match`, scenario 1's PATCH,
/// `$validate`, `Prefer`, profile validation, the writer role.
@Suite("ROR writes")
struct RORWritesTests {
    /// The demo feeder's registered Ror-* values.
    static let feederHeaders: HTTPFields = [
        HTTPField.Name("Ror-Profil-Utilisateur-Code")!: "CU20",
        HTTPField.Name("Ror-Profil-Utilisateur-System")!: "1.2.250.1.213.1.6.1.66",
        HTTPField.Name("Ror-Role-Metier-Code")!: "AUTOMATE",
        HTTPField.Name("Ror-Role-Metier-System")!: "1.2.250.1.213.1.1.4.6",
    ]

    static func send(
        _ running: RunningSandbox,
        _ method: HTTPRequest.Method,
        _ path: String,
        body: Any? = nil,
        client: ClientFiles,
        token: String,
        headers extra: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        var headers = feederHeaders
        headers[.authorization] = "Bearer \(token)"
        headers[.contentType] = "application/fhir+json"
        for field in extra { headers[field.name] = field.value }
        let text = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        return try await running.request(
            "/ws-diffusion-fhir/" + path,
            method: method,
            client: client,
            headers: headers,
            body: text
        )
    }

    static func seed(_ type: String, _ id: String) throws -> [String: Any] {
        let data = try Data(contentsOf: SharedPKI.repositorySeeds.appendingPathComponent("ror/dataset.json"))
        let bundle = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (bundle["entry"] as! [[String: Any]]).map { $0["resource"] as! [String: Any] }.first {
            $0["resourceType"] as? String == type && $0["id"] as? String == id
        }!
    }

    @Test func createConditionalCreateAndUpdate() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            var offer = try Self.seed("HealthcareService", "hs-00001-1")
            offer["id"] = nil
            offer["identifier"] = [["value": "11/NEW0001"]]
            let created = try await Self.send(
                running,
                .post,
                "HealthcareService",
                body: offer,
                client: feeder,
                token: token
            )
            #expect(created.status == .created, "\(created.text)")
            #expect(created.headers[.eTag] == "W/\"1\"")
            let id = try #require(try created.json()["id"] as? String)
            #expect(created.headers[.location]?.hasSuffix("/HealthcareService/\(id)/_history/1") == true)
            // A consumer finds it at once.
            let consumerFiles = try #require(running.info.clientCertificates["ror-consumer"])
            let consumer = ClientFiles(
                folder: consumerFiles.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(consumerFiles)
            )
            let consumerToken = try await RORConsumer.accessToken(running, client: consumer)
            let found = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService?identifier=11/NEW0001",
                client: consumer,
                token: consumerToken
            )
            #expect(try found.json()["total"] as? Int == 1)

            // If-None-Exist: the existing one, nothing created; ambiguous → 412.
            let again = try await Self.send(
                running,
                .post,
                "HealthcareService",
                body: offer,
                client: feeder,
                token: token,
                headers: [HTTPField.Name("If-None-Exist")!: "identifier=11/NEW0001"]
            )
            let againID = try again.json()["id"] as? String
            #expect(again.status == .ok && againID == id)
            _ = try await Self.send(running, .post, "HealthcareService", body: offer, client: feeder, token: token)
            let ambiguous = try await Self.send(
                running,
                .post,
                "HealthcareService",
                body: offer,
                client: feeder,
                token: token,
                headers: [HTTPField.Name("If-None-Exist")!: "identifier=11/NEW0001"]
            )
            #expect(ambiguous.status == .preconditionFailed)
            let badCondition = try await Self.send(
                running,
                .post,
                "HealthcareService",
                body: offer,
                client: feeder,
                token: token,
                headers: [HTTPField.Name("If-None-Exist")!: "nonsense=1"]
            )
            #expect(badCondition.status == .badRequest)

            // Update with If-Match: the current version passes, a stale one is refused.
            var updated = try created.json()
            updated["name"] = "Unité renommée"
            let put = try await Self.send(
                running,
                .put,
                "HealthcareService/\(id)",
                body: updated,
                client: feeder,
                token: token,
                headers: [.ifMatch: "W/\"1\""]
            )
            #expect(put.status == .ok && put.headers[.eTag] == "W/\"2\"", "\(put.text)")
            let stale = try await Self.send(
                running,
                .put,
                "HealthcareService/\(id)",
                body: updated,
                client: feeder,
                token: token,
                headers: [.ifMatch: "W/\"1\""]
            )
            #expect(stale.status == .preconditionFailed)
            #expect(
                try await Self.send(
                    running,
                    .put,
                    "HealthcareService/\(id)",
                    body: updated,
                    client: feeder,
                    token: token,
                    headers: [.ifMatch: "soon"]
                ).status == .badRequest
            )
            #expect(
                try await Self.send(
                    running,
                    .put,
                    "HealthcareService/other",
                    body: updated,
                    client: feeder,
                    token: token
                ).status == .badRequest,
                "id mismatch"
            )
            var named = updated
            named["id"] = "hs-chosen"
            #expect(
                try await Self.send(
                    running,
                    .put,
                    "HealthcareService/hs-chosen",
                    body: named,
                    client: feeder,
                    token: token
                ).status == .created
            )
            let history = try await running.sandbox.store.writer.read { db in
                try Int.fetchAll(
                    db,
                    sql: "SELECT version FROM fhir_history WHERE type = 'HealthcareService' AND id = ?",
                    arguments: [id]
                )
            }
            #expect(history == [1])

            // Prefer.
            let minimal = try await Self.send(
                running,
                .put,
                "HealthcareService/\(id)",
                body: updated,
                client: feeder,
                token: token,
                headers: [HTTPField.Name("Prefer")!: "return=minimal"]
            )
            #expect(minimal.status == .ok && minimal.text.isEmpty && minimal.headers[.eTag] == "W/\"3\"")
            let outcome = try await Self.send(
                running,
                .put,
                "HealthcareService/\(id)",
                body: updated,
                client: feeder,
                token: token,
                headers: [HTTPField.Name("Prefer")!: "return=OperationOutcome"]
            )
            #expect(try outcome.json()["resourceType"] as? String == "OperationOutcome")
        }
    }

    @Test func invalidWritesAreRefusedAndNothingIsStored() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            var offer = try Self.seed("HealthcareService", "hs-00001-1")
            offer["identifier"] = nil
            let invalid = try await Self.send(
                running,
                .put,
                "HealthcareService/hs-00001-1",
                body: offer,
                client: feeder,
                token: token
            )
            #expect(invalid.status == .unprocessableContent)
            let issues = try #require(try invalid.json()["issue"] as? [[String: Any]])
            #expect(
                issues.contains {
                    $0["code"] as? String == "required"
                        && $0["expression"] as? [String] == ["HealthcareService.identifier"]
                }
            )
            #expect(
                try await running.sandbox.ror.repository.read(type: "HealthcareService", id: "hs-00001-1")?.version == 1
            )

            #expect(
                try await Self.send(
                    running,
                    .post,
                    "HealthcareService",
                    body: ["resourceType": "Organization"],
                    client: feeder,
                    token: token
                ).status == .badRequest
            )
            #expect(
                try await Self.send(
                    running,
                    .post,
                    "Device",
                    body: ["resourceType": "Device"],
                    client: feeder,
                    token: token
                ).status == .badRequest,
                "not a served type"
            )
            // A consumer may not write.
            let consumerFiles = try #require(running.info.clientCertificates["ror-consumer"])
            let consumer = ClientFiles(
                folder: consumerFiles.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(consumerFiles)
            )
            let consumerToken = try await RORConsumer.accessToken(running, client: consumer)
            var headers = RORConsumer.rorHeaders
            headers[.authorization] = "Bearer \(consumerToken)"
            headers[.contentType] = "application/fhir+json"
            let refused = try await running.request(
                "/ws-diffusion-fhir/HealthcareService",
                method: .post,
                client: consumer,
                headers: headers,
                body: String(
                    decoding: try JSONSerialization.data(withJSONObject: Self.seed("HealthcareService", "hs-00001-1")),
                    as: UTF8.self
                )
            )
            #expect(refused.status == .forbidden && refused.text.contains("role feed"))
        }
    }

    @Test func scenarioOneNewPlaceThenAttachItToTheOffer() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            var place = try Self.seed("Location", "loc-00001-1")
            place["id"] = nil
            place["identifier"] = [["value": "1759000001/NEWPLACE"]]
            let created = try await Self.send(running, .post, "Location", body: place, client: feeder, token: token)
            #expect(created.status == .created, "\(created.text)")
            let placeID = try #require(try created.json()["id"] as? String)
            let patch: [String: Any] = [
                "resourceType": "Parameters",
                "parameter": [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "add"], ["name": "path", "valueString": "HealthcareService"],
                            ["name": "name", "valueString": "location"],
                            ["name": "value", "valueReference": ["reference": "Location/\(placeID)"]],
                        ],
                    ]
                ],
            ]
            let patched = try await Self.send(
                running,
                .patch,
                "HealthcareService/hs-00001-1",
                body: patch,
                client: feeder,
                token: token
            )
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.text.contains("Location/\(placeID)"))
            #expect(
                try await Self.send(
                    running,
                    .patch,
                    "HealthcareService/hs-00001-1",
                    body: patch,
                    client: feeder,
                    token: token,
                    headers: [.ifMatch: "W/\"1\""]
                ).status == .preconditionFailed
            )
            #expect(
                try await Self.send(
                    running,
                    .patch,
                    "HealthcareService/nope",
                    body: patch,
                    client: feeder,
                    token: token
                ).status == .notFound
            )
            #expect(
                try await Self.send(running, .patch, "Organization/eg-00001", body: patch, client: feeder, token: token)
                    .status == .methodNotAllowed
            )
            // A patch that does not apply: FHIR Patch's 422, naming the path (not the capacity feed's answer).
            let nothing: [String: Any] = [
                "resourceType": "Parameters",
                "parameter": [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "delete"],
                            ["name": "path", "valueString": "HealthcareService.telecom.where(value='nope')"],
                        ],
                    ]
                ],
            ]
            let unapplied = try await Self.send(
                running,
                .patch,
                "HealthcareService/hs-00001-1",
                body: nothing,
                client: feeder,
                token: token
            )
            #expect(unapplied.status == .unprocessableContent)
            let issue = try #require((try unapplied.json()["issue"] as? [[String: Any]])?.first)
            #expect(
                issue["code"] as? String == "processing"
                    && issue["expression"] as? [String] == ["HealthcareService.telecom.where(value='nope')"]
            )
            let unsupported: [String: Any] = [
                "resourceType": "Parameters",
                "parameter": [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "move"],
                            ["name": "path", "valueString": "HealthcareService.telecom"],
                        ],
                    ]
                ],
            ]
            #expect(
                try await Self.send(
                    running,
                    .patch,
                    "HealthcareService/hs-00001-1",
                    body: unsupported,
                    client: feeder,
                    token: token
                ).status == .badRequest
            )
            // A patch leaving the offer invalid is refused (422) and not stored.
            let breaking: [String: Any] = [
                "resourceType": "Parameters",
                "parameter": [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "delete"],
                            ["name": "path", "valueString": "HealthcareService.identifier"],
                        ],
                    ]
                ],
            ]
            #expect(
                try await Self.send(
                    running,
                    .patch,
                    "HealthcareService/hs-00001-1",
                    body: breaking,
                    client: feeder,
                    token: token
                ).status == .unprocessableContent
            )
        }
    }

    /// RORTask, the anomaly report: create, read back by a consumer search on its focus, patch its business status.
    @Test func anomalyReportTasks() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let task: [String: Any] = [
                "resourceType": "Task", "status": "draft", "intent": "proposal",
                "businessStatus": ["coding": [["code": "01"]]], "code": ["coding": [["code": "01"]]],
                "reasonCode": ["text": "Téléphone erroné"],
                "focus": ["reference": "Location/loc-00001-1"], "authoredOn": "2026-11-22T10:00:00+01:00",
                "lastModified": "2026-11-22T10:00:00+01:00",
                "input": [["type": ["coding": [["code": "systemRequester"]]], "valueString": "LOGICIEL SANDBOX"]],
            ]
            let created = try await Self.send(running, .post, "Task", body: task, client: feeder, token: token)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(try created.json()["id"] as? String)
            var invalid = task
            invalid["focus"] = nil
            let refused = try await Self.send(running, .post, "Task", body: invalid, client: feeder, token: token)
            #expect(refused.status == .unprocessableContent && refused.text.contains("Task.focus.reference"))
            let patch: [String: Any] = [
                "resourceType": "Parameters",
                "parameter": [
                    [
                        "name": "operation",
                        "part": [
                            ["name": "type", "valueCode": "replace"],
                            ["name": "path", "valueString": "Task.businessStatus"],
                            ["name": "value", "valueCodeableConcept": ["coding": [["code": "02"]]]],
                        ],
                    ]
                ],
            ]
            let patched = try await Self.send(running, .patch, "Task/\(id)", body: patch, client: feeder, token: token)
            #expect(patched.status == .ok && patched.headers[.eTag] == "W/\"2\"", "\(patched.text)")
            let consumerFiles = try #require(running.info.clientCertificates["ror-consumer"])
            let consumer = ClientFiles(
                folder: consumerFiles.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(consumerFiles)
            )
            let consumerToken = try await RORConsumer.accessToken(running, client: consumer)
            let found = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Task?focus=Location/loc-00001-1&business-status=02",
                client: consumer,
                token: consumerToken
            )
            #expect(try found.json()["total"] as? Int == 1)
        }
    }

    @Test func validateOperation() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            // $validate checks the resource as sent: the seed has no meta.lastUpdated (a write stamps it).
            var practitioner = try Self.seed("Practitioner", "pr-00001-1")
            func validate(_ body: Any) async throws -> TestClient.Response {
                try await Self.send(running, .post, "Practitioner/$validate", body: body, client: feeder, token: token)
            }
            let unstamped = try await validate(practitioner)
            let unstampedIssues = try #require(try unstamped.json()["issue"] as? [[String: Any]])
            #expect(unstampedIssues.contains { ($0["expression"] as? [String]) == ["Practitioner.meta.lastUpdated"] })
            var meta = practitioner["meta"] as? [String: Any] ?? [:]
            meta["lastUpdated"] = "2026-12-07T10:00:00.000+01:00"
            practitioner["meta"] = meta
            let valid = try await validate(practitioner)
            #expect(valid.status == .ok)
            #expect(((try valid.json()["issue"] as? [[String: Any]])?.first?["severity"] as? String) == "information")
            var broken = try Self.seed("Practitioner", "pr-00001-1")
            broken["identifier"] = nil
            let wrapped: [String: Any] = [
                "resourceType": "Parameters", "parameter": [["name": "resource", "resource": broken]],
            ]
            let invalid = try await validate(wrapped)
            let issues = try #require(try invalid.json()["issue"] as? [[String: Any]])
            #expect(
                issues.contains {
                    $0["expression"] as? [String] == [
                        "Practitioner.identifier.where(system='urn:oid:1.2.250.1.71.4.2.1')"
                    ]
                }
            )
            #expect(
                try await running.sandbox.ror.repository.read(type: "Practitioner", id: "pr-00001-1")?.version == 1,
                "nothing stored"
            )
            #expect(
                try await Self.send(
                    running,
                    .post,
                    "Location/$validate",
                    body: Self.seed("Practitioner", "pr-00001-1"),
                    client: feeder,
                    token: token
                ).status == .badRequest
            )
        }
    }
}

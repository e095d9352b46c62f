import Foundation
import HTTPTypes
import HummingbirdTesting
import SOAPCore
import Store
import Testing

@testable import DMP
@testable import SandboxServer
@testable import SandboxTestSupport

/// The DMP's FHIR face (PDSm4DMP) over the same store as the SOAP services: a document pushed through SOAP is found
/// and retrieved through FHIR, and the other way round.
@Suite("DMP FHIR (PDSm4DMP)")
struct DMPFHIRTests {
    typealias P = DMPPatientsTests
    typealias D = DMPDocumentTests
    static let base = DMPService.fhirPath

    static func get(_ running: RunningSandbox, _ path: String, client: ClientFiles) async throws -> TestClient.Response
    {
        try await running.request(base + "/" + path, client: client)
    }

    /// ITI-67: the patient's current DocumentReferences, as `client` sees them.
    static func documentReferences(
        _ running: RunningSandbox,
        ins: String,
        client: ClientFiles
    ) async throws -> [[String: Any]] {
        let answer = try await get(
            running,
            "DocumentReference?patient.identifier=urn:oid:\(P.testOID)%7C\(ins)",
            client: client
        )
        #expect(answer.status == .ok, "\(answer.text)")
        return (try answer.json()["entry"] as? [[String: Any]] ?? []).compactMap { $0["resource"] as? [String: Any] }
    }

    static func iti65(content: Data, uniqueId: String, hash: String? = nil, withList: Bool = true) -> String {
        var entries: [[String: Any]] = []
        if withList {
            entries.append([
                "fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001",
                "resource": [
                    "resourceType": "List", "status": "current", "mode": "working",
                    "identifier": [["value": "urn:oid:\(uniqueId).9"]],
                ],
                "request": ["method": "POST", "url": "List"],
            ])
        }
        entries.append([
            "fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000002",
            "resource": [
                "resourceType": "DocumentReference", "status": "current",
                "masterIdentifier": ["system": "urn:ietf:rfc:3986", "value": "urn:oid:\(uniqueId)"],
                "type": ["coding": [["system": "http://loinc.org", "code": "11488-4"]]],
                "category": [["coding": [["code": "11"]]]],
                "subject": ["reference": "Patient?identifier=urn:oid:\(P.testOID)|\(P.zoe)"],
                "content": [
                    [
                        "attachment": [
                            "contentType": "text/xml", "url": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000003",
                            "size": content.count,
                            "hash": hash ?? Data(DMPService.bytes(hex: content.sha1Hex)).base64EncodedString(),
                        ],
                        "format": ["code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"],
                    ]
                ],
            ],
            "request": ["method": "POST", "url": "DocumentReference"],
        ])
        entries.append([
            "fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000003",
            "resource": ["resourceType": "Binary", "contentType": "text/xml", "data": content.base64EncodedString()],
            "request": ["method": "POST", "url": "Binary"],
        ])
        let bundle: [String: Any] = ["resourceType": "Bundle", "type": "transaction", "entry": entries]
        return String(decoding: try! JSONSerialization.data(withJSONObject: bundle), as: UTF8.self)
    }

    @Test func soapToFHIRAndBack() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            // Pushed by SOAP (ITI-41), found by FHIR (ITI-67), read by FHIR (ITI-68).
            let soapContent = D.cda(text: "Par SOAP")
            #expect(
                D.errorCodes(
                    try await D.submit(
                        running,
                        D.submission(content: soapContent, uniqueId: "1.2.250.1.999.3.1"),
                        client: client
                    ).1
                ).isEmpty
            )
            let search = try await Self.get(
                running,
                "DocumentReference?patient.identifier=urn:oid:\(P.testOID)%7C\(P.zoe)",
                client: client
            )
            #expect(search.status == .ok, "\(search.text)")
            let entries = try #require(try search.json()["entry"] as? [[String: Any]])
            let reference = try #require(entries.first?["resource"] as? [String: Any])
            #expect(
                (reference["masterIdentifier"] as? [String: Any])?["value"] as? String == "urn:oid:1.2.250.1.999.3.1"
            )
            #expect(reference["status"] as? String == "current")
            let url = try #require(
                (((reference["content"] as? [[String: Any]])?.first)?["attachment"] as? [String: Any])?["url"]
                    as? String
            )
            let binary = try await running.request(url, client: client)
            #expect(binary.status == .ok)
            #expect(Data(buffer: try #require(binary.body)) == soapContent)

            // Pushed by FHIR (ITI-65), found by SOAP (ITI-18), retrieved by SOAP (ITI-43).
            let fhirContent = D.cda(text: "Par FHIR")
            let pushed = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(content: fhirContent, uniqueId: "1.2.250.1.999.3.2")
            )
            #expect(pushed.status == .ok, "\(pushed.text)")
            let (_, found) = try await D.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                D.findDocuments(),
                client: client
            )
            #expect(found.descendants.contains { $0.attributes["value"] == "1.2.250.1.999.3.2" })
            let (_, retrieved) = try await D.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                D.retrieve("1.2.250.1.999.3.2"),
                client: client
            )
            #expect(Data(base64Encoded: try #require(P.first(retrieved, "Document")?.text)) == fhirContent)
            // A replaced document shows as superseded through FHIR.
            let first = try #require(try running.sandbox.dmp.documentStore.entries(ins: P.zoe).first?.entryUUID)
            #expect(
                D.errorCodes(
                    try await D.submit(
                        running,
                        D.submission(content: D.cda(text: "v2"), uniqueId: "1.2.250.1.999.3.3", replaces: first),
                        client: client
                    ).1
                ).isEmpty
            )
            let superseded = try await Self.get(
                running,
                "DocumentReference?patient.identifier=urn:oid:\(P.testOID)%7C\(P.zoe)&status=superseded",
                client: client
            )
            #expect((try superseded.json()["entry"] as? [[String: Any]])?.count == 1)
        }
    }

    /// ITI-67 masks as ITI-18 does: a document masked to professionals (`MASQUE_PS`) is found only by the structure
    /// that submitted it (for FHIR, the certificate's OU), and carries its confidentiality codes as `securityLabel`.
    @Test func documentSearchHonoursMasking() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            func search() async throws -> [[String: Any]] {
                try await Self.documentReferences(running, ins: P.zoe, client: client)
            }
            // One document by the caller's own structure (1690099990, the certificate's OU), one by another; both masked.
            for (uniqueId, structure) in [("1.2.250.1.999.4.1", P.structure), ("1.2.250.1.999.4.2", "9999999999")] {
                let body = D.submission(content: D.cda(text: uniqueId), uniqueId: uniqueId)
                #expect(D.errorCodes(try await D.submit(running, body, client: client, structure: structure).1).isEmpty)
            }
            #expect(try await search().count == 2, "unmasked, both are found")
            let entries = try running.sandbox.dmp.documentStore.entries(ins: P.zoe).map(\.entryUUID)
            for (entry, structure) in zip(entries, [P.structure, "9999999999"]) {
                let update = D.update(target: entry, confidentiality: ["MASQUE_PS"])
                #expect(
                    D.errorCodes(try await D.updating(running, update, client: client, structure: structure)).isEmpty
                )
            }
            let found = try await search()
            #expect(found.count == 1, "the other structure's masked document is left out")
            let reference = try #require(found.first)
            #expect(
                (reference["masterIdentifier"] as? [String: Any])?["value"] as? String == "urn:oid:1.2.250.1.999.4.1"
            )
            let labels = (reference["securityLabel"] as? [[String: Any]])?.compactMap {
                (($0["coding"] as? [[String: Any]])?.first)?["code"] as? String
            }
            #expect(labels == ["MASQUE_PS"])
        }
    }

    /// TD3.3a–d through FHIR: JSON Patch on securityLabel, the isArchived extension and status, by the document's
    /// uniqueId; each change seen by ITI-18 too (the same ITI-57 update underneath); every refusal in its own form.
    @Test func patchMasksArchivesAndDeletes() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            func patch(
                _ uniqueId: String,
                _ operations: String,
                contentType: String = "application/json-patch+json"
            ) async throws -> TestClient.Response {
                try await running.request(
                    Self.base + "/DocumentReference?identifier=urn:ietf:rfc:3986%7Curn:oid:" + uniqueId,
                    method: .patch,
                    client: client,
                    headers: [.contentType: contentType],
                    body: operations
                )
            }
            func label(_ code: String, at path: String = "/securityLabel/0") -> String {
                #"[{"op":"replace","path":"\#(path)","value":{"coding":[{"code":"\#(code)"}]}}]"#
            }
            let archivedPath = "/extension[url:'\(DMPService.isArchivedExtension)']/valueBoolean"
            let own = "1.2.250.1.999.5.1"
            let pushed = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(content: D.cda(text: "à masquer"), uniqueId: own)
            )
            #expect(pushed.status == .ok, "\(pushed.text)")
            let entry = try #require(try running.sandbox.dmp.documentStore.entry(uniqueId: own)).entryUUID

            // Masked to professionals: another structure's ITI-18 no longer finds it; N unmasks.
            let masked = try await patch(own, label("MASQUE_PS"))
            #expect(masked.status == .ok, "\(masked.text)")
            let labels = (try masked.json()["securityLabel"] as? [[String: Any]])?.compactMap {
                (($0["coding"] as? [[String: Any]])?.first)?["code"] as? String
            }
            #expect(labels == ["MASQUE_PS"])
            #expect(try await D.find(running, client: client, structure: "9999999999").isEmpty)
            #expect(try await D.find(running, client: client) == [entry])
            let unmasked = try await patch(own, label("N"))
            #expect(unmasked.status == .ok)
            #expect(try unmasked.json()["securityLabel"] == nil)
            #expect(try await D.find(running, client: client, structure: "9999999999") == [entry])

            // Archived: out of the current documents, back when the extension is false.
            let archived = try await patch(own, #"[{"op":"replace","path":"\#(archivedPath)","value":true}]"#)
            #expect(archived.status == .ok, "\(archived.text)")
            #expect((try archived.json()["extension"] as? [[String: Any]])?.first?["valueBoolean"] as? Bool == true)
            #expect(try await D.find(running, client: client).isEmpty)
            #expect(
                try await patch(own, #"[{"op":"replace","path":"\#(archivedPath)","value":false}]"#).status == .ok
            )
            #expect(try await D.find(running, client: client) == [entry])

            // Refusals: media type, body, path, code, unknown document.
            #expect(
                try await patch(own, label("MASQUE_PS"), contentType: "application/fhir+json").status
                    == .unsupportedMediaType
            )
            #expect(try await patch(own, #"{"op":"replace"}"#).status == .badRequest)
            let badPath = try await patch(own, #"[{"op":"replace","path":"/type","value":{}}]"#)
            #expect(badPath.status == .unprocessableContent)
            #expect(badPath.text.contains("\"/type\""), "the expression names the path")
            #expect(try await patch(own, label("SECRET")).status == .unprocessableContent)
            #expect(try await patch(own, label("MASQUE_PS", at: "/securityLabel/5")).status == .unprocessableContent)
            #expect(try await patch("1.2.250.1.999.5.404", label("MASQUE_PS")).status == .notFound)
            #expect(try running.sandbox.dmp.documentStore.entry(uniqueId: own)?.confidentiality == "", "nothing stored")

            // Deletion: only by the submitting structure; then neither found, nor readable, nor patchable.
            let theirs = "1.2.250.1.999.5.2"
            let body = D.submission(content: D.cda(text: "d'une autre structure"), uniqueId: theirs)
            #expect(D.errorCodes(try await D.submit(running, body, client: client, structure: "9999999999").1).isEmpty)
            let delete = #"[{"op":"replace","path":"/status","value":"entered-in-error"}]"#
            #expect(try await patch(theirs, delete).status == .forbidden)
            let deleted = try await patch(own, delete)
            #expect(deleted.status == .ok, "\(deleted.text)")
            #expect(try deleted.json()["status"] as? String == "entered-in-error")
            #expect(
                try await Self.get(running, "Binary/\(DMPService.fhirID(entry))", client: client).status == .notFound
            )
            #expect(try await patch(own, label("MASQUE_PS")).status == .notFound)
        }
    }

    /// FindDocuments' optional parameters: class, type and format codes (`code^^scheme`), creation time from
    /// (inclusive) and to (exclusive) at the parameter's precision; an entry without a creation time is left out of
    /// a time-filtered search.
    @Test func findDocumentsByCodesAndCreationTime() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            // By SOAP: class 10, type 11490-0, format urn:ihe:pcc:xds-ms:2007, created 20261207100000.
            let body = D.submission(content: D.cda(text: "soap"), uniqueId: "1.2.250.1.999.6.1")
            #expect(D.errorCodes(try await D.submit(running, body, client: client).1).isEmpty)
            // By FHIR: category 11, type 11488-4, no creation time.
            let pushed = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(content: D.cda(text: "fhir"), uniqueId: "1.2.250.1.999.6.2")
            )
            #expect(pushed.status == .ok, "\(pushed.text)")
            func found(_ slots: [(String, String)]) async throws -> Set<String> {
                let (_, root) = try await D.call(
                    running,
                    path: DMPService.registryPath,
                    action: "urn:ihe:iti:2007:RegistryStoredQuery",
                    D.findDocuments(slots: slots),
                    client: client
                )
                return Set(
                    root.descendants.filter {
                        $0.name == "ExternalIdentifier"
                            && $0.attributes["identificationScheme"] == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
                    }.compactMap { $0.attributes["value"] }
                )
            }
            let soap: Set = ["1.2.250.1.999.6.1"]
            let fhir: Set = ["1.2.250.1.999.6.2"]
            #expect(try await found([]) == soap.union(fhir))
            #expect(try await found([("$XDSDocumentEntryClassCode", "('10^^1.2.250.1.213.1.1.4.1')")]) == soap)
            #expect(try await found([("$XDSDocumentEntryClassCode", "('10^^a','11^^b')")]) == soap.union(fhir))
            #expect(try await found([("$XDSDocumentEntryTypeCode", "('11488-4^^2.16.840.1.113883.6.1')")]) == fhir)
            #expect(try await found([("$XDSDocumentEntryFormatCode", "('urn:ihe:pcc:xds-ms:2007^^1.3.6')")]) == soap)
            #expect(try await found([("$XDSDocumentEntryCreationTimeFrom", "20261207")]) == soap)
            #expect(try await found([("$XDSDocumentEntryCreationTimeFrom", "20261208")]).isEmpty)
            #expect(try await found([("$XDSDocumentEntryCreationTimeTo", "20261207")]).isEmpty, "to is exclusive")
            #expect(try await found([("$XDSDocumentEntryCreationTimeTo", "202612071001")]) == soap)
        }
    }

    /// The seeded documents (`Seeds/dmp/documents/`): GATIEN's two CDAs are there at start, by SOAP and FHIR alike,
    /// with their header fields; a reset empties what clients pushed and brings them back.
    @Test func seededDocumentsAreThereAndComeBackAfterReset() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            func uniqueIds(_ ins: String) async throws -> [String] {
                try await Self.documentReferences(running, ins: ins, client: client).compactMap {
                    ($0["masterIdentifier"] as? [String: Any])?["value"] as? String
                }
            }
            let seeded = ["urn:oid:1.2.250.1.999.100.1", "urn:oid:1.2.250.1.999.100.2"]  // newest (last file) first
            let atStart = try await uniqueIds(P.gatien)
            #expect(atStart == seeded, "\(atStart)")
            let entry = try #require(try running.sandbox.dmp.documentStore.entry(uniqueId: "1.2.250.1.999.100.1"))
            #expect(entry.authorStructure == DMPService.seedStructure && entry.classCode == "11")
            let (content, _) = try #require(try running.sandbox.dmp.documentStore.content(entryUUID: entry.entryUUID))
            let header = try #require(DMPService.cdaHeader(content))
            #expect(header.contains { $0.0 == "Titre" && $0.1 == "Compte rendu de consultation de cardiologie" })
            let pushed = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(content: D.cda(text: "avant reset"), uniqueId: "1.2.250.1.999.6.9")
            )
            #expect(pushed.status == .ok)
            #expect(try await uniqueIds(P.zoe).count == 1)
            #expect(try await running.admin("/admin/reset", method: .post).status == .ok)
            #expect(try await uniqueIds(P.zoe).isEmpty)
            let afterReset = try await uniqueIds(P.gatien)
            #expect(afterReset == seeded, "\(afterReset)")
        }
    }

    /// A seeded submission the ITI-41 checks refuse stops the load with the file and the XDS error named.
    @Test func aRefusedSeedNamesItsFile() throws {
        let seeds = FileManager.default.temporaryDirectory.appendingPathComponent("dmp-seeds-\(UUID().uuidString)")
        let documents = seeds.appendingPathComponent("dmp/documents")
        try FileManager.default.createDirectory(at: documents, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: seeds) }
        try FileManager.default.copyItem(
            at: SharedPKI.repositorySeeds.appendingPathComponent("dmp/records.json"),
            to: seeds.appendingPathComponent("dmp/records.json")
        )
        // A document of GATIEN whose hash slot is not its content's.
        let bad = D.submission(content: D.cda(text: "faux"), patient: "\(P.gatien)^^^&\(P.testOID)&ISO", hash: "00")
        try Data(bad.utf8).write(to: documents.appendingPathComponent("bad-hash.xml"))
        let store = try SandboxStore.inMemory()
        let dmp = DMPService(records: DMPRecords(store: store), documents: DMPDocuments(store: store))
        #expect {
            try dmp.loadSeeds(from: seeds, replace: false)
        } throws: { error in
            "\(error)".contains("bad-hash.xml") && "\(error)".contains("XDSRepositoryMetadataError")
        }
    }

    /// The README's DMP FHIR walk-through, run as printed against this sandbox.
    @Test(.enabled(if: Reference.hasCurlAndPython, "needs curl and python3"))
    func readmeWalkthroughRunsAsPrinted() async throws {
        let readme = try String(
            contentsOf: SharedPKI.repositorySeeds.deletingLastPathComponent().appendingPathComponent("README.md"),
            encoding: .utf8
        )
        let block = try #require(
            readme.components(separatedBy: "<!-- dmp-walkthrough -->\n```sh\n").dropFirst().first?.components(
                separatedBy: "\n```"
            ).first
        )
        let (running, _) = try await P.start()
        try await running.whileRunning {
            let script = FileManager.default.temporaryDirectory.appendingPathComponent(
                "dmp-walkthrough-\(UUID().uuidString).sh"
            )
            try Data(block.utf8).write(to: script)
            let pki = running.sandbox.pki.directory.path
            let run = try await Shell.run("T='\(running.info.tls)' P='\(pki)' bash -e '\(script.path)'")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(#""value":"275126322074974""#), "\(run.stdout)")
            #expect(run.stdout.contains(#""type":"transaction-response""#), "\(run.stdout)")
            #expect(run.stdout.contains("MASQUE_PS"), "\(run.stdout)")
            #expect(run.stdout.contains("<title>Compte rendu curl</title>"), "\(run.stdout)")
            #expect(
                try running.sandbox.dmp.documentStore.entry(uniqueId: "1.2.250.1.999.9.1")?.confidentiality
                    == "MASQUE_PS"
            )
        }
    }

    @Test func consolePagesShowRecordsDocumentsAndTheCDA() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            #expect(
                D.errorCodes(
                    try await D.submit(
                        running,
                        D.submission(content: D.cda(text: "Compte rendu console"), uniqueId: "1.2.250.1.999.4.1"),
                        client: client
                    ).1
                ).isEmpty
            )
            let list = try await running.admin("/console/dmp")
            #expect(list.status == .ok)
            #expect(list.text.contains(P.zoe) && list.text.contains(P.catarina))
            let patient = try await running.admin("/console/dmp/\(P.zoe)")
            #expect(patient.text.contains("1.2.250.1.999.4.1"))
            let entry = try #require(try running.sandbox.dmp.documentStore.entries(ins: P.zoe).first?.entryUUID)
            let document = try await running.admin("/console/dmp/documents/\(DMPService.fhirID(entry))")
            #expect(document.text.contains("id=\"cda-header\""))
            #expect(document.text.contains("Compte rendu console"))
            let raw = try await running.admin("/console/dmp/documents/\(DMPService.fhirID(entry))/raw")
            #expect(Data(buffer: try #require(raw.body)) == D.cda(text: "Compte rendu console"))
            #expect(try await running.admin("/console/dmp/000").status == .notFound)
        }
    }

    @Test func patientExistenceAndRefusals() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            func total(_ path: String) async throws -> Int? {
                try await Self.get(running, path, client: client).json()["total"] as? Int
            }
            #expect(try await total("Patient?identifier=urn:oid:\(P.testOID)%7C\(P.zoe)") == 1)
            #expect(try await total("Patient?identifier=urn:oid:\(P.testOID)%7C\(P.nessi)") == 0)
            let closed = try await Self.get(
                running,
                "Patient?identifier=urn:oid:\(P.testOID)%7C\(P.catarina)",
                client: client
            )
            #expect(
                (((try closed.json()["entry"] as? [[String: Any]])?.first)?["resource"] as? [String: Any])?["active"]
                    as? Bool == false
            )
            for (path, expression) in [
                ("Patient", "identifier"), ("Patient?identifier=urn:oid:1.2.3%7C\(P.zoe)", "identifier"),
                ("DocumentReference", "patient.identifier"),
                ("DocumentReference?patient.identifier=urn:oid:\(P.testOID)%7C\(P.zoe)&status=deleted", "status"),
                ("DocumentReference?patient=x", "patient"),
            ] {
                let answer = try await Self.get(running, path, client: client)
                #expect(answer.status == .badRequest, "\(path)")
                #expect(
                    ((try answer.json()["issue"] as? [[String: Any]])?.first?["expression"] as? [String]) == [
                        expression
                    ],
                    "\(path)"
                )
            }
            #expect(
                try await Self.get(running, "Binary/00000000-0000-4000-8000-000000000000", client: client).status
                    == .notFound
            )
            // ITI-65 refusals: no List; a hash that is not the document's (the XDS check, as an issue).
            let content = D.cda()
            let noList = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(content: content, uniqueId: "1.2.250.1.999.3.9", withList: false)
            )
            #expect(noList.status == .unprocessableContent)
            let badHash = try await running.request(
                Self.base,
                method: .post,
                client: client,
                headers: [.contentType: "application/fhir+json"],
                body: Self.iti65(
                    content: content,
                    uniqueId: "1.2.250.1.999.3.8",
                    hash: Data(repeating: 1, count: 20).base64EncodedString()
                )
            )
            #expect(badHash.status == .unprocessableContent)
            #expect(badHash.text.contains("XDSRepositoryMetadataError"))
            #expect(try running.sandbox.dmp.documentStore.entries(ins: P.zoe).isEmpty, "nothing stored")
        }
    }
}

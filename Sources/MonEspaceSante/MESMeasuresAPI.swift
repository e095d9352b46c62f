import Access
import FHIRCore
import Foundation
import GRDB
import HTTPCommon
import HTTPTypes
import Hummingbird

/// The API "Mesures de santé": a transaction Bundle writes one measure (and its device), searches read them back.
extension MESService {
    // MARK: Write

    /// `POST /mes/fhir`: a `transaction` Bundle of one `Observation` (POST) and at most one `Device` (POST, usually
    /// with `ifNoneExist`). Everything is checked before anything is written, and written in one transaction.
    func transaction(_ request: Request, identity: ClientIdentity?) async throws -> Response {
        let (pairing, service) = try await caller(request, identity: identity)
        let bundle = try await FHIRBody.json(
            request,
            maximumBody: Self.maximumBody,
            what: "a transaction takes a Bundle"
        )
        guard bundle["resourceType"]?.string == "Bundle" else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "The body must be a Bundle",
                expression: ["Bundle.resourceType"]
            )
        }
        guard bundle["type"]?.string == "transaction" else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "Bundle.type must be 'transaction' (got '\(bundle["type"]?.string ?? "")')",
                expression: ["Bundle.type"]
            )
        }
        let entries = bundle["entry"]?.array ?? []
        var observation: (index: Int, resource: JSONObject)?
        var device: (index: Int, resource: JSONObject, fullUrl: String?, ifNoneExist: String?)?
        for (index, entry) in entries.enumerated() {
            let path = "Bundle.entry[\(index)]"
            guard let resource = entry["resource"]?.object, let type = resource["resourceType"]?.string else {
                throw FHIRError(
                    .badRequest,
                    code: "required",
                    "\(path) has no resource",
                    expression: [path + ".resource"]
                )
            }
            guard entry["request"]?["method"]?.string == "POST", entry["request"]?["url"]?.string == type else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "\(path).request must be POST \(type)",
                    expression: [path + ".request"]
                )
            }
            switch type {
            case "Observation" where observation == nil: observation = (index, resource)
            case "Device" where device == nil:
                device = (index, resource, entry["fullUrl"]?.string, entry["request"]?["ifNoneExist"]?.string)
            default:
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "\(path): a measure Bundle holds one Observation and at most one Device (got another \(type))",
                    expression: [path + ".resource"]
                )
            }
        }
        guard let observation else {
            throw FHIRError(
                .badRequest,
                code: "required",
                "The Bundle holds no Observation",
                expression: ["Bundle.entry"]
            )
        }
        let subject = observation.resource["subject"]?["identifier"]
        try Self.checkSubject(
            system: subject?["system"]?.string,
            value: subject?["value"]?.string,
            pairing: pairing,
            service: service
        )
        var issues = rules.problems(of: observation.resource).map {
            OperationOutcome.Issue(code: $0.code, diagnostics: $0.message, expression: [$0.expression])
        }
        var deviceIdentifier: (system: String, value: String)?
        if let device {
            let identifier = device.resource["identifier"]?.array?.first
            if let system = identifier?["system"]?.string, let value = identifier?["value"]?.string, !value.isEmpty {
                deviceIdentifier = (system, value)
                if let condition = device.ifNoneExist {
                    let items = FormEncoding.items(condition)
                    guard items.count == 1, items[0].0 == "identifier", items[0].1 == "\(system)|\(value)" else {
                        throw FHIRError(
                            .badRequest,
                            code: "invalid",
                            "ifNoneExist must be identifier=\(system)|\(value) (the Device's identifier)",
                            expression: ["Bundle.entry[\(device.index)].request.ifNoneExist"]
                        )
                    }
                }
            } else {
                issues.append(
                    .init(
                        code: "required",
                        diagnostics: "Device: an identifier with system and value is required",
                        expression: ["Device.identifier"]
                    )
                )
            }
            let reference = observation.resource["device"]?["reference"]?.string
            if let reference, reference != device.fullUrl {
                issues.append(
                    .init(
                        code: "invalid",
                        diagnostics:
                            "Observation.device must refer to the Bundle's Device (\(device.fullUrl ?? "give it a fullUrl"))",
                        expression: ["Observation.device"]
                    )
                )
            }
        } else if observation.resource["device"] != nil {
            let reference = observation.resource["device"]?["reference"]?.string ?? ""
            let visible =
                reference.hasPrefix("Device/")
                ? try await visibleDevice(String(reference.dropFirst(7)), service: service) : false
            if !visible {
                issues.append(
                    .init(
                        code: "invalid",
                        diagnostics: "Observation.device '\(reference)' is not a Device of this service",
                        expression: ["Observation.device"]
                    )
                )
            }
        }
        guard issues.isEmpty else {
            var refusal = FHIRError(
                .unprocessableContent,
                code: issues[0].code,
                "The measure does not conform (\(issues.count) problem(s))",
                expression: issues[0].expression
            )
            refusal.issues = issues
            throw refusal
        }

        let source = "urn:oid:" + service.pairingOID
        let repository = self.repository
        let (newDevice, newDeviceIdentifier) = (device, deviceIdentifier)
        let written = try await repository.store.write { db -> [(StoredResource, Bool)] in
            var results: [(StoredResource, Bool)] = []
            var deviceID: String?
            if let device = newDevice, let deviceIdentifier = newDeviceIdentifier {
                let existing = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT r.id, r.json FROM fhir_index i JOIN fhir_resource r ON r.type = i.type AND r.id = i.id
                        WHERE i.type = 'Device' AND i.param = 'identifier' AND i.system = ? AND i.code = ? AND r.deleted = 0
                        """,
                    arguments: [deviceIdentifier.system, deviceIdentifier.value]
                )
                if let existing {
                    let stored = try Self.object(existing["json"] as Data)
                    guard stored["meta"]?["source"]?.string == source else {
                        throw FHIRError(
                            .conflict,
                            code: "conflict",
                            "Device \(deviceIdentifier.system)|\(deviceIdentifier.value) is already declared under another service's OID",
                            expression: ["Device.identifier"]
                        )
                    }
                    let id: String = existing["id"]
                    deviceID = id
                    if device.ifNoneExist != nil, let current = try repository.current(type: "Device", id: id, in: db) {
                        results.append((current, false))
                    } else {
                        throw FHIRError(
                            .conflict,
                            code: "duplicate",
                            "Device \(deviceIdentifier.system)|\(deviceIdentifier.value) exists: send it with ifNoneExist",
                            expression: ["Bundle.entry[\(device.index)].request"]
                        )
                    }
                } else {
                    var resource = device.resource
                    resource["id"] = .string(UUID().uuidString.lowercased())
                    resource["meta"] = .object(JSONObject(["source": .string(source)]))
                    let stored = try repository.save(resource, in: db)
                    deviceID = stored.id
                    results.append((stored, true))
                }
            }
            var resource = observation.resource
            resource["id"] = .string(UUID().uuidString.lowercased())
            var meta = resource["meta"]?.object ?? JSONObject()
            meta["source"] = .string(source)
            resource["meta"] = .object(meta)
            if let deviceID { resource["device"] = .object(JSONObject(["reference": .string("Device/\(deviceID)")])) }
            let stored = try repository.save(resource, in: db)
            try MESMeasureIndex.record(resource, id: stored.id, in: db)
            results.insert((stored, true), at: 0)
            return results
        }
        // Answers in the order of the request's entries.
        var answers: [(Int, StoredResource, Bool)] = [(observation.index, written[0].0, written[0].1)]
        if let device, written.count > 1 { answers.append((device.index, written[1].0, written[1].1)) }
        answers.sort { $0.0 < $1.0 }
        let response: [String: Any] = [
            "resourceType": "Bundle", "type": "transaction-response",
            "entry": answers.map { _, stored, created in
                [
                    "response": [
                        "status": created ? "201 Created" : "200 OK",
                        "location": "\(stored.type)/\(stored.id)/_history/\(stored.version)",
                        "etag": "W/\"\(stored.version)\"", "lastModified": stored.lastUpdated,
                    ]
                ]
            },
        ]
        return FHIRResponse.json(.ok, try FHIRJSON.data(response))
    }

    /// A pairing's measures, oldest first, at most `limit` (the newest ones): what the console plots.
    public func measures(
        of pairing: MESPairing,
        service: MESServiceRecord,
        limit: Int = 2000
    ) async throws -> [StoredResource] {
        let query = MESMeasureIndex.Query(subject: "urn:oid:\(service.pairingOID)|\(pairing.idPe)")
        let (_, ids) = try await repository.store.writer.read { db in try query.run(limit: limit, offset: 0, in: db) }
        return try await repository.resources(type: "Observation", ids: ids.reversed())
    }

    func visibleDevice(_ id: String, service: MESServiceRecord) async throws -> Bool {
        guard let stored = try await repository.read(type: "Device", id: id) else { return false }
        return try Self.object(stored.json)["meta"]?["source"]?.string == "urn:oid:" + service.pairingOID
    }

    // MARK: Search

    /// `GET /mes/fhir/Observation?subject.identifier=<OID>|<idPe>[&code=…][&date=ge…][&_sort=-date][&_count=…]
    /// [&_offset=…][&_include=Observation:device]`: the pairing's patient's measures, newest first by default.
    func search(_ request: Request, identity: ClientIdentity?) async throws -> Response {
        let (pairing, service) = try await caller(request, identity: identity)
        var query = MESMeasureIndex.Query(subject: "urn:oid:\(service.pairingOID)|\(pairing.idPe)")
        var links: [(String, String)] = []
        var count = Self.maximumCount
        var offset = 0
        var includeDevices = false
        var subjectGiven = false
        for (name, value) in FormEncoding.items(request.uri.query ?? "") {
            switch name {
            case "subject.identifier", "subject:identifier":
                let parts = value.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 2 else {
                    throw FHIRError(
                        .badRequest,
                        code: "invalid",
                        "subject.identifier must be <OID>|<idPe>",
                        expression: [name]
                    )
                }
                try Self.checkSubject(system: parts[0], value: parts[1], pairing: pairing, service: service)
                subjectGiven = true
            case "code":
                query.codes.append(
                    value.split(separator: ",").map { token in
                        let parts = token.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(
                            String.init
                        )
                        return parts.count == 2 ? (parts[0].isEmpty ? nil : parts[0], parts[1]) : (nil, parts[0])
                    }
                )
                links.append((name, value))
            case "date":
                do {
                    query.dates.append(
                        try FHIRDate.searchCondition(
                            value,
                            parameter: "date",
                            low: "effective_low",
                            high: "effective_high"
                        )
                    )
                } catch let error as SearchError {
                    throw FHIRError(.badRequest, code: "invalid", error.message, expression: ["date"])
                }
                links.append((name, value))
            case "_count":
                guard let number = Int(value), (1...Self.maximumCount).contains(number) else {
                    throw FHIRError(
                        .badRequest,
                        code: "invalid",
                        "_count must be 1 to \(Self.maximumCount)",
                        expression: ["_count"]
                    )
                }
                count = number
            case "_offset":
                guard let number = Int(value), number >= 0 else {
                    throw FHIRError(
                        .badRequest,
                        code: "invalid",
                        "_offset must be a whole number",
                        expression: ["_offset"]
                    )
                }
                offset = number
            case "_sort":
                guard value == "date" || value == "-date" else {
                    throw FHIRError(
                        .badRequest,
                        code: "not-supported",
                        "_sort may be date or -date",
                        expression: ["_sort"]
                    )
                }
                query.newestFirst = value == "-date"
            case "_include":
                guard value == "Observation:device" else {
                    throw FHIRError(
                        .badRequest,
                        code: "not-supported",
                        "_include may only be Observation:device",
                        expression: ["_include"]
                    )
                }
                includeDevices = true
            default:
                throw FHIRError(
                    .badRequest,
                    code: "not-supported",
                    "Unknown search parameter '\(name)' (subject.identifier, code, date, _sort, _count, _offset, _include)",
                    expression: [name]
                )
            }
        }
        guard subjectGiven else {
            throw FHIRError(
                .badRequest,
                code: "required",
                "subject.identifier is required",
                expression: ["subject.identifier"]
            )
        }
        let (search, limit, skip) = (query, count, offset)
        let (total, page) = try await repository.store.writer.read { db in
            try search.run(limit: limit, offset: skip, in: db)
        }
        let observations = try await repository.resources(type: "Observation", ids: page)
        var devices: [StoredResource] = []
        if includeDevices {
            var deviceIDs: [String] = []
            for stored in observations {
                if let reference = try Self.object(stored.json)["device"]?["reference"]?.string,
                    reference.hasPrefix("Device/"),
                    !deviceIDs.contains(String(reference.dropFirst(7)))
                {
                    deviceIDs.append(String(reference.dropFirst(7)))
                }
            }
            devices = try await repository.resources(type: "Device", ids: deviceIDs)
        }
        let base = "https://\(request.head.authority ?? "localhost")\(Self.basePath)/fhir"
        links.insert(("subject.identifier", "urn:oid:\(service.pairingOID)|\(pairing.idPe)"), at: 0)
        links.append(("_sort", query.newestFirst ? "-date" : "date"))
        if includeDevices { links.append(("_include", "Observation:device")) }
        func link(_ relation: String, _ at: Int) -> String {
            let text = (links + [("_count", String(count)), ("_offset", String(at))])
                .map { "\(FormEncoding.encode($0.0))=\(FormEncoding.encode($0.1))" }.joined(separator: "&")
            return #"{"relation":"\#(relation)","url":"\#(base)/Observation?\#(text)"}"#
        }
        var relations = [link("self", offset)]
        if offset + count < total { relations.append(link("next", offset + count)) }
        if offset > 0 { relations.append(link("previous", max(0, offset - count))) }
        var body = Data(#"{"resourceType":"Bundle","type":"searchset","total":\#(total),"link":["#.utf8)
        body.append(Data(relations.joined(separator: ",").utf8))
        body.append(Data(#"],"entry":["#.utf8))
        for (index, (stored, mode)) in (observations.map { ($0, "match") } + devices.map { ($0, "include") })
            .enumerated()
        {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(Data(#"{"fullUrl":"\#(base)/\#(stored.type)/\#(stored.id)","resource":"#.utf8))
            body.append(stored.json)
            body.append(Data(#","search":{"mode":"\#(mode)"}}"#.utf8))
        }
        body.append(Data("]}".utf8))
        return FHIRResponse.json(.ok, body)
    }
}

/// A row per measure (`mes_measure`): its patient, code and effective instant, so that the searches of a pairing are
/// one index range, newest first. Written in the transaction that stores the Observation.
enum MESMeasureIndex {
    static func record(_ observation: JSONObject, id: String, in db: Database) throws {
        let identifier = observation["subject"]?["identifier"]
        let coding = observation["code"]?["coding"]?.array?.first
        guard let system = identifier?["system"]?.string, let value = identifier?["value"]?.string,
            let code = coding?["code"]?.string, let effective = observation["effectiveDateTime"]?.string,
            let (low, high) = FHIRDate.range(of: effective)
        else { throw ResourceError("a measure needs a subject identifier, a code and an effective date") }
        try db.execute(
            sql: """
                INSERT INTO mes_measure (observation_id, subject, code_system, code, effective_low, effective_high)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [id, "\(system)|\(value)", coding?["system"]?.string, code, low, high]
        )
    }

    struct Query {
        var subject: String
        /// Each repetition of `code` (AND), each a list of alternatives (OR): `(system, code)`.
        var codes: [[(String?, String)]] = []
        /// Each repetition of `date`, as conditions on `effective_low`/`effective_high`.
        var dates: [(sql: String, arguments: [Double])] = []
        var newestFirst = true

        /// The number of matches and the page of Observation ids.
        func run(limit: Int, offset: Int, in db: Database) throws -> (Int, [String]) {
            var conditions = ["subject = ?"]
            var arguments: [(any DatabaseValueConvertible)?] = [subject]
            for alternatives in codes {
                conditions.append(
                    "("
                        + alternatives.map { $0.0 == nil ? "code = ?" : "(code = ? AND code_system = ?)" }.joined(
                            separator: " OR "
                        ) + ")"
                )
                for (system, code) in alternatives {
                    arguments.append(code)
                    if let system { arguments.append(system) }
                }
            }
            for date in dates {
                conditions.append(date.sql)
                arguments += date.arguments.map { $0 }
            }
            let filter = conditions.joined(separator: " AND ")
            let total =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM mes_measure WHERE \(filter)",
                    arguments: StatementArguments(arguments)
                ) ?? 0
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT observation_id FROM mes_measure WHERE \(filter)
                    ORDER BY effective_low \(newestFirst ? "DESC" : "ASC"), observation_id LIMIT ? OFFSET ?
                    """,
                arguments: StatementArguments(arguments + [limit, offset])
            )
            return (total, ids)
        }
    }
}

import FHIRCore
import Foundation
import GRDB

/// `Seeds/mes/`: services (by demo client name), patients (INSi identities, by INS) and pairings with the measures
/// already pushed under them.
struct MESSeedFiles {
    struct Service: Codable {
        var clientId: String
        var clientSecret: String
        var name: String
        /// A demo client of `Seeds/pki/demo-clients.json`, whose DN the service registers.
        var client: String
        var redirectURIs: [String]
        var pairingOID: String
    }

    struct Pairing: Codable {
        struct Measures: Codable {
            var code: String
            /// `[effective, value]`, or `[effective, systolic, diastolic]` for blood pressure.
            var values: [[SeedValue]]
        }

        var client: String
        var ins: String
        var consent: Bool
        var measures: [Measures]
    }

    enum SeedValue: Codable {
        case text(String)
        case number(Double)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else {
                self = .text(try container.decode(String.self))
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            }
        }

        var text: String? { if case .text(let text) = self { text } else { nil } }
        var number: Double? { if case .number(let number) = self { number } else { nil } }
    }

    struct Services: Codable { var services: [Service] }
    struct Patients: Codable { var patients: [MESPatient] }
    struct Pairings: Codable { var pairings: [Pairing] }
}

extension MESService {
    /// Loads `Seeds/mes/` when the sandbox has no Mon espace santé data yet, or with `replace` (reset) in place of
    /// what is there. `subjectDN(client)` gives a demo client's DN.
    @discardableResult
    public func loadSeeds(from seeds: URL?, replace: Bool, subjectDN: (String) -> String?) throws -> Int {
        let store = directory.store
        if replace {
            try store.writer.write { db in
                for table in [
                    "mes_measure", "mes_token", "mes_authorization_code", "mes_pairing", "mes_patient", "mes_service",
                ] {
                    try db.execute(sql: "DELETE FROM \(table)")
                }
                try db.execute(sql: "DELETE FROM fhir_index WHERE type IN ('Observation', 'Device')")
                try db.execute(sql: "DELETE FROM fhir_history WHERE type IN ('Observation', 'Device')")
                try db.execute(sql: "DELETE FROM fhir_resource WHERE type IN ('Observation', 'Device')")
                repository.resourcesChanged(in: db)
            }
        } else if try store.writer.read({ db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM mes_service)") ?? false
        }) {
            return 0
        }
        guard let folder = seeds?.appendingPathComponent("mes"), FileManager.default.fileExists(atPath: folder.path)
        else { return 0 }
        func read<T: Decodable>(_ name: String, as: T.Type) throws -> T? {
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            do { return try JSONDecoder().decode(T.self, from: Data(contentsOf: url)) } catch {
                throw MESError(.invalid, "Seeds/mes/\(name): \(error)")
            }
        }
        var count = 0
        for service in try read("services.json", as: MESSeedFiles.Services.self)?.services ?? [] {
            guard let dn = subjectDN(service.client) else {
                throw MESError(.invalid, "Seeds/mes/services.json: no demo client '\(service.client)'")
            }
            try directory.register(
                .init(
                    name: service.name,
                    subjectDN: dn,
                    redirectURIs: service.redirectURIs,
                    pairingOID: service.pairingOID,
                    clientId: service.clientId,
                    clientSecret: service.clientSecret
                ),
                origin: "seed"
            )
            count += 1
        }
        for patient in try read("patients.json", as: MESSeedFiles.Patients.self)?.patients ?? [] {
            try directory.add(patient)
            count += 1
        }
        for seeded in try read("pairings.json", as: MESSeedFiles.Pairings.self)?.pairings ?? [] {
            let pairing = try directory.pair(clientId: seeded.client, ins: seeded.ins, consent: seeded.consent)
            guard let service = try directory.service(clientId: seeded.client) else { continue }
            try store.writer.write { db in
                for series in seeded.measures {
                    guard let measure = rules.measure(system: nil, code: series.code) else {
                        throw MESError(.invalid, "Seeds/mes/pairings.json: unknown measure code \(series.code)")
                    }
                    for values in series.values {
                        guard let effective = values.first?.text else {
                            throw MESError(.invalid, "Seeds/mes/pairings.json: each value starts with its date")
                        }
                        let numbers = values.dropFirst().compactMap(\.number)
                        let observation = MESObservation.make(
                            measure: measure,
                            values: numbers,
                            effective: effective,
                            pairing: pairing,
                            service: service
                        )
                        let stored = try repository.save(observation, in: db)
                        try MESMeasureIndex.record(observation, id: stored.id, in: db)
                        count += 1
                    }
                }
            }
        }
        return count
    }
}

/// Builds a measure as a service would write it (seeds, tests, the console's example).
public enum MESObservation {
    public static func make(
        measure: MESMeasureRules.Measure,
        values: [Double],
        effective: String,
        pairing: MESPairing,
        service: MESServiceRecord,
        id: String = UUID().uuidString.lowercased()
    ) -> JSONObject {
        func quantity(_ value: Double, _ measure: MESMeasureRules.Measure) -> JSON {
            let unit = measure.units?.first ?? ""
            return .object(
                JSONObject([
                    "value": .number(JSONNumber(text: value == value.rounded() ? String(Int(value)) : String(value))),
                    "unit": .string(unit), "system": .string(MESMeasureRules.ucum), "code": .string(unit),
                ])
            )
        }
        func code(_ measure: MESMeasureRules.Measure) -> JSON {
            .object(
                JSONObject([
                    "coding": .array([
                        .object(
                            JSONObject([
                                "system": .string(measure.system), "code": .string(measure.code),
                                "display": .string(measure.label),
                            ])
                        )
                    ])
                ])
            )
        }
        var object = JSONObject([
            "resourceType": .string("Observation"), "id": .string(id),
            "meta": .object(JSONObject(["source": .string("urn:oid:" + service.pairingOID)])),
            "status": .string("final"),
            "category": .array([
                .object(
                    JSONObject([
                        "coding": .array([
                            .object(
                                JSONObject([
                                    "system": .string("http://terminology.hl7.org/CodeSystem/observation-category"),
                                    "code": .string("vital-signs"),
                                ])
                            )
                        ])
                    ])
                )
            ]),
            "code": code(measure),
            "subject": .object(
                JSONObject([
                    "identifier": .object(
                        JSONObject(["system": .string("urn:oid:" + service.pairingOID), "value": .string(pairing.idPe)])
                    )
                ])
            ),
            "effectiveDateTime": .string(effective),
        ])
        if let components = measure.components {
            object["component"] = .array(
                zip(components, values).map { component, value in
                    .object(JSONObject(["code": code(component), "valueQuantity": quantity(value, component)]))
                }
            )
        } else if let value = values.first {
            object["valueQuantity"] = quantity(value, measure)
        }
        return object
    }
}

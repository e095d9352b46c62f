import FHIRCore
import Foundation
import Hummingbird
import MonEspaceSante

/// `/admin/mes/*`: Mon espace santé as its operator sees it — register services, list patients and pairings, pair
/// without a browser (for integration suites), give or withdraw consent, end a pairing, export everything as ndjson.
enum AdminMES {
    struct PairingOrder: Decodable {
        var clientId: String
        var ins: String
        var consent: Bool?
    }

    struct ConsentOrder: Decodable {
        var consent: Bool
    }

    struct PatientView: Encodable {
        var ins: String
        var birthName: String
        var firstNames: String
        var sex: String
        var birthDate: String
        /// `<INS>@patient.mssante.fr`: the patient's MSSanté address (no mail is carried by the sandbox).
        var messagingAddress: String

        init(_ patient: MESPatient) {
            (ins, birthName, firstNames, sex, birthDate) = (
                patient.ins, patient.birthName, patient.firstNames, patient.sex, patient.birthDate
            )
            messagingAddress = patient.messagingAddress
        }
    }

    struct PairingAnswer: Encodable {
        var pairing: MESPairing
        /// Absent when the pairing was made without consent.
        var tokens: MESTokenResponse?
    }

    static func add(
        to admin: RouterGroup<AdminRequestContext>,
        mes: MESService,
        tlsBase: @escaping @Sendable () async -> String
    ) {
        let group = admin.group("mes")
        group.get("services") { _, _ in SandboxJSON.response(try mes.directory.services()) }
        group.post("services") { request, _ in
            switch await AdminAPI.decodeBody(request, as: MESDirectory.Registration.self, "Mon espace santé service") {
            case .refusal(let response): return response
            case .value(let registration):
                do {
                    return SandboxJSON.response(
                        try mes.directory.register(registration, origin: "admin"),
                        status: .created
                    )
                } catch let error as MESError {
                    return refusal(error)
                }
            }
        }
        group.get("patients") { _, _ in SandboxJSON.response(try mes.directory.patients().map(PatientView.init)) }
        group.get("pairings") { request, _ in
            let query = request.uri.queryParameters
            return SandboxJSON.response(
                try mes.directory.pairings(
                    clientId: query["clientId"].map(String.init),
                    ins: query["ins"].map(String.init)
                )
            )
        }
        group.post("pairings") { request, _ in
            switch await AdminAPI.decodeBody(request, as: PairingOrder.self, "pairing") {
            case .refusal(let response): return response
            case .value(let order):
                do {
                    let (pairing, tokens) = try await mes.pairWithoutBrowser(
                        clientId: order.clientId,
                        ins: order.ins,
                        consent: order.consent ?? true,
                        issuer: await tlsBase() + MESService.basePath
                    )
                    return SandboxJSON.response(PairingAnswer(pairing: pairing, tokens: tokens), status: .created)
                } catch let error as MESError {
                    return refusal(error)
                }
            }
        }
        group.post("pairings/:id/consent") { request, context in
            guard let id = context.parameters.get("id", as: Int64.self) else {
                return SandboxJSON.error(.badRequest, "the pairing id must be an integer")
            }
            switch await AdminAPI.decodeBody(request, as: ConsentOrder.self, "consent") {
            case .refusal(let response): return response
            case .value(let order):
                do {
                    return SandboxJSON.response(try mes.directory.setConsent(pairingID: id, consent: order.consent))
                } catch let error as MESError {
                    return refusal(error)
                }
            }
        }
        group.post("pairings/:id/revoke") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self) else {
                return SandboxJSON.error(.badRequest, "the pairing id must be an integer")
            }
            do { return SandboxJSON.response(try mes.directory.revoke(pairingID: id)) } catch let error as MESError {
                return refusal(error)
            }
        }
        group.get("export") { _, _ in
            try await export(mes)
        }
    }

    static func refusal(_ error: MESError) -> Response {
        switch error.kind {
        case .invalid: SandboxJSON.error(.badRequest, error.description)
        case .notFound: SandboxJSON.error(.notFound, error.description)
        case .conflict: SandboxJSON.error(.conflict, error.description)
        }
    }

    /// Everything Mon espace santé holds, one JSON object a line (`kind`: service, patient, pairing; FHIR resources
    /// as they are stored).
    static func export(_ mes: MESService) async throws -> Response {
        var lines: [Data] = []
        func line(_ kind: String, _ value: some Encodable) throws {
            var object =
                try JSONSerialization.jsonObject(with: SandboxJSON.encoder.encode(value)) as? [String: Any] ?? [:]
            object["kind"] = kind
            lines.append(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }
        for service in try mes.directory.services() { try line("service", service) }
        for patient in try mes.directory.patients() { try line("patient", PatientView(patient)) }
        for pairing in try mes.directory.pairings() { try line("pairing", pairing) }
        for type in ["Device", "Observation"] {
            for stored in try await mes.repository.recentlyUpdated(type: type, limit: Int.max) {
                lines.append(stored.json)
            }
        }
        var body = Data()
        for line in lines {
            body.append(line)
            body.append(UInt8(ascii: "\n"))
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-ndjson"],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

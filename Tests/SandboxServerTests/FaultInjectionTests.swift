import Access
import Foundation
import HTTPTypes
import SandboxServer
import Testing

@testable import SandboxTestSupport

@Suite("Fault injection over mutual TLS")
struct FaultInjectionTests {
    static let dn = "CN=EDITEUR-FAULTS,OU=0002 500000002,O=EDITEUR FAULTS,C=FR"
    static let metadata = "/ws-diffusion-fhir/metadata"

    static func start() async throws -> (RunningSandbox, ClientFiles) {
        let client = try SharedPKI.client(dn)
        let running = try await RunningSandbox.start()
        try running.whitelist("ror-fhir", dn: dn)
        try running.whitelist("insi", dn: dn)
        return (running, client)
    }

    @Test func errorRateAnswers503InTheServicesOwnFormWithRetryAfter() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let added = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "ror-fhir", "errorRate": 1, "retryAfter": 12, "label": "panne"}"#
            )
            #expect(added.status == .created, "\(added.text)")
            let fhir = try await running.request(Self.metadata, client: client)
            #expect(fhir.status == .serviceUnavailable)
            #expect(fhir.headers[.retryAfter] == "12")
            #expect(fhir.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
            #expect(
                fhir.text.contains("\"resourceType\":\"OperationOutcome\"")
                    || fhir.text.contains("\"resourceType\" : \"OperationOutcome\"")
            )
            #expect(fhir.text.contains("panne"))
            // Another service is not touched.
            #expect(try await running.request("/lps?wsdl", client: client).status == .ok)
            let rows = try await running.journalRows { $0.reason == "fault-unavailable" }
            #expect(rows.first?.status == 503)
            #expect(
                try await running.journalRows { $0.method == "FAULT" }.first?.reason?.contains(
                    "added: ror-fhir: 100 % 503 (Retry-After 12)"
                ) == true
            )

            // A SOAP service answers a SOAP 1.2 Fault.
            _ = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"pathPrefix": "/lps", "errorRate": 1}"#
            )
            let soap = try await running.request(
                "/lps",
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: "<x/>"
            )
            #expect(soap.status == .serviceUnavailable)
            #expect(soap.text.contains("Fault"))
            #expect(soap.headers[.retryAfter] == "30")

            // Reset clears every fault.
            #expect(try await running.admin("/admin/reset", method: .post).status == .ok)
            #expect(
                try await running.admin("/admin/faults").text.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "[\n\n]" || running.sandbox.faults.rules.isEmpty
            )
            try running.whitelist("ror-fhir", dn: Self.dn)
            #expect(try await running.request(Self.metadata, client: client).status == .ok)
        }
    }

    @Test func aPartialErrorRateLetsSomeRequestsThrough() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            _ = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "ror-fhir", "errorRate": 0.5}"#
            )
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<40 { statuses.append(try await running.request(Self.metadata, client: client).status) }
            #expect(statuses.contains(.ok))
            #expect(statuses.contains(.serviceUnavailable))
            #expect(Set(statuses).isSubset(of: [.ok, .serviceUnavailable]))
        }
    }

    @Test func latencyDelaysTheAnswer() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            _ = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"pathPrefix": "/ws-diffusion-fhir", "latencyMs": 300, "latencyMaxMs": 400}"#
            )
            let started = ContinuousClock.now
            let response = try await running.request(Self.metadata, client: client)
            #expect(response.status == .ok)
            #expect(ContinuousClock.now - started >= .milliseconds(300))
        }
    }

    @Test func maintenanceWindowAnswers503UntilItEnds() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let until = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            let added = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "ror-fhir", "maintenanceUntil": "\#(until)"}"#
            )
            #expect(added.status == .created, "\(added.text)")
            let response = try await running.request(Self.metadata, client: client)
            #expect(response.status == .serviceUnavailable)
            #expect(response.text.contains("maintenance jusqu'au \(until)"))
            let retry = try #require(Int(response.headers[.retryAfter] ?? ""))
            #expect((3500...3600).contains(retry))
            let past = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-60))
            let over = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "insi", "maintenanceFrom": "\#(past)", "maintenanceUntil": "\#(past)"}"#
            )
            #expect(over.status == .badRequest)
            #expect(over.text.contains("maintenanceUntil must be after maintenanceFrom"))
        }
    }

    @Test func droppedConnectionGetsNoAnswer() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            _ = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "ror-fhir", "dropRate": 1}"#
            )
            await #expect(throws: (any Error).self) { _ = try await running.request(Self.metadata, client: client) }
            let rows = try await running.journalRows { $0.reason == "fault-dropped" }
            #expect(rows.first?.status == 0)
            // The server still serves other paths.
            #expect(try await running.request("/lps?wsdl", client: client).status == .ok)
        }
    }

    @Test func badRulesAreRefusedWithTheirReason() async throws {
        let (running, _) = try await Self.start()
        try await running.whileRunning {
            let cases: [(String, String)] = [
                (#"{"errorRate": 1}"#, "either service or pathPrefix"),
                (#"{"service": "ror", "errorRate": 1}"#, "service: 'ror'"),
                (#"{"pathPrefix": "lps", "errorRate": 1}"#, "must start with /"),
                (#"{"service": "insi"}"#, "at least one effect"),
                (#"{"service": "insi", "errorRate": 2}"#, "errorRate must be between 0 and 1"),
                (#"{"service": "insi", "latencyMs": 500, "latencyMaxMs": 100}"#, "latencyMaxMs must be from latencyMs"),
                (#"{"service": "insi", "maintenanceUntil": "tomorrow"}"#, "maintenanceUntil"),
                ("[1]", "body must be a JSON fault rule"),
            ]
            for (body, message) in cases {
                let response = try await running.admin("/admin/faults", method: .post, body: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.text.contains(message), "\(body): \(response.text)")
            }
            #expect(running.sandbox.faults.rules.isEmpty)
            #expect(try await running.admin("/admin/faults/9", method: .delete).status == .notFound)
            let added = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "insi", "latencyMs": 1}"#
            )
            let id = try #require(try added.json()["id"] as? Int)
            #expect(try await running.admin("/admin/faults/\(id)", method: .delete).status == .noContent)
            #expect(running.sandbox.faults.rules.isEmpty)
        }
    }
}

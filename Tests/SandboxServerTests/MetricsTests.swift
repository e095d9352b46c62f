import Foundation
import SandboxServer
import Testing

@testable import SandboxTestSupport

/// `GET /metrics` on the admin listener, parsed as Prometheus text.
@Suite("Metrics")
struct MetricsTests {
    /// `name{label="value",…} number` lines as (name, labels, value); comments skipped.
    static func samples(_ text: String) throws -> [(name: String, labels: [String: String], value: Double)] {
        try text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { line in
            let parts = line.split(separator: " ")
            let series = String(parts[0])
            let value = try #require(Double(String(parts[1])), "\(line)")
            guard let brace = series.firstIndex(of: "{") else { return (series, [:], value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)]
                .split(separator: ",")
            {
                let kv = pair.split(separator: "=", maxSplits: 1)
                labels[String(kv[0])] = String(kv[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            return (String(series[..<brace]), labels, value)
        }
    }

    static func value(
        _ samples: [(name: String, labels: [String: String], value: Double)],
        _ name: String,
        _ labels: [String: String]
    ) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?
            .value
    }

    /// Empty seeds (no ROR dataset to load beside the other suites), the client whitelisted here.
    @Test func callsDecisionsLatenciesAndSizesAreExposed() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let consumer = try SharedPKI.client("CN=METRICS-CONSUMER,O=SOMEWHERE,C=FR")
            try running.whitelist("ror-fhir", dn: "CN=METRICS-CONSUMER,O=SOMEWHERE,C=FR")
            let outsider = try SharedPKI.client("CN=METRICS-OUTSIDER,O=NOWHERE,C=FR")
            for _ in 0..<3 {
                #expect(try await running.request("/ws-diffusion-fhir/metadata", client: consumer).status == .ok)
            }
            #expect(try await running.request("/ws-diffusion-fhir/metadata", client: outsider).status == .forbidden)
            _ = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body: #"{"service":"insi","subjectDN":"CN=METRICS-ADDED,O=SOMEWHERE,C=FR"}"#
            )
            let response = try await running.admin("/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = try Self.samples(response.text)
            let accepted = Self.value(
                samples,
                "esante_sandbox_requests_total",
                ["service": "ror-fhir", "decision": "accepted", "status": "200", "environment": "bac-a-sable"]
            )
            #expect(accepted == 3)
            #expect(
                Self.value(
                    samples,
                    "esante_sandbox_requests_total",
                    ["service": "ror-fhir", "decision": "refused", "status": "403"]
                ) == 1
            )
            // The histogram counts every ror-fhir call; its +Inf bucket equals its count.
            #expect(Self.value(samples, "esante_sandbox_request_duration_seconds_count", ["service": "ror-fhir"]) == 4)
            #expect(
                Self.value(
                    samples,
                    "esante_sandbox_request_duration_seconds_bucket",
                    ["service": "ror-fhir", "le": "+Inf"]
                )
                    == 4
            )
            #expect(Self.value(samples, "esante_sandbox_request_duration_seconds_bucket", ["le": "0.001"]) != nil)
            let seededINSi = try await running.sandbox.whitelist.entries().filter { $0.service == .insi }.count
            #expect(
                Self.value(
                    samples,
                    "esante_sandbox_whitelist_entries",
                    ["service": "insi", "environment": "bac-a-sable"]
                )
                    == Double(seededINSi)
            )
            #expect(Self.value(samples, "esante_sandbox_onboarding_requests", ["state": "submitted"]) == 0)
            #expect(Self.value(samples, "esante_sandbox_journal_rows", [:]) != nil)
            // Onboarding rows in the journal are not calls.
            #expect(
                !samples.contains {
                    $0.name == "esante_sandbox_requests_total" && $0.labels["status"] == "0"
                        && $0.labels["service"] == "ror-fhir"
                }
            )
        }
    }

    @Test func aCapacityPatchIsCountedByStatus() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let feeder = try SharedPKI.client("CN=METRICS-FEEDER,O=SOMEWHERE,C=FR")
            let patched = try await running.request(
                "/ws-synchro-dispo-lits-fhir/Location/no-such-place",
                method: .patch,
                client: feeder,
                headers: [.contentType: "application/json-patch+json"],
                body: "[]"
            )
            let samples = try Self.samples(try await running.admin("/metrics").text)
            #expect(
                Self.value(samples, "esante_sandbox_capacity_patches_total", ["status": String(patched.status.code)])
                    == 1
            )
        }
    }
}

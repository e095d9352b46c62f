import Access
import Foundation
import Hummingbird
import Metrics
import Prometheus

/// `GET /metrics` on the admin listener, in the Prometheus text format: swift-metrics instruments made by a
/// Prometheus factory of this sandbox's own (not the process-wide `MetricsSystem`, so two sandboxes in one test
/// process never add to each other's figures).
///
/// Calls are counted from the journal rows as they are recorded — the one place every call, refused handshakes
/// included, passes with its service, decision, status and duration. Sizes (journal rows, whitelist entries,
/// onboarding requests by state) are read from the store when scraped.
final class SandboxMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // The sandbox answers in milliseconds: buckets from 1 ms, not the default's 5 ms.
        factory.defaultDurationHistogramBuckets = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000].map {
            Duration.microseconds(Int64($0 * 1000))
        }
        self.factory = factory
    }

    /// Counts one journaled call. Admin events in the journal (onboarding steps, fault changes) are not calls.
    func observe(_ entry: JournalEntry) {
        guard entry.method != "ONBOARDING", entry.method != "FAULT" else { return }
        let service = entry.service ?? "none"
        Counter(
            label: "esante_sandbox_requests_total",
            dimensions: [
                ("service", service), ("decision", entry.decision.rawValue), ("status", String(entry.status)),
                ("environment", entry.environment),
            ],
            factory: factory
        ).increment()
        Metrics.Timer(
            label: "esante_sandbox_request_duration_seconds",
            dimensions: [("service", service)],
            factory: factory
        )
        .recordNanoseconds(Int64(entry.durationMs * 1_000_000))
        if entry.method == "PATCH", entry.path.hasPrefix(SandboxService.Path.rorCapacityFeed) {
            Counter(
                label: "esante_sandbox_capacity_patches_total",
                dimensions: [("status", String(entry.status))],
                factory: factory
            ).increment()
        }
    }

    /// Sets the gauges read from the store, then renders every metric.
    func render(
        journal: Journal,
        whitelist: Whitelist,
        onboarding: Onboarding,
        environments: [String]
    ) throws
        -> String
    {
        gauge("esante_sandbox_journal_rows", [], Double(try journal.rowCount()))
        let entries = try whitelist.entries()
        for environment in environments {
            for service in SandboxService.allCases {
                let count = entries.filter { $0.environment == environment && $0.service == service }.count
                gauge(
                    "esante_sandbox_whitelist_entries",
                    [("environment", environment), ("service", service.rawValue)],
                    Double(count)
                )
            }
        }
        let requests = try onboarding.list()
        for state in OnboardingState.allCases {
            gauge(
                "esante_sandbox_onboarding_requests",
                [("state", state.rawValue)],
                Double(requests.filter { $0.state == state }.count)
            )
        }
        return registry.emitToString()
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)], _ value: Double) {
        Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }

    /// The route: text format 0.0.4, what Prometheus scrapes.
    func addRoute(
        to router: Router<AdminRequestContext>,
        journal: Journal,
        whitelist: Whitelist,
        onboarding: Onboarding,
        environments: [String]
    ) {
        router.get("metrics") { _, _ in
            let text = try self.render(
                journal: journal,
                whitelist: whitelist,
                onboarding: onboarding,
                environments: environments
            )
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
    }
}

import Access
import Foundation
import Hummingbird

/// `/admin/faults`: list, add, remove the injected faults (each change journaled, method FAULT).
enum AdminFaults {
    static func add(to admin: RouterGroup<AdminRequestContext>, faults: FaultInjector, audit: FaultAudit) {
        admin.get("faults") { _, _ in SandboxJSON.response(faults.rules) }
        admin.post("faults") { request, _ in
            switch await AdminAPI.decodeBody(request, as: FaultRule.self, "fault rule") {
            case .refusal(let response): return response
            case .value(let rule):
                do {
                    let added = try faults.add(rule)
                    audit.record(added, "added")
                    return SandboxJSON.response(added, status: .created)
                } catch let error as FaultError {
                    return SandboxJSON.error(.badRequest, error.description)
                }
            }
        }
        admin.delete("faults") { _, _ in
            let rules = faults.rules
            faults.removeAll()
            rules.forEach { audit.record($0, "cleared") }
            return Response(status: .noContent)
        }
        admin.delete("faults/:id") { _, context in
            guard let id = context.parameters.get("id", as: Int.self) else {
                return SandboxJSON.error(.badRequest, "the fault id must be an integer")
            }
            guard let rule = faults.rules.first(where: { $0.id == id }), faults.remove(id: id) else {
                return SandboxJSON.error(.notFound, "no fault \(id)")
            }
            audit.record(rule, "removed")
            return Response(status: .noContent)
        }
    }

    /// `ror-fhir: latency 200–800 ms, 30 % 503 (Retry-After 30)`.
    static func describe(_ rule: FaultRule) -> String {
        var effects: [String] = []
        if let low = rule.latencyMs { effects.append("latency \(low)\(rule.latencyMaxMs.map { "–\($0)" } ?? "") ms") }
        if let rate = rule.errorRate {
            effects.append("\(Int((rate * 100).rounded())) % 503 (Retry-After \(rule.retryAfter ?? 30))")
        }
        if let until = rule.maintenanceUntil {
            effects.append("maintenance until \(ISO8601DateFormatter().string(from: until))")
        }
        if let rate = rule.dropRate { effects.append("\(Int((rate * 100).rounded())) % dropped") }
        return "\(rule.service ?? rule.pathPrefix ?? "?"): \(effects.joined(separator: ", "))"
    }
}

/// Every change to the faults in force is a journal row (method FAULT), so a trainer's outage shows in the journal.
struct FaultAudit: Sendable {
    let journal: Journal
    let environment: String

    func record(_ rule: FaultRule, _ what: String) {
        journal.record(
            JournalEntry(
                environment: environment,
                service: rule.service,
                method: "FAULT",
                path: "/admin/faults/\(rule.id)",
                status: 200,
                decision: .accepted,
                reason: "\(what): \(AdminFaults.describe(rule))",
                identity: nil,
                durationMs: 0
            )
        )
    }
}

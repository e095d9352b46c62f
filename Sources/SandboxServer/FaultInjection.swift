import Access
import Foundation
import NIOConcurrencyHelpers

/// A fault to inject on a service (or any path under a prefix): what publisher code must survive. Effects combine:
/// latency first, then a maintenance window, an error rate, or a dropped connection.
public struct FaultRule: Sendable, Codable, Equatable {
    public var id: Int
    /// `ror-fhir`, `ror-csd`, `insi`, `dmp`, `mes` — or give `pathPrefix`.
    public var service: String?
    public var pathPrefix: String?
    /// Added latency in ms: fixed, or random in `latencyMs...latencyMaxMs`.
    public var latencyMs: Int?
    public var latencyMaxMs: Int?
    /// Share of requests (0–1) answered 503 with `Retry-After` and a body in the service's own form.
    public var errorRate: Double?
    /// `Retry-After` seconds of those 503 answers (default 30).
    public var retryAfter: Int?
    /// Maintenance window on the sandbox clock: every request answered 503 until `maintenanceUntil`.
    public var maintenanceFrom: Date?
    public var maintenanceUntil: Date?
    /// Share of requests (0–1) whose connection is closed without an answer.
    public var dropRate: Double?
    public var label: String?
    public var createdAt: Date?

    public init(
        id: Int = 0,
        service: String? = nil,
        pathPrefix: String? = nil,
        latencyMs: Int? = nil,
        latencyMaxMs: Int? = nil,
        errorRate: Double? = nil,
        retryAfter: Int? = nil,
        maintenanceFrom: Date? = nil,
        maintenanceUntil: Date? = nil,
        dropRate: Double? = nil,
        label: String? = nil
    ) {
        self.id = id
        self.service = service
        self.pathPrefix = pathPrefix
        self.latencyMs = latencyMs
        self.latencyMaxMs = latencyMaxMs
        self.errorRate = errorRate
        self.retryAfter = retryAfter
        self.maintenanceFrom = maintenanceFrom
        self.maintenanceUntil = maintenanceUntil
        self.dropRate = dropRate
        self.label = label
    }

    enum CodingKeys: String, CodingKey {
        case id, service, pathPrefix, latencyMs, latencyMaxMs, errorRate, retryAfter, maintenanceFrom, maintenanceUntil,
            dropRate, label, createdAt
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = 0
        service = try c.decodeIfPresent(String.self, forKey: .service)
        pathPrefix = try c.decodeIfPresent(String.self, forKey: .pathPrefix)
        latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs)
        latencyMaxMs = try c.decodeIfPresent(Int.self, forKey: .latencyMaxMs)
        errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate)
        retryAfter = try c.decodeIfPresent(Int.self, forKey: .retryAfter)
        // Dates read here so that a bad one is named (the decoder's date strategy loses the field's name).
        func date(_ key: CodingKeys) throws -> Date? {
            guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let date = ISO8601DateFormatter().date(from: text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key,
                    in: c,
                    debugDescription: "'\(text)' is not an ISO 8601 date-time (2026-11-22T10:00:00Z)"
                )
            }
            return date
        }
        maintenanceFrom = try date(.maintenanceFrom)
        maintenanceUntil = try date(.maintenanceUntil)
        dropRate = try c.decodeIfPresent(Double.self, forKey: .dropRate)
        label = try c.decodeIfPresent(String.self, forKey: .label)
    }

    /// Whether the rule covers a request path.
    func covers(path: String, service owner: SandboxService?) -> Bool {
        if let service { return owner?.rawValue == service }
        guard let prefix = pathPrefix, path.hasPrefix(prefix) else { return false }
        let rest = path.dropFirst(prefix.count)
        return prefix.hasSuffix("/") || rest.isEmpty || rest.hasPrefix("/")
    }

    /// The rule's mistakes, each named; nil when it can be applied.
    func problem() -> String? {
        switch (service, pathPrefix) {
        case (nil, nil), (.some, .some): return "give either service or pathPrefix"
        case (let service?, nil) where SandboxService(rawValue: service) == nil:
            return
                "service: '\(service)' is not one of \(SandboxService.allCases.map(\.rawValue).joined(separator: ", "))"
        case (nil, let prefix?) where !prefix.hasPrefix("/"): return "pathPrefix must start with /"
        default: break
        }
        guard latencyMs != nil || errorRate != nil || maintenanceUntil != nil || dropRate != nil else {
            return "give at least one effect: latencyMs, errorRate, maintenanceUntil or dropRate"
        }
        if let latency = latencyMs, !(0...60_000).contains(latency) { return "latencyMs must be 0 to 60000" }
        if let maximum = latencyMaxMs {
            guard let latency = latencyMs else { return "latencyMaxMs needs latencyMs (the range's low end)" }
            if !(latency...60_000).contains(maximum) { return "latencyMaxMs must be from latencyMs to 60000" }
        }
        for (name, rate) in [("errorRate", errorRate), ("dropRate", dropRate)] {
            if let rate, !(0...1).contains(rate) { return "\(name) must be between 0 and 1" }
        }
        if let retryAfter, !(0...86_400).contains(retryAfter) { return "retryAfter must be 0 to 86400 seconds" }
        if maintenanceFrom != nil, maintenanceUntil == nil { return "maintenanceFrom needs maintenanceUntil" }
        if let from = maintenanceFrom, let until = maintenanceUntil, until <= from {
            return "maintenanceUntil must be after maintenanceFrom"
        }
        return nil
    }
}

/// What the front of the listener does to one request.
struct FaultEffect: Sendable, Equatable {
    enum Outcome: Sendable, Equatable {
        case none
        /// 503 with `Retry-After` (seconds) and the reason for the journal.
        case unavailable(retryAfter: Int, message: String, reason: String)
        case drop
    }
    var delay: Duration?
    var outcome: Outcome = .none
}

/// The faults in force (in memory: cleared by `/admin/reset` and by a restart).
public final class FaultInjector: Sendable {
    private let state = NIOLockedValueBox<(rules: [FaultRule], nextID: Int)>(([], 1))
    private let clock: SandboxClock

    init(clock: SandboxClock) { self.clock = clock }

    public var rules: [FaultRule] { state.withLockedValue { $0.rules } }

    /// Adds a rule (a maintenance window without a start begins now); throws the rule's problem.
    public func add(_ rule: FaultRule) throws -> FaultRule {
        if let problem = rule.problem() { throw FaultError(description: problem) }
        var rule = rule
        rule.createdAt = clock.now
        if rule.maintenanceUntil != nil, rule.maintenanceFrom == nil { rule.maintenanceFrom = clock.now }
        return state.withLockedValue { state in
            rule.id = state.nextID
            state.nextID += 1
            state.rules.append(rule)
            return rule
        }
    }

    public func remove(id: Int) -> Bool {
        state.withLockedValue { state in
            let before = state.rules.count
            state.rules.removeAll { $0.id == id }
            return state.rules.count < before
        }
    }

    public func removeAll() { state.withLockedValue { $0.rules.removeAll() } }

    /// No rule in force (the access layer's immediate answers are only given then: a rule's draw happens once).
    var isQuiet: Bool { state.withLockedValue { $0.rules.isEmpty } }

    /// The effect of the rules covering a request (the first rule that decides an outcome wins; latencies add up).
    func effect(path: String, service: SandboxService?) -> FaultEffect {
        let rules = state.withLockedValue { $0.rules }
        guard !rules.isEmpty else { return FaultEffect() }
        var effect = FaultEffect()
        let now = clock.now
        for rule in rules where rule.covers(path: path, service: service) {
            if let low = rule.latencyMs {
                let ms = rule.latencyMaxMs.map { Int.random(in: low...$0) } ?? low
                effect.delay = (effect.delay ?? .zero) + .milliseconds(ms)
            }
            guard effect.outcome == .none else { continue }
            if let from = rule.maintenanceFrom, let until = rule.maintenanceUntil, from <= now, now < until {
                // Retry-After in real seconds: the sandbox clock may run faster.
                let seconds = max(1, Int((until.timeIntervalSince(now) / clock.speed).rounded(.up)))
                effect.outcome = .unavailable(
                    retryAfter: seconds,
                    message:
                        "Service en maintenance jusqu'au \(ISO8601DateFormatter().string(from: until)) (fault #\(rule.id)\(rule.label.map { ", \($0)" } ?? "")).",
                    reason: "fault-maintenance"
                )
            } else if let rate = rule.dropRate, Double.random(in: 0..<1) < rate {
                effect.outcome = .drop
            } else if let rate = rule.errorRate, Double.random(in: 0..<1) < rate {
                effect.outcome = .unavailable(
                    retryAfter: rule.retryAfter ?? 30,
                    message:
                        "Service temporairement indisponible, réessayez plus tard (fault #\(rule.id)\(rule.label.map { ", \($0)" } ?? "")).",
                    reason: "fault-unavailable"
                )
            }
        }
        return effect
    }
}

public struct FaultError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

import Foundation

/// Where a step stands (statut d'une étape).
public enum StepStatus: String, Codable, Sendable, CaseIterable {
    /// Not seen yet, the run still open.
    case waiting
    case pass
    case fail
    /// Failed, but the step's severity is `warning`.
    case warning
    /// Not applicable: the condition it depends on (`when`) never arose.
    case skipped
    /// Seen; a person judges it from the evidence.
    case manual = "to-verify"
}

/// The run's outcome (verdict), and the exit code of `recette status` / `report` / `run`.
public enum Verdict: String, Codable, Sendable {
    /// Every required step passed.
    case passed
    /// A rule was broken (a forbidden call, a check that failed, too many calls, a wrong order or delay).
    case failed
    /// Closed (or timed out) with required steps never seen, and nothing broken.
    case incomplete
    /// Still open, steps waiting.
    case running

    public var exitCode: Int32 {
        switch self {
        case .passed: 0
        case .failed: 1
        case .incomplete, .running: 2
        }
    }
}

public struct StepResult: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var rule: String
    public var status: StepStatus
    /// What was expected, what the client did, quoting the calls by journal id.
    public var message: String
    /// Journal ids of the calls the judgement rests on.
    public var evidence: [Int64]
    /// A required step never seen (the run is incomplete rather than failed).
    public var missing: Bool
    public var advice: String?
}

public struct ScenarioResult: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var reference: String?
    public var steps: [StepResult]
}

public struct RunResult: Codable, Sendable, Equatable {
    public var verdict: Verdict
    public var scenarios: [ScenarioResult]

    public var steps: [StepResult] { scenarios.flatMap(\.steps) }

    public func count(_ status: StepStatus) -> Int { steps.filter { $0.status == status }.count }
}

/// Judges a pack against the calls of a run's client, in journal order.
public struct RecetteEvaluation {
    public var pack: RecettePack
    public var calls: [RecordedCall]
    public var run: Int64
    /// Closed (or past its end): what was not seen is missing, not waiting.
    public var closed: Bool
    public var now: Date

    public init(pack: RecettePack, calls: [RecordedCall], run: Int64, closed: Bool, now: Date = Date()) {
        self.pack = pack
        self.calls = calls.sorted { $0.id < $1.id }
        self.run = run
        self.closed = closed
        self.now = now
    }

    public func result() -> RunResult {
        let scenarios = pack.scenarios.map(evaluate)
        let steps = scenarios.flatMap(\.steps)
        let verdict: Verdict
        if steps.contains(where: { $0.status == .fail && !$0.missing }) {
            verdict = .failed
        } else if steps.contains(where: { $0.status == .fail }) {
            verdict = .incomplete
        } else if steps.contains(where: { $0.status == .waiting }) {
            verdict = closed ? .incomplete : .running
        } else {
            verdict = .passed
        }
        return RunResult(verdict: verdict, scenarios: scenarios)
    }

    func evaluate(_ scenario: RecettePack.Scenario) -> ScenarioResult {
        var first: [String: RecordedCall] = [:]
        var seen = Set<String>()
        var previous: String?
        var results: [StepResult] = []
        for step in scenario.steps {
            let anchorID = step.after ?? ((scenario.ordered ?? false) && step.when == nil ? previous : nil)
            var result = judge(step, anchorID: anchorID, first: first, seen: seen)
            if let hit = result.first {
                first[step.id] = hit
                seen.insert(step.id)
            }
            if step.when == nil, step.effectiveRule == .required { previous = step.id }
            if result.step.status == .fail, step.severity == .warning { result.step.status = .warning }
            if result.step.status == .pass, step.manual == true { result.step.status = .manual }
            if result.step.status == .fail { result.step.advice = step.advice }
            results.append(result.step)
        }
        return ScenarioResult(id: scenario.id, title: scenario.title, reference: scenario.reference, steps: results)
    }

    func judge(
        _ step: RecettePack.Step,
        anchorID: String?,
        first: [String: RecordedCall],
        seen: Set<String>
    ) -> (step: StepResult, first: RecordedCall?) {
        func result(
            _ status: StepStatus,
            _ message: String,
            _ evidence: [RecordedCall] = [],
            missing: Bool = false
        )
            -> StepResult
        {
            StepResult(
                id: step.id,
                title: step.title,
                rule: describe(step),
                status: status,
                message: message,
                evidence: evidence.prefix(20).map(\.id),
                missing: missing
            )
        }
        if let when = step.when, !seen.contains(when) {
            let status: StepStatus = closed ? .skipped : .waiting
            return (result(status, "Applies only once step \(when) has been seen; it was not."), nil)
        }
        var candidates = calls
        var anchor: RecordedCall?
        if let anchorID {
            guard let found = first[anchorID] else {
                switch step.effectiveRule {
                case .forbidden, .every:
                    return (
                        result(.pass, "Nothing to check: step \(anchorID), which this step follows, was not seen."), nil
                    )
                case .observed:
                    return (result(closed ? .skipped : .waiting, "Step \(anchorID) was not seen."), nil)
                case .required:
                    return (
                        result(
                            closed ? .fail : .waiting,
                            "Expected after step \(anchorID), which the client never did.",
                            missing: true
                        ), nil
                    )
                }
            }
            anchor = found
            candidates = candidates.filter { $0.id > found.id }
            if step.repeatOfAnchor == true {
                candidates = candidates.filter {
                    $0.method == found.method && $0.path == found.path && $0.query == found.query
                        && $0.requestBody == found.requestBody
                }
            }
        }
        if let beforeID = step.before, let limit = first[beforeID] {
            candidates = candidates.filter { $0.id < limit.id }
        }
        if step.effectiveRule == .forbidden, let anchor, let within = step.withinSeconds {
            candidates = candidates.filter { $0.time.timeIntervalSince(anchor.time) <= within }
        }
        let matching = candidates.filter { call in
            step.match.mismatch(call, run: run) == nil
                && (step.inject == nil
                    || call.reason == RecordedCall.injectionReason(run: run, step: step.id))
        }
        if let limit = step.atMost, let violation = tooMany(matching, limit: limit, window: step.perSeconds) {
            return (result(.fail, violation.message, violation.calls), matching.first)
        }
        switch step.effectiveRule {
        case .forbidden:
            guard let offending = matching.first else {
                return (result(.pass, "No such call (\(calls.count) calls recorded)."), nil)
            }
            return (
                result(
                    .fail,
                    "Expected no call of this kind; the client made \(matching.count), first \(offending.summary).",
                    matching
                ), offending
            )
        case .every:
            guard !matching.isEmpty else {
                return (result(closed ? .skipped : .waiting, "No call of this kind to check yet."), nil)
            }
            for (index, call) in matching.enumerated() {
                if let problem = step.check?.mismatch(call, run: run) {
                    return (
                        result(
                            .fail,
                            "Expected of every such call: \(step.title). Call \(index + 1) of \(matching.count), \(call.summary): \(problem).",
                            [call]
                        ), matching.first
                    )
                }
            }
            return (result(.pass, "All \(matching.count) such calls comply.", matching), matching.first)
        case .observed:
            guard let hit = matching.first else {
                return (result(closed ? .skipped : .waiting, "Not seen."), nil)
            }
            return (result(.pass, "Seen: \(hit.summary).", [hit]), hit)
        case .required:
            guard let hit = matching.first else {
                if let anchor, let within = step.withinSeconds, !closed,
                    now.timeIntervalSince(anchor.time) <= within
                {
                    return (result(.waiting, "Expected within \(Self.seconds(within)) s of \(anchor.summary)."), nil)
                }
                if !closed, step.withinSeconds == nil {
                    return (result(.waiting, "Not seen yet."), nil)
                }
                // A deadline passed is a broken rule; a step merely never seen leaves the run incomplete.
                return (
                    result(
                        .fail,
                        missingMessage(step, after: anchor),
                        anchor.map { [$0] } ?? [],
                        missing: step.withinSeconds == nil
                    ),
                    nil
                )
            }
            if let anchor {
                let delay = hit.time.timeIntervalSince(anchor.time)
                if let notBefore = step.notBeforeSeconds, delay < notBefore {
                    return (
                        result(
                            .fail,
                            "Expected no sooner than \(Self.seconds(notBefore)) s after \(anchor.summary); the client sent \(hit.summary) after \(Self.seconds(delay)) s.",
                            [anchor, hit]
                        ), hit
                    )
                }
                if let within = step.withinSeconds, delay > within {
                    return (
                        result(
                            .fail,
                            "Expected within \(Self.seconds(within)) s of \(anchor.summary); the client sent \(hit.summary) after \(Self.seconds(delay)) s.",
                            [anchor, hit]
                        ), hit
                    )
                }
            }
            return (
                result(
                    .pass,
                    "Seen: \(hit.summary)\(matching.count > 1 ? " (and \(matching.count - 1) more)" : "").",
                    matching
                ),
                hit
            )
        }
    }

    /// "Expected X; the client made no such call", with the nearest miss explained: the first call of the same
    /// service, method and path, and why it is not it.
    func missingMessage(_ step: RecettePack.Step, after anchor: RecordedCall?) -> String {
        var message = "Expected: \(step.title)"
        if let anchor { message += " (after \(anchor.summary))" }
        var near = step.match
        near.query = nil
        near.headers = nil
        near.body = nil
        near.status = nil
        near.response = nil
        near.subject = nil
        near.injected = nil
        let pool = calls.filter { anchor == nil || $0.id > anchor!.id }
        if let miss = pool.first(where: { near.mismatch($0, run: run) == nil }),
            let why = step.match.mismatch(miss, run: run)
        {
            return message + ". The nearest call, \(miss.summary), is not it: \(why)."
        }
        return message + ". The client made no such call (\(calls.count) calls recorded in the run)."
    }

    func tooMany(_ calls: [RecordedCall], limit: Int, window: Double?) -> (message: String, calls: [RecordedCall])? {
        guard calls.count > limit else { return nil }
        guard let window else {
            return (
                "Expected at most \(limit) such calls; the client made \(calls.count), first \(calls[0].summary).",
                calls
            )
        }
        for (index, call) in calls.enumerated() where index + limit < calls.count {
            let last = calls[index + limit]
            if last.time.timeIntervalSince(call.time) < window {
                let burst = Array(calls[index...(index + limit)])
                return (
                    "Expected at most \(limit) such calls in \(Self.seconds(window)) s; the client made \(burst.count) in \(Self.seconds(last.time.timeIntervalSince(call.time))) s: \(burst.map { "#\($0.id)" }.joined(separator: ", ")).",
                    burst
                )
            }
        }
        return nil
    }

    func describe(_ step: RecettePack.Step) -> String {
        var parts = [step.effectiveRule.rawValue]
        if let atMost = step.atMost {
            parts.append("at most \(atMost)\(step.perSeconds.map { " per \(Self.seconds($0)) s" } ?? "")")
        }
        if let after = step.after { parts.append("after \(after)") }
        if let before = step.before { parts.append("before \(before)") }
        if let within = step.withinSeconds { parts.append("within \(Self.seconds(within)) s") }
        if let notBefore = step.notBeforeSeconds { parts.append("not before \(Self.seconds(notBefore)) s") }
        if let when = step.when { parts.append("when \(when)") }
        if step.repeatOfAnchor == true { parts.append("same request") }
        if step.inject != nil { parts.append("injected answer") }
        if step.severity == .warning { parts.append("warning") }
        return parts.joined(separator: ", ")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}

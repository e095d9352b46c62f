import Foundation
import GRDB
import NIOConcurrencyHelpers
import Store

/// The sandbox's clock: real time, or compressed for demos (`--clock-speed 3600`: an hour passes per second), so the
/// ANS's "about 5 working days" before a certificate reaches the whitelist can be shown in a lesson.
///
/// Kept in SQLite (`sandbox_clock`): the CLI and a running server share one time line, and sandbox time never goes
/// back when the speed changes (it is re-anchored at the current sandbox time).
public final class SandboxClock: Sendable {
    struct Anchor: Sendable, Equatable {
        var real: Double
        var sandbox: Double
        var speed: Double

        func time(atReal real: Double) -> Double { sandbox + (real - self.real) * speed }
    }

    private let store: SandboxStore
    private let anchor: NIOLockedValueBox<Anchor>
    /// Real time source (tests can pin it).
    private let realNow: @Sendable () -> Date

    /// Opens the stored clock; `speed` (when given) re-anchors it at the current sandbox time with that speed.
    public init(store: SandboxStore, speed: Double? = nil, realNow: @escaping @Sendable () -> Date = Date.init) throws {
        self.store = store
        self.realNow = realNow
        let stored = try Self.stored(in: store)
        let real = realNow().timeIntervalSince1970
        self.anchor = NIOLockedValueBox(stored ?? Anchor(real: real, sandbox: real, speed: 1))
        if let speed {
            try setSpeed(speed)
        } else if stored == nil {
            try save(anchor.withLockedValue { $0 })
        }
    }

    /// Speeds a clock may run at: from real time to a (working) week per minute.
    public static let speeds: ClosedRange<Double> = 1...100_000

    public var now: Date {
        Date(timeIntervalSince1970: anchor.withLockedValue { $0 }.time(atReal: realNow().timeIntervalSince1970))
    }

    public var speed: Double { anchor.withLockedValue { $0.speed } }

    /// Changes the speed from now on (sandbox time continues from where it is).
    public func setSpeed(_ speed: Double) throws {
        guard Self.speeds.contains(speed) else {
            throw ClockError("clock speed must be between 1 (real time) and 100000 (got \(speed))")
        }
        let real = realNow().timeIntervalSince1970
        let fresh = anchor.withLockedValue { current in
            current = Anchor(real: real, sandbox: current.time(atReal: real), speed: speed)
            return current
        }
        try save(fresh)
    }

    /// Back to real time at speed 1 (`reset?scope=all`).
    public func reset() throws {
        let real = realNow().timeIntervalSince1970
        let fresh = Anchor(real: real, sandbox: real, speed: 1)
        anchor.withLockedValue { $0 = fresh }
        try save(fresh)
    }

    /// Picks up a speed change made by another process (the CLI).
    public func reload() throws {
        if let stored = try Self.stored(in: store) { anchor.withLockedValue { $0 = stored } }
    }

    private static func stored(in store: SandboxStore) throws -> Anchor? {
        try store.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT real_anchor, sandbox_anchor, speed FROM sandbox_clock WHERE id = 1")
                .map { Anchor(real: $0["real_anchor"], sandbox: $0["sandbox_anchor"], speed: $0["speed"]) }
        }
    }

    private func save(_ anchor: Anchor) throws {
        try store.writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO sandbox_clock(id, real_anchor, sandbox_anchor, speed) VALUES (1, ?, ?, ?)",
                arguments: [anchor.real, anchor.sandbox, anchor.speed]
            )
        }
    }

    /// How the clock is shown everywhere (API, console, CLI): the time and, when compressed, the speed.
    public struct View: Codable, Sendable {
        public var now: Date
        public var speed: Double
        /// "real time" or "×3600 (1 h per second)".
        public var label: String
    }

    public var view: View {
        let speed = self.speed
        return View(now: now, speed: speed, label: Self.label(speed: speed))
    }

    static func label(speed: Double) -> String {
        guard speed > 1 else { return "real time" }
        return "×\(Int(speed)) (\(WhitelistDelay.describe(seconds: speed)) per second)"
    }
}

public struct ClockError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The ANS's delay between "tests done" and the certificate being in the whitelist (`--whitelist-delay 5d`).
public struct WhitelistDelay: Sendable, Equatable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    /// `0`, `45s`, `30m`, `2h`, `5d` (days of sandbox time).
    public init(parsing text: String) throws {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" {
            self.seconds = 0
            return
        }
        guard let unit = trimmed.last, let factor = units[unit], let value = Double(trimmed.dropLast()), value >= 0,
            value.isFinite
        else {
            throw ClockError("whitelist delay '\(text)': expected a number and a unit s, m, h or d (e.g. 5d, 90m, 0)")
        }
        self.seconds = value * factor
    }

    public var description: String { Self.describe(seconds: seconds) }

    /// `5 d`, `2 d 12 h`, `1 h`, `1 min 30 s`: the two largest units, for messages.
    public static func describe(seconds: Double) -> String {
        var rest = Int(seconds.rounded())
        guard rest > 0 else { return seconds > 0 ? String(format: "%.1f s", seconds) : "0 s" }
        var parts: [String] = []
        for (unit, size) in [("d", 86_400), ("h", 3600), ("min", 60), ("s", 1)] where rest >= size {
            parts.append("\(rest / size) \(unit)")
            rest %= size
            if parts.count == 2 || rest == 0 { break }
        }
        return parts.joined(separator: " ")
    }
}

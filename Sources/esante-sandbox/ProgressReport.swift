import Foundation

/// Progress of a long command for people: a bar redrawn in place on a terminal, a plain line every 10 % otherwise
/// (a CI log or a pipe keeps a readable history instead of carriage returns). Safe to call from any thread.
final class ProgressReport: @unchecked Sendable {
    private let label: String
    private let unit: String
    private let total: Int
    private let terminal: Bool
    private let lock = NSLock()
    private var lastTenth = -1
    private var finished = false

    init(_ label: String, total: Int, unit: String, terminal: Bool = isatty(STDOUT_FILENO) != 0) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.terminal = terminal
    }

    func update(_ done: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        let fraction = min(1, Double(done) / Double(total))
        if terminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\(label) [\(bar)] \(Int(fraction * 100))% \(done)/\(total) \(unit)")
        } else {
            let tenth = Int(fraction * 10)
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            write("\(label): \(tenth * 10)% (\(done)/\(total) \(unit))\n")
        }
    }

    /// Ends the bar's line on a terminal.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        if terminal { write("\n") }
    }

    /// Unbuffered: the bar shows while the work runs.
    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

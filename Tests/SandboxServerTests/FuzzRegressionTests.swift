import Foundation
import Testing

@testable import sandbox_fuzz

/// Every input kept in `Tests/Corpus/fuzz/TARGET/` (seed inputs, and any input libFuzzer once crashed on) is replayed
/// through its parser: each must come back with a value or an error.
@Suite("Fuzz regression inputs")
struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus/fuzz")

    @Test(arguments: FuzzTarget.allCases)
    func everyKeptInputIsParsedWithoutACrash(target: FuzzTarget) throws {
        let folder = Self.corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }
        #expect(!names.isEmpty, "no input kept for \(target.rawValue)")
        for name in names {
            target.run(try Data(contentsOf: folder.appendingPathComponent(name)))
        }
    }
}

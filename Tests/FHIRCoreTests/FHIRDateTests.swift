import Foundation
import Testing

@testable import FHIRCore

@Suite("FHIR dates as instant ranges")
struct FHIRDateTests {
    /// Expected ranges computed independently (Python's datetime, UTC seconds): precision sets the end, the zone the
    /// offset, impossible days and malformed texts give nil.
    static let cases: [(String, Double?, Double?)] = [
        ("2024", 1704067200.0, 1735689599.999),
        ("2024-12", 1733011200.0, 1735689599.999),
        ("2024-02", 1706745600.0, 1709251199.999),
        ("2024-02-29", 1709164800.0, 1709251199.999),
        ("2026-11-22T10:00:00+01:00", 1795338000.0, 1795338000.999),
        ("2026-11-22T10:00:00.25Z", 1795341600.25, 1795341600.2509),
        ("2026-11-22T10:00", 1795341600.0, 1795341659.999),
        ("2026-11-22T23:59:60-05:30", 1795411800.0, 1795411800.999),
        ("1969-07-20T20:17:40Z", -14182940.0, -14182939.001),
        ("2000-03-01", 951868800.0, 951955199.999),
        ("2024-03-05T10:00:00.123456789+14:00", 1709582400.1234567, 1709582400.1243567),
        ("2023-02-30", nil, nil),
        ("2023-02-29", nil, nil),
        ("2024-13", nil, nil),
        ("2024-00", nil, nil),
        ("2024-01-32", nil, nil),
        ("2024-03-05T24:00", nil, nil),
        ("2024-03-05T10:60", nil, nil),
        ("2024-03-05T10", nil, nil),
        ("2024-03-05T10:00:00.1234567890Z", nil, nil),
        ("24", nil, nil),
        ("2024-3", nil, nil),
        ("2024-03-05Z", nil, nil),
        ("2024-03-05T10:00:00+1:00", nil, nil),
        ("x2024", nil, nil),
        ("2024-03-05T10:00:61Z", nil, nil),
        // Zones FHIR does not allow (up to ±14:00).
        ("2024-03-05T10:00:00+99:99", nil, nil),
        ("2024-03-05T10:00:00+14:30", nil, nil),
        ("2024-03-05T10:00:00-10:60", nil, nil),
    ]

    @Test func rangesMatchTheirPrecisionAndZone() {
        for (text, low, high) in Self.cases {
            let range = FHIRDate.range(of: text)
            if let low, let high {
                #expect(
                    range.map { abs($0.low - low) < 1e-6 && abs($0.high - high) < 1e-6 } == true,
                    "\(text): \(String(describing: range))"
                )
            } else {
                #expect(range == nil, "\(text): \(String(describing: range))")
            }
        }
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// HTTP dates, IMF-fixdate (RFC 9110 §5.6.7, `Sun, 06 Nov 1994 08:49:37 GMT`) formatted by hand: a DateFormatter per call was a
/// tenth of a keep-alive read (`Last-Modified`), and the immediate reads write their own `Date`.
public enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func string(secondsSince1970 seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// From an ISO 8601 instant as FHIR stores them (`2026-11-22T03:05:23.303+00:00`, UTC); nil when it is not one.
    public static func string(iso instant: String) -> String? {
        let digits = Array(instant.utf8)
        func number(_ from: Int, _ count: Int) -> Int32? {
            guard digits.count >= from + count else { return nil }
            var value: Int32 = 0
            for byte in digits[from..<(from + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int32(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return string(secondsSince1970: Int(timegm(&parts)))
    }
}

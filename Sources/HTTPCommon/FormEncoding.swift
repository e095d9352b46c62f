import Foundation

/// `application/x-www-form-urlencoded` (WHATWG URL standard): the one decoder of query strings, form bodies
/// (`POST _search`, the token endpoint, the console's forms) and header values written in that form
/// (`If-None-Exist`), so that a value reads the same wherever it is sent.
public enum FormEncoding {
    /// The name–value pairs in order: `+` is a space, then percent-decoded; a pair without a name is skipped, and
    /// text that is not valid percent-encoding is kept as it came (the caller's checks then name it).
    public static func items(_ text: some StringProtocol) -> [(String, String)] {
        text.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            guard !name.isEmpty else { return nil }
            return (name, parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// One component: `+` is a space, then percent-decoded (kept as it came when the encoding is invalid).
    public static func decode(_ text: some StringProtocol) -> String {
        let spaced = String(text).replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// Characters left as they are in a component the sandbox writes into a link (FHIR search values keep their
    /// separators readable: `system|code`, `a,b`, `Type/id`).
    private static let unreserved: CharacterSet = {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:|,*/")
        return allowed
    }()

    /// One component encoded for a query string.
    public static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}

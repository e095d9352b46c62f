import Foundation

/// FHIR R4 `OperationOutcome`: how every FHIR service of the sandbox reports an error.
public struct OperationOutcome: Codable, Sendable, Hashable {
    public struct Issue: Codable, Sendable, Hashable {
        /// `fatal` | `error` | `warning` | `information`.
        public var severity: String
        /// FHIR `IssueType` code: `security`, `forbidden`, `not-found`, `invalid`, `required`, …
        public var code: String
        public var diagnostics: String?
        /// FHIRPath expressions of the elements concerned.
        public var expression: [String]?

        public init(severity: String = "error", code: String, diagnostics: String?, expression: [String]? = nil) {
            self.severity = severity
            self.code = code
            self.diagnostics = diagnostics
            self.expression = expression
        }
    }

    public var resourceType = "OperationOutcome"
    public var issue: [Issue]

    /// What `$validate` checks: the resource, or the `resource` part of a `Parameters`.
    public static func validationCandidate(_ body: JSONObject) -> JSONObject {
        guard body["resourceType"]?.string == "Parameters" else { return body }
        return body["parameter"]?.array?.first { $0["name"]?.string == "resource" }?["resource"]?.object ?? body
    }

    /// `$validate`'s answer: one issue per problem, or one `informational` issue saying there is none.
    public init(validation problems: [ProfileValidator.Issue], noIssue: String) {
        self.init(
            issue: problems.isEmpty
                ? [Issue(severity: "information", code: "informational", diagnostics: noIssue)]
                : problems.map { Issue(code: $0.code, diagnostics: $0.diagnostics, expression: [$0.expression]) }
        )
    }

    public init(issue: [Issue]) {
        self.issue = issue
    }

    public init(severity: String = "error", code: String, diagnostics: String, expression: [String]? = nil) {
        self.issue = [Issue(severity: severity, code: code, diagnostics: diagnostics, expression: expression)]
    }

    /// `application/fhir+json` body, keys sorted so bodies are byte-stable.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }

    public static let contentType = "application/fhir+json;charset=UTF-8"
}

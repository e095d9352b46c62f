import Foundation
import SOAPCore
import ZIPFoundation

/// The acceptance report of a run (rapport de recette) in four forms: a stable JSON document (schema
/// `docs/recette-report.schema.json`), JUnit XML for CI, a self-contained HTML page, and a ZIP of the raw traces with
/// one folder per test code. Every form says it is a rehearsal, not an official homologation.
public struct RecetteReport: Sendable {
    public var run: RecetteRun
    public var result: RunResult
    public var calls: [RecordedCall]
    public var sandboxVersion: String
    public var generatedAt: Date

    public static let schema = "esante-sandbox/recette-report/v1"
    public static let notice =
        "Répétition de recette produite par esante-sandbox, un bac à sable hors ligne : ce n'est pas une homologation "
        + "officielle (ANS, CNDA, GIE SESAM-Vitale, Mon espace santé). Rehearsal only, not an official homologation."

    public init(
        run: RecetteRun,
        result: RunResult,
        calls: [RecordedCall],
        sandboxVersion: String,
        generatedAt: Date = Date()
    ) {
        self.run = run
        self.result = result
        self.calls = calls
        self.sandboxVersion = sandboxVersion
        self.generatedAt = generatedAt
    }

    public enum Format: String, CaseIterable, Sendable {
        case json
        case junit
        case html
        case zip

        public var contentType: String {
            switch self {
            case .json: "application/json"
            case .junit: "application/xml"
            case .html: "text/html; charset=utf-8"
            case .zip: "application/zip"
            }
        }

        public var fileExtension: String { self == .junit ? "xml" : rawValue }
    }

    public func render(_ format: Format) throws -> Data {
        switch format {
        case .json: try json()
        case .junit: Data(junit().utf8)
        case .html: Data(html().utf8)
        case .zip: try zip()
        }
    }

    // MARK: JSON

    struct Document: Encodable {
        struct Run: Encodable {
            var id: Int64
            var startedAt: Date
            var endsAt: Date
            var closedAt: Date?
            var client: ClientSelector.Kind
            var clientValue: String
            var productName: String?
            var productVersion: String?
        }
        struct Pack: Encodable {
            var id: String
            var version: String
            var title: String
        }
        struct Call: Encodable {
            var id: Int64
            var time: Date
            var service: String?
            var method: String
            var path: String
            var query: String?
            var status: Int
            var injected: Bool
        }
        var schema: String
        var notice: String
        var generatedAt: Date
        var sandboxVersion: String
        var run: Run
        var pack: Pack
        var verdict: Verdict
        var counts: [String: Int]
        var scenarios: [ScenarioResult]
        var calls: [Call]
    }

    public func json() throws -> Data {
        let document = Document(
            schema: Self.schema,
            notice: Self.notice,
            generatedAt: generatedAt,
            sandboxVersion: sandboxVersion,
            run: .init(
                id: run.id,
                startedAt: run.startedAt,
                endsAt: run.endsAt,
                closedAt: run.closedAt,
                client: run.client.kind,
                clientValue: run.client.value,
                productName: run.productName,
                productVersion: run.productVersion
            ),
            pack: .init(id: run.pack.id, version: run.pack.version, title: run.pack.title),
            verdict: result.verdict,
            counts: Dictionary(uniqueKeysWithValues: StepStatus.allCases.map { ($0.rawValue, result.count($0)) }),
            scenarios: result.scenarios,
            calls: calls.map {
                .init(
                    id: $0.id,
                    time: $0.time,
                    service: $0.service,
                    method: $0.method,
                    path: $0.path,
                    query: $0.query,
                    status: $0.status,
                    injected: $0.reason?.hasPrefix("recette-injection") ?? false
                )
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(document)
    }

    // MARK: JUnit

    public func junit() -> String {
        let steps = result.steps
        let failures = steps.filter { $0.status == .fail }.count
        let skipped = steps.filter { [.skipped, .waiting, .manual].contains($0.status) }.count
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out +=
            "<testsuites name=\"\(x("esante-sandbox recette run \(run.id): \(run.pack.id) \(run.pack.version)"))\" tests=\"\(steps.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"\(skipped)\">\n"
        for scenario in result.scenarios {
            let scenarioFailures = scenario.steps.filter { $0.status == .fail }.count
            let scenarioSkipped = scenario.steps.filter { [.skipped, .waiting, .manual].contains($0.status) }.count
            out +=
                "  <testsuite name=\"\(x(scenario.id)) \(x(scenario.title))\" tests=\"\(scenario.steps.count)\" failures=\"\(scenarioFailures)\" errors=\"0\" skipped=\"\(scenarioSkipped)\" timestamp=\"\(Self.iso(run.startedAt))\">\n"
            out += "    <properties>\n"
            for (name, value) in [
                ("notice", Self.notice), ("pack", "\(run.pack.id) \(run.pack.version)"),
                ("client", run.client.value),
                ("product", [run.productName, run.productVersion].compactMap { $0 }.joined(separator: " ")),
                ("reference", scenario.reference ?? ""), ("verdict", result.verdict.rawValue),
            ] {
                out += "      <property name=\"\(name)\" value=\"\(x(value))\"/>\n"
            }
            out += "    </properties>\n"
            for step in scenario.steps {
                out +=
                    "    <testcase classname=\"\(x(run.pack.id)).\(x(scenario.id))\" name=\"\(x(step.id)) \(x(step.title))\">\n"
                let evidence =
                    step.evidence.isEmpty ? "" : "\nJournal: " + step.evidence.map { "#\($0)" }.joined(separator: ", ")
                switch step.status {
                case .fail:
                    out +=
                        "      <failure type=\"\(step.missing ? "missing" : "rule")\" message=\"\(x(step.message))\">\(x(step.message + evidence + (step.advice.map { "\nAdvice: \($0)" } ?? "")))</failure>\n"
                case .skipped, .waiting:
                    out += "      <skipped message=\"\(x(step.status.rawValue + ": " + step.message))\"/>\n"
                case .manual:
                    out += "      <skipped message=\"\(x("to verify by a person: " + step.message))\"/>\n"
                case .warning:
                    out += "      <system-out>\(x("warning: " + step.message + evidence))</system-out>\n"
                case .pass:
                    out += "      <system-out>\(x(step.message + evidence))</system-out>\n"
                }
                out += "    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    // MARK: HTML

    static let colors: [StepStatus: String] = [
        .pass: "#2e7d32", .fail: "#c62828", .warning: "#ef6c00", .waiting: "#1565c0", .skipped: "#757575",
        .manual: "#6a1b9a",
    ]

    /// A stacked bar of the steps by status, drawn as SVG in the page.
    public func summaryBar() -> String {
        let total = max(1, result.steps.count)
        var x0 = 0.0
        var rects = ""
        var legend = ""
        for (index, status) in StepStatus.allCases.enumerated() {
            let count = result.count(status)
            let width = 600.0 * Double(count) / Double(total)
            if count > 0 {
                rects +=
                    "<rect x=\"\(String(format: "%.1f", x0))\" y=\"0\" width=\"\(String(format: "%.1f", width))\" height=\"24\" fill=\"\(Self.colors[status]!)\"><title>\(status.rawValue): \(count)</title></rect>"
            }
            legend +=
                "<rect x=\"\(index * 100)\" y=\"34\" width=\"12\" height=\"12\" fill=\"\(Self.colors[status]!)\"/><text x=\"\(index * 100 + 16)\" y=\"45\" font-size=\"12\">\(status.rawValue) \(count)</text>"
            x0 += width
        }
        return
            "<svg id=\"recette-summary\" xmlns=\"http://www.w3.org/2000/svg\" width=\"620\" height=\"52\" role=\"img\" aria-label=\"steps by status\">\(rects)\(legend)</svg>"
    }

    public func html() -> String {
        var body = ""
        body += "<p class=\"notice\" id=\"recette-notice\">\(x(Self.notice))</p>"
        body += "<table class=\"facts\">"
        for (label, value) in [
            ("Produit", [run.productName ?? "(non renseigné)", run.productVersion ?? ""].joined(separator: " ")),
            ("Jeu de scénarios", "\(run.pack.title) — \(run.pack.id) version \(run.pack.version)"),
            ("Client", "\(run.client.kind == .dn ? "DN" : "SPKI SHA-256") \(run.client.value)"),
            (
                "Campagne",
                "n° \(run.id), du \(Self.iso(run.startedAt)) au \(Self.iso(run.closedAt ?? run.endsAt))\(run.closedAt == nil ? " (ouverte)" : "")"
            ),
            ("Verdict", result.verdict.rawValue), ("esante-sandbox", sandboxVersion),
            ("Généré le", Self.iso(generatedAt)),
        ] {
            body += "<tr><th>\(x(label))</th><td>\(x(value))</td></tr>"
        }
        body += "</table>"
        body += summaryBar()
        for scenario in result.scenarios {
            body +=
                "<section class=\"scenario\" id=\"scenario-\(x(scenario.id))\"><h2>\(x(scenario.id)) — \(x(scenario.title))</h2>"
            if let reference = scenario.reference { body += "<p class=\"ref\">\(x(reference))</p>" }
            body +=
                "<table class=\"steps\"><tr><th>Étape</th><th>Règle</th><th>Statut</th><th>Constat</th><th>Preuves</th></tr>"
            for step in scenario.steps {
                let evidence = step.evidence.map { "<a href=\"#call-\($0)\">#\($0)</a>" }.joined(separator: " ")
                body +=
                    "<tr class=\"step \(step.status.rawValue)\"><td><b>\(x(step.id))</b> \(x(step.title))</td><td>\(x(step.rule))</td><td><span class=\"badge\" style=\"background:\(Self.colors[step.status]!)\">\(step.status.rawValue)</span></td><td>\(x(step.message))\(step.advice.map { "<br><i>\(x($0))</i>" } ?? "")</td><td>\(evidence)</td></tr>"
            }
            body += "</table></section>"
        }
        body +=
            "<h2>Appels du client (\(calls.count))</h2><table class=\"calls\"><tr><th>#</th><th>Heure</th><th>Appel</th><th>Réponse</th></tr>"
        let cited = Set(result.steps.flatMap(\.evidence))
        for call in calls {
            body +=
                "<tr id=\"call-\(call.id)\"><td>\(call.id)</td><td>\(Self.iso(call.time))</td><td><code>\(x(call.method)) \(x(call.path))\(x(call.query.map { "?\($0)" } ?? ""))</code>\(call.reason?.hasPrefix("recette-injection") == true ? " <i>(réponse injectée)</i>" : "")</td><td>\(call.status)</td></tr>"
            if cited.contains(call.id) {
                body +=
                    "<tr class=\"trace\"><td></td><td colspan=\"3\"><details><summary>Trace</summary><pre>\(x(Self.traceText(call, request: true)))</pre><pre>\(x(Self.traceText(call, request: false)))</pre></details></td></tr>"
            }
        }
        body += "</table>"
        return """
            <!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Recette \(x(run.pack.id)) — campagne \(run.id)</title>\
            <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}\
            th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.notice{background:#fff3e0;border:1px solid #ef6c00;padding:8px}\
            .badge{color:#fff;padding:2px 6px;border-radius:4px;font-size:90%}pre{white-space:pre-wrap;max-height:20em;overflow:auto;background:#f6f6f6;padding:6px}\
            .ref{color:#555}</style></head><body><h1>Rapport de recette — \(x(run.pack.title))</h1>\(body)</body></html>
            """
    }

    // MARK: ZIP

    /// `report.json`, `report.html`, `junit.xml`, and per test code (scenario and step) a folder holding the raw
    /// request and response of each call its judgement rests on.
    public func zip() throws -> Data {
        let archive = try Archive(accessMode: .create)
        func add(_ path: String, _ data: Data) throws {
            try archive.addEntry(
                with: path,
                type: .file,
                uncompressedSize: Int64(data.count),
                modificationDate: generatedAt,
                compressionMethod: .deflate
            ) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        let root = "recette-\(run.id)-\(Self.safe(run.pack.id))"
        try add("\(root)/LISEZMOI.txt", Data((Self.notice + "\n").utf8))
        try add("\(root)/report.json", try json())
        try add("\(root)/report.html", Data(html().utf8))
        try add("\(root)/junit.xml", Data(junit().utf8))
        let byID = Dictionary(calls.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for scenario in result.scenarios {
            for step in scenario.steps {
                let folder = "\(root)/\(Self.safe(scenario.id))_\(Self.safe(step.id))"
                try add("\(folder)/verdict.txt", Data("\(step.status.rawValue)\n\(step.message)\n".utf8))
                for id in step.evidence {
                    guard let call = byID[id] else { continue }
                    try add("\(folder)/\(id)-request.http", Self.trace(call, request: true))
                    try add("\(folder)/\(id)-response.http", Self.trace(call, request: false))
                }
            }
        }
        guard let data = archive.data else { throw RecetteError("the ZIP archive could not be written") }
        return data
    }

    /// A call as HTTP: start line, headers, blank line, then the body's bytes as the journal kept them.
    static func trace(_ call: RecordedCall, request: Bool) -> Data {
        let headers = (request ? call.requestHeaders : call.responseHeaders).sorted { $0.key < $1.key }
            .map { "\($0.key): \($0.value)\r\n" }.joined()
        let start =
            request
            ? "\(call.method) \(call.path)\(call.query.map { "?\($0)" } ?? "") HTTP/1.1"
            : "HTTP/1.1 \(call.status)\(call.reason.map { "   (journal: \($0))" } ?? "")"
        return Data("\(start)\r\n\(headers)\r\n".utf8) + ((request ? call.requestBody : call.responseBody) ?? Data())
    }

    /// The trace as text for the page: invalid UTF-8 replaced, long bodies cut.
    static func traceText(_ call: RecordedCall, request: Bool) -> String {
        let bytes = trace(call, request: request)
        let text = String(decoding: bytes.prefix(20_000), as: UTF8.self)
        return bytes.count > 20_000 ? text + "\n… (\(bytes.count) bytes in all)" : text
    }

    static func safe(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    private func x(_ text: String) -> String { XMLText.escape(text) }
}

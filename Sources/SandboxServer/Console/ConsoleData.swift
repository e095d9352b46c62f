import Access
import FHIRCore
import Foundation
import HTTPTypes
import Hummingbird
import RORFHIR

/// The live journal, the ROR data browser (versions and diffs) and the capacity board.
struct ConsoleData: Sendable {
    let layout: ConsoleLayout
    let journal: Journal
    /// The ROR store, read for people.
    let repository: ResourceRepository
    let ror: RORInspection

    func add(to console: RouterGroup<AdminRequestContext>) {
        console.get("journal") { request, _ in try journalPage(request) }
        console.get("journal/rows") { request, _ in try journalRows(request) }
        console.get("journal/:id") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self), let entry = try journal.entry(id: id) else {
                return layout.page(
                    "Appel introuvable",
                    active: "/console/journal",
                    HTML.notice("Pas de ligne de journal avec cet identifiant.", error: true),
                    status: .notFound
                )
            }
            return journalDetail(entry)
        }
        console.get("data") { request, _ in try await dataPage(request) }
        console.get("data/:type/:id") { _, context in
            try await resourcePage(type: context.parameters.get("type") ?? "", id: context.parameters.get("id") ?? "")
        }
        console.get("capacity") { request, _ in try await capacityPage(request) }
        console.get("capacity/board") { request, _ in
            HTML.fragment(try await capacityBoard(finess: request.uri.queryParameters["finess"].map(String.init)))
        }
    }

    // MARK: Journal

    static let journalHeaders = [
        "Heure", "Env.", "Décision", "Statut", "Service", "Appel", "DN présenté", "Raison", "ms",
    ]

    static func journalCells(_ entry: JournalEntry) -> [String] {
        let target = entry.method == "TLS" ? "(poignée de main TLS)" : entry.path + (entry.query.map { "?\($0)" } ?? "")
        return [
            HTML.time(entry.time), HTML.escape(entry.environment),
            HTML.badge(entry.decision == .accepted ? "accepté" : "refusé", entry.decision == .accepted ? "ok" : "ko"),
            entry.status == 0 ? "—" : "\(entry.status)", HTML.escape(entry.service ?? "—"),
            "<a href=\"/console/journal/\(entry.id ?? 0)\"><code>\(HTML.escape(entry.method))</code> \(HTML.escape(String(target.prefix(120))))</a>",
            entry.subjectDN.map { "<code>\(HTML.escape($0))</code>" } ?? "—", HTML.escape(entry.reason ?? ""),
            String(format: "%.1f", entry.durationMs),
        ]
    }

    static func filter(_ request: Request) -> JournalFilter {
        let query = request.uri.queryParameters
        var filter = JournalFilter(limit: 100)
        if let service = query["service"], !service.isEmpty { filter.service = String(service) }
        if let decision = query["decision"].flatMap({ JournalDecision(rawValue: String($0)) }) {
            filter.decision = decision
        }
        return filter
    }

    func journalPage(_ request: Request) throws -> Response {
        let filter = Self.filter(request)
        let rows = try journal.entries(filter)
        let query = request.uri.query.map { "&" + $0 } ?? ""
        let filters =
            "<form class=\"filters\" method=\"get\">"
            + HTML.select(
                "service",
                "Service",
                options: [("", "tous")] + SandboxService.allCases.map { ($0.rawValue, $0.rawValue) },
                selected: filter.service ?? ""
            )
            + HTML.select(
                "decision",
                "Décision",
                options: [("", "toutes"), ("accepted", "acceptés"), ("refused", "refusés")],
                selected: filter.decision?.rawValue ?? ""
            )
            + "<button class=\"secondary\">Filtrer</button> <span class=\"muted\" id=\"live\">en direct</span></form>"
        // New rows arrive by polling (1 s): plain fetch, works offline and through any proxy.
        let script = """
            <script>
            (function(){
              var body = document.getElementById('journal-rows'), last = Number(body.dataset.last || 0), live = document.getElementById('live');
              function poll(){
                fetch('/console/journal/rows?after=' + last + \(Self.jsString(query)), {credentials: 'same-origin'}).then(function(r){
                  if (!r.ok) throw new Error(r.status);
                  var next = Number(r.headers.get('X-Last-Id') || last);
                  return r.text().then(function(html){
                    if (html.trim()) {
                      var empty = body.querySelector('td.muted'); if (empty) empty.parentNode.remove();
                      body.insertAdjacentHTML('afterbegin', html);
                    }
                    last = next; live.textContent = 'en direct';
                  });
                }).catch(function(){ live.textContent = 'hors ligne, nouvel essai…'; }).then(function(){ setTimeout(poll, 1000); });
              }
              setTimeout(poll, 1000);
            })();
            </script>
            """
        let table = HTML.table(
            Self.journalHeaders,
            rows.map(Self.journalCells),
            id: "journal-rows",
            bodyAttributes: " data-last=\"\(rows.first?.id ?? 0)\"",
            empty: "Aucun appel pour l'instant."
        )
        return layout.page("Journal", active: "/console/journal", filters + table + script)
    }

    static func jsString(_ text: String) -> String {
        "'"
            + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            .replacingOccurrences(of: "<", with: "\\x3c") + "'"
    }

    /// Rows newer than `after`, newest first, as `<tr>`s; `X-Last-Id` is the newest id.
    func journalRows(_ request: Request) throws -> Response {
        var filter = Self.filter(request)
        guard let after = request.uri.queryParameters["after"].flatMap({ Int64(String($0)) }) else {
            return SandboxJSON.error(.badRequest, "after must be a journal id")
        }
        filter.afterID = after
        filter.limit = 200
        let rows = try journal.entries(filter).reversed()
        let html = rows.map { "<tr class=\"new\">" + Self.journalCells($0).map { "<td>\($0)</td>" }.joined() + "</tr>" }
            .joined(separator: "\n")
        return HTML.fragment(html, headers: [HTTPField.Name("X-Last-Id")!: "\(rows.first?.id ?? after)"])
    }

    func journalDetail(_ entry: JournalEntry) -> Response {
        let summary = HTML.table(
            ["Champ", "Valeur"],
            [
                ["Heure", HTML.time(entry.time)], ["Environnement", HTML.escape(entry.environment)],
                [
                    "Décision",
                    HTML.badge(entry.decision.rawValue, entry.decision == .accepted ? "ok" : "ko") + " "
                        + HTML.escape(entry.reason ?? ""),
                ],
                [
                    "Appel",
                    "<code>\(HTML.escape(entry.method)) \(HTML.escape(entry.path + (entry.query.map { "?\($0)" } ?? "")))</code> → \(entry.status)",
                ],
                ["DN présenté", HTML.escape(entry.subjectDN ?? "—")], ["Émetteur", HTML.escape(entry.issuerDN ?? "—")],
                ["Série / SPKI", HTML.escape("\(entry.serialNumber ?? "—") / \(entry.spkiSHA256 ?? "—")")],
                ["Adresse", HTML.escape(entry.remoteAddress ?? "—")],
                ["Durée", String(format: "%.1f ms", entry.durationMs)],
            ]
        )
        func body(_ data: Data?, truncated: Bool) -> String {
            guard let data else { return "<p class=\"muted\">(vide)</p>" }
            return "<pre>\(HTML.escape(Pretty.print(data)))</pre>"
                + (truncated ? "<p class=\"muted\">(tronqué à la limite du journal)</p>" : "")
        }
        let content =
            summary
            + "<h2>Requête</h2><pre>\(HTML.escape(Pretty.print(Data((entry.requestHeaders ?? "{}").utf8))))</pre>"
            + body(entry.requestBody, truncated: entry.requestBodyTruncated)
            + "<h2>Réponse</h2><pre>\(HTML.escape(Pretty.print(Data((entry.responseHeaders ?? "{}").utf8))))</pre>"
            + body(entry.responseBody, truncated: entry.responseBodyTruncated)
            + "<p><a href=\"/console/journal\">← Journal</a></p>"
        return layout.page("Appel #\(entry.id ?? 0)", active: "/console/journal", content)
    }

    // MARK: ROR data

    func dataPage(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let type = query["type"].map(String.init) ?? ""
        let identifier = query["identifier"].map(String.init) ?? ""
        let counts = try await repository.typeCounts()
        var content =
            "<p class=\"chips\">"
            + counts.map {
                "<a class=\"chip\" href=\"/console/data?type=\(HTML.url($0.type))\">\(HTML.escape($0.type)) <b>\($0.count)</b></a>"
            }.joined() + "</p>"
        content +=
            "<form class=\"filters\" method=\"get\">"
            + HTML.select("type", "Type", options: counts.map { ($0.type, $0.type) }, selected: type)
            + HTML.field(
                "identifier",
                "Identifiant (FINESS, idNat_Struct…)",
                value: identifier,
                placeholder: "759000001"
            )
            + "<button class=\"secondary\">Chercher</button></form>"
        if !type.isEmpty {
            var rows: [StoredResource] = []
            var searchError: String?
            do {
                rows =
                    identifier.isEmpty
                    ? try await repository.recentlyUpdated(type: type, limit: 100)
                    : try await ror.resources(type: type, identifier: identifier, limit: 100)
            } catch {
                searchError = "\(error)"
            }
            if let searchError { content += HTML.notice(searchError, error: true) }
            content +=
                HTML.table(
                    ["id", "Version", "Mis à jour", "Nom / identifiants"],
                    rows.map { stored in
                        let object = RORInspection.object(stored.json)
                        let identifiers = RORInspection.identifiers(object).prefix(3)
                        return [
                            "<a href=\"/console/data/\(HTML.url(type))/\(HTML.url(stored.id))\">\(HTML.escape(stored.id))</a>",
                            "\(stored.version)",
                            HTML.escape(stored.lastUpdated),
                            HTML.escape(
                                ((object["name"] as? String).map { [$0] } ?? []).joined()
                                    + (identifiers.isEmpty ? "" : " · " + identifiers.joined(separator: ", "))
                            ),
                        ]
                    },
                    empty: "Aucune ressource."
                ) + "<p class=\"muted\">100 au plus, les plus récemment modifiées d'abord.</p>"
        }
        return layout.page("Données ROR", active: "/console/data", content)
    }

    func resourcePage(type: String, id: String) async throws -> Response {
        guard let versions = try await repository.versions(type: type, id: id, limit: 20), let current = versions.first
        else {
            return layout.page(
                "\(type)/\(id)",
                active: "/console/data",
                HTML.notice("Ressource introuvable.", error: true),
                status: .notFound
            )
        }
        var content =
            "<p>Version \(current.version), mise à jour \(HTML.escape(current.lastUpdated)). "
            + "<a href=\"/console/data?type=\(HTML.url(type))\">← \(HTML.escape(type))</a></p>"
        content += "<pre id=\"resource-json\">\(HTML.escape(Pretty.print(current.json)))</pre>"
        if versions.count == 1 {
            content +=
                "<p class=\"muted\">Pas de version précédente conservée (les écritures gardent la version qu'elles remplacent).</p>"
        }
        for (newer, older) in zip(versions, versions.dropFirst()) {
            content +=
                "<h2>Version \(older.version) → \(newer.version)</h2>"
                + "<pre class=\"diff\">\(LineDiff.html(old: Pretty.print(older.json), new: Pretty.print(newer.json)))</pre>"
        }
        return layout.page("\(type)/\(id)", active: "/console/data", content)
    }

    // MARK: Capacity board

    func capacityPage(_ request: Request) async throws -> Response {
        let finess = request.uri.queryParameters["finess"].map(String.init) ?? ""
        let board = try await capacityBoard(finess: finess)
        let content = """
            <form class="filters" method="get">\(HTML.field("finess", "FINESS de l'établissement", value: finess, placeholder: "759000001"))\
            <button class="secondary">Afficher</button> <span class="muted">Mise à jour toutes les 2 s ; les unités modifiées récemment d'abord.</span></form>
            <div id="board">\(board)</div>
            <script>
            (function(){
              var board = document.getElementById('board');
              function poll(){
                fetch('/console/capacity/board?finess=' + encodeURIComponent(\(Self.jsString(finess))), {credentials: 'same-origin'})
                  .then(function(r){ return r.ok ? r.text() : null; })
                  .then(function(html){ if (html !== null && html !== board.innerHTML) board.innerHTML = html; })
                  .catch(function(){}).then(function(){ setTimeout(poll, 2000); });
              }
              setTimeout(poll, 2000);
            })();
            </script>
            """
        return layout.page("Tableau des capacités", active: "/console/capacity", content)
    }

    static let statusLabels = [
        "01": "Installés", "02": "Disponibles", "03": "Occupés", "04": "Réservés", "05": "Fermés",
        "06": "Supplémentaires", "07": "Opérationnels", "08": "Installés constatés", "09": "Autorisés",
    ]
    static let temporalityLabels = ["01": "", "02": "à 1 h", "03": "à 24 h", "04": "à 48 h", "05": "à 7 j"]
    static let genderLabels = ["01": "femmes", "02": "hommes", "03": "indifférencié"]

    /// The board: Locations with capacity indicators (of one establishment, or the most recently updated 60).
    func capacityBoard(finess: String?) async throws -> String {
        guard let board = try await ror.capacityBoard(finess: finess) else {
            return HTML.notice("Aucun établissement avec l'identifiant \(finess ?? "").", error: true)
        }
        let cells = board.map { location -> [String] in
            let chips = location.indicators.map { indicator in
                "<span class=\"chip s\(indicator.status ?? "?")\">\(HTML.escape(Self.label(indicator))) <b>\(indicator.count)</b></span>"
            }.joined()
            return [
                HTML.escape(location.organizationLabel ?? location.organizationID ?? ""),
                "<a href=\"/console/data/Location/\(HTML.url(location.stored.id))\">\(HTML.escape(location.name ?? location.stored.id))</a><br><small class=\"muted\">\(HTML.escape(location.identifier ?? ""))</small>",
                "<div class=\"chips\">\(chips.isEmpty ? "<span class=\"muted\">aucun indicateur</span>" : chips)</div>",
                "v\(location.stored.version)<br><small>\(HTML.escape(location.stored.lastUpdated))</small>",
            ]
        }
        return HTML.table(
            ["Établissement", "Unité (Location)", "Indicateurs", "Version"],
            cells,
            id: "capacity-rows",
            empty: "Aucune capacité."
        )
    }

    /// An indicator as the board labels it ("Disponibles femmes à 24 h").
    static func label(_ indicator: RORInspection.CapacityIndicator) -> String {
        let status = indicator.status ?? "?"
        return [
            statusLabels[status] ?? "statut \(status)", indicator.gender.flatMap { genderLabels[$0] } ?? "",
            indicator.temporality.flatMap { temporalityLabels[$0] } ?? "",
            indicator.type == "02" ? "(places)" : "",
        ].filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// Bodies as people read them: JSON indented with sorted keys, XML one element per line, anything else as text.
enum Pretty {
    static func print(_ data: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            )
        {
            return String(decoding: pretty, as: UTF8.self)
        }
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("<") else { return text }
        return indentXML(trimmed)
    }

    /// A textual indenter (no parser: journal bodies may be hostile XML, and this never resolves anything).
    static func indentXML(_ text: String) -> String {
        var lines: [String] = []
        var depth = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.hasPrefix("<") {
                guard let end = rest.firstIndex(of: ">") else {
                    lines.append(String(repeating: "  ", count: depth) + rest)
                    break
                }
                let tag = rest[...end]
                rest = rest[rest.index(after: end)...]
                if tag.hasPrefix("</") { depth = max(0, depth - 1) }
                // Keep `<a>text</a>` on one line.
                if !tag.hasPrefix("</"), !tag.hasSuffix("/>"), !tag.hasPrefix("<?"), !tag.hasPrefix("<!"),
                    let close = rest.firstIndex(of: "<"), rest[close...].hasPrefix("</"),
                    let closeEnd = rest[close...].firstIndex(of: ">")
                {
                    lines.append(String(repeating: "  ", count: depth) + tag + rest[..<close] + rest[close...closeEnd])
                    rest = rest[rest.index(after: closeEnd)...]
                    continue
                }
                lines.append(String(repeating: "  ", count: depth) + tag)
                if !tag.hasPrefix("</"), !tag.hasSuffix("/>"), !tag.hasPrefix("<?"), !tag.hasPrefix("<!") { depth += 1 }
            } else {
                let end = rest.firstIndex(of: "<") ?? rest.endIndex
                let content = rest[..<end].trimmingCharacters(in: .whitespacesAndNewlines)
                if !content.isEmpty { lines.append(String(repeating: "  ", count: depth) + content) }
                rest = rest[end...]
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A line diff (longest common subsequence) rendered as HTML: removed lines struck, added lines highlighted, and
/// unchanged lines kept only near a change.
enum LineDiff {
    enum Line: Equatable {
        case same(String)
        case added(String)
        case removed(String)
    }

    static func lines(old: [String], new: [String]) -> [Line] {
        // Trim the common head and tail so the table covers only the changed middle.
        var head = 0
        while head < old.count, head < new.count, old[head] == new[head] { head += 1 }
        var tail = 0
        while tail < old.count - head, tail < new.count - head, old[old.count - 1 - tail] == new[new.count - 1 - tail] {
            tail += 1
        }
        let a = Array(old[head..<(old.count - tail)])
        let b = Array(new[head..<(new.count - tail)])
        var result = old[..<head].map { Line.same($0) }
        if a.count * b.count > 4_000_000 {
            result += a.map { .removed($0) } + b.map { .added($0) }
        } else {
            var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
            for i in stride(from: a.count - 1, through: 0, by: -1) {
                for j in stride(from: b.count - 1, through: 0, by: -1) {
                    table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
            var i = 0
            var j = 0
            while i < a.count || j < b.count {
                if i < a.count, j < b.count, a[i] == b[j] {
                    result.append(.same(a[i]))
                    i += 1
                    j += 1
                } else if j < b.count, i == a.count || table[i][j + 1] >= table[i + 1][j] {
                    result.append(.added(b[j]))
                    j += 1
                } else {
                    result.append(.removed(a[i]))
                    i += 1
                }
            }
        }
        return result + old[(old.count - tail)...].map { Line.same($0) }
    }

    static func html(old: String, new: String, context: Int = 3) -> String {
        let diff = lines(old: old.components(separatedBy: "\n"), new: new.components(separatedBy: "\n"))
        let changed = diff.indices.filter { if case .same = diff[$0] { return false } else { return true } }
        guard !changed.isEmpty else { return "<span class=\"muted\">(identiques)</span>" }
        let shown = Set(changed.flatMap { ($0 - context)...($0 + context) })
        var out: [String] = []
        var lastShown = -1
        for index in diff.indices where shown.contains(index) {
            if lastShown >= 0, index > lastShown + 1 { out.append("<span class=\"muted\">…</span>") }
            lastShown = index
            switch diff[index] {
            case .same(let line): out.append("  " + HTML.escape(line))
            case .added(let line): out.append("<span class=\"add\">+ \(HTML.escape(line))</span>")
            case .removed(let line): out.append("<span class=\"del\">- \(HTML.escape(line))</span>")
            }
        }
        return out.joined(separator: "\n")
    }
}

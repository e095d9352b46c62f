import Foundation
import Hummingbird
import Recette

/// The console's recette page: open a run for a client (the "Démarrer" button), the runs with their verdict, and a
/// run's steps live (the page reloads itself while the run is open), with its reports.
struct ConsoleRecette: Sendable {
    let layout: ConsoleLayout
    let runs: RecetteRuns
    let injector: RecetteInjector
    /// The demo clients' DNs, offered in the form.
    let demoClients: [(name: String, subjectDN: String)]

    func add(to console: RouterGroup<AdminRequestContext>) {
        console.get("recette") { _, _ in try page() }
        console.post("recette") { request, _ in
            let form = try await FormData.read(request)
            do {
                let minutesText = form["minutes"].flatMap { $0.isEmpty ? nil : $0 } ?? "60"
                guard let minutes = Double(minutesText) else {
                    throw RecetteError("minutes: '\(minutesText)' is not a number of minutes")
                }
                let run = try runs.start(
                    pack: form["pack"] ?? "",
                    client: form["client"] ?? "",
                    minutes: minutes,
                    productName: form["productName"],
                    productVersion: form["productVersion"]
                )
                try injector.refresh(from: runs)
                return HTML.redirect("/console/recette/\(run.id)")
            } catch let error as RecetteError {
                return try page(form: form, error: error.description)
            }
        }
        console.get("recette/:id") { _, context in try runPage(context.parameters.get("id", as: Int64.self) ?? 0) }
        console.post("recette/:id/close") { _, context in
            let id = context.parameters.get("id", as: Int64.self) ?? 0
            // No such run: its page says so (404), rather than a redirect as if it had been closed.
            guard try runs.close(id) != nil else { return try runPage(id) }
            try injector.refresh(from: runs)
            return HTML.redirect("/console/recette/\(id)")
        }
    }

    static let statusKinds: [StepStatus: String] = [
        .pass: "ok", .fail: "ko", .warning: "warn", .waiting: "", .skipped: "", .manual: "warn",
    ]
    static let verdictKinds: [Verdict: String] = [.passed: "ok", .failed: "ko", .incomplete: "warn", .running: ""]

    func page(form: FormData? = nil, error: String? = nil) throws -> Response {
        let packs = runs.packs.packs.map { ($0.id, "\($0.title) (\($0.id) \($0.version))") }
        let clients = demoClients.map {
            "<option value=\"\(HTML.escape($0.subjectDN))\">\(HTML.escape($0.name))</option>"
        }
        let startForm = """
            <form method="post" action="/console/recette" id="recette-start" class="card">\
            \(HTML.select("pack", "Jeu de scénarios", options: packs, selected: form?["pack"]))\
            \(HTML.field("client", "Client (DN du certificat, ou SHA-256 de sa clé publique)", value: form?["client"] ?? "", error: error, placeholder: "CN=…,OU=…,O=…,C=FR", required: true, help: "Les appels de ce certificat seront jugés ; les réponses injectées ne vont qu'à lui."))\
            <datalist id="demo-clients">\(clients.joined())</datalist>\
            \(HTML.field("productName", "Produit", value: form?["productName"] ?? ""))\
            \(HTML.field("productVersion", "Version", value: form?["productVersion"] ?? ""))\
            \(HTML.field("minutes", "Durée (minutes)", value: form?["minutes"] ?? "60", type: "number"))\
            <button>Démarrer la campagne</button></form>
            """.replacingOccurrences(of: "name=\"client\"", with: "name=\"client\" list=\"demo-clients\"")
        let rows = try runs.runs().map { run -> [String] in
            let verdict = try runs.status(run.id)?.1.verdict ?? .running
            return [
                "<a href=\"/console/recette/\(run.id)\">\(run.id)</a>",
                HTML.escape("\(run.pack.id) \(run.pack.version)"),
                "<code>\(HTML.escape(run.client.value))</code>", HTML.time(run.startedAt),
                HTML.badge(verdict.rawValue, Self.verdictKinds[verdict] ?? ""),
            ]
        }
        let content =
            "<p>Une campagne juge les appels d'un client (reconnu à son certificat) selon un jeu de scénarios : "
            + "c'est une répétition de recette, pas une homologation.</p>" + startForm
            + HTML.table(
                ["Campagne", "Jeu", "Client", "Début", "Verdict"],
                rows,
                id: "recette-runs",
                empty: "Aucune campagne."
            )
        return layout.page("Recette", active: "/console/recette", content, status: error == nil ? .ok : .badRequest)
    }

    func runPage(_ id: Int64) throws -> Response {
        guard let (run, result, calls) = try runs.status(id) else {
            return layout.page(
                "Campagne introuvable",
                active: "/console/recette",
                HTML.notice("Aucune campagne \(id).", error: true),
                status: .notFound
            )
        }
        let report = RecetteReport(run: run, result: result, calls: calls, sandboxVersion: Sandbox.version)
        var content = """
            <p>\(HTML.badge(result.verdict.rawValue, Self.verdictKinds[result.verdict] ?? "")) \
            \(HTML.escape(run.pack.title)) — <code>\(HTML.escape(run.pack.id)) \(HTML.escape(run.pack.version))</code>, \
            client <code>\(HTML.escape(run.client.value))</code>, \(calls.count) appels, \
            du \(HTML.time(run.startedAt)) au \(HTML.time(run.closedAt ?? run.endsAt))\(run.closedAt == nil ? " (ouverte : la page se met à jour)" : "").</p>
            \(report.summaryBar())
            <p>Rapports : <a href="/admin/recette/runs/\(id)/report?format=html" id="recette-report-html">HTML</a> · \
            <a href="/admin/recette/runs/\(id)/report?format=junit">JUnit</a> · \
            <a href="/admin/recette/runs/\(id)/report?format=json">JSON</a> · \
            <a href="/admin/recette/runs/\(id)/report?format=zip">ZIP des traces</a></p>
            """
        if run.closedAt == nil {
            content += HTML.button("/console/recette/\(id)/close", "Clore la campagne")
        }
        for scenario in result.scenarios {
            content += "<h2>\(HTML.escape(scenario.id)) — \(HTML.escape(scenario.title))</h2>"
            let rows = scenario.steps.map { step in
                [
                    "<b>\(HTML.escape(step.id))</b> \(HTML.escape(step.title))", HTML.escape(step.rule),
                    HTML.badge(step.status.rawValue, Self.statusKinds[step.status] ?? ""),
                    HTML.escape(step.message) + (step.advice.map { "<br><small>\(HTML.escape($0))</small>" } ?? ""),
                    step.evidence.map { "<a href=\"/console/journal/\($0)\">#\($0)</a>" }.joined(separator: " "),
                ]
            }
            content += HTML.table(["Étape", "Règle", "Statut", "Constat", "Appels"], rows)
        }
        return layout.page(
            "Campagne \(id)",
            active: "/console/recette",
            content,
            refreshSeconds: run.closedAt == nil ? 3 : nil
        )
    }
}

import FHIRCore
import Foundation
import Hummingbird
import MonEspaceSante

/// The console's Mon espace santé page: services, pairings (consent, tokens, last call), patients with their
/// MSSanté address, and per patient the measures pushed, plotted over time per code.
struct ConsoleMES: Sendable {
    let layout: ConsoleLayout
    let mes: MESService

    func add(to console: RouterGroup<AdminRequestContext>) {
        console.get("mes") { request, _ in try page(notice: request.uri.queryParameters["notice"].map(String.init)) }
        console.post("mes/pairings/:id/consent") { request, context in
            let form = try await FormData.read(request)
            guard let id = context.parameters.get("id", as: Int64.self), let consent = form["consent"] else {
                return try page(notice: "consentement : demande invalide", status: .badRequest)
            }
            do {
                try mes.directory.setConsent(pairingID: id, consent: consent == "true")
            } catch let error as MESError {
                return try page(notice: error.description, status: .notFound)
            }
            return HTML.redirect("/console/mes#pairing-\(id)")
        }
        console.get("mes/patients/:ins") { _, context in try await patientPage(ins: context.parameters.get("ins") ?? "")
        }
        console.get("mes/callback") { request, _ in callback(request) }
    }

    func page(notice: String? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        let services = try mes.directory.services()
        let patients = try mes.directory.patients()
        let names = Dictionary(
            patients.map { ($0.ins, "\($0.birthName) \($0.firstNames)") },
            uniquingKeysWith: { first, _ in first }
        )
        var content = notice.map { HTML.notice($0, error: status != .ok) } ?? ""
        content += "<h2>Services référencés</h2>"
        content += HTML.table(
            ["Service", "client_id", "DN du certificat", "OID d'appariement", "Appariement"],
            services.map { service in
                let redirect =
                    service.redirectURIs.first { $0.contains("/console/mes/callback") } ?? service.redirectURIs[0]
                let link =
                    MESService.authorizePath + "?response_type=code&client_id=\(HTML.url(service.clientId))"
                    + "&redirect_uri=\(HTML.url(redirect))&scope=openid%20mesures&state=console"
                return [
                    HTML.escape(service.name), "<code>\(HTML.escape(service.clientId))</code>",
                    "<code>\(HTML.escape(service.subjectDN))</code>", "<code>\(HTML.escape(service.pairingOID))</code>",
                    "<a class=\"pair\" href=\"\(HTML.escape(link))\">Apparier un patient →</a>",
                ]
            },
            id: "mes-services",
            empty: "Aucun service : POST /admin/mes/services."
        )
        content += "<h2>Appariements</h2>"
        content += HTML.table(
            ["#", "Patient", "Service", "idPe", "État", "Consentement", "Jetons émis", "Dernier appel"],
            try mes.directory.pairings().map { pairing in
                let toggle = HTML.button(
                    "/console/mes/pairings/\(pairing.id)/consent",
                    pairing.consent ? "Retirer le consentement" : "Redonner le consentement",
                    inputs: "<input type=\"hidden\" name=\"consent\" value=\"\(!pairing.consent)\">",
                    kind: pairing.consent ? "danger" : "secondary"
                )
                return [
                    "<a id=\"pairing-\(pairing.id)\"></a>#\(pairing.id)",
                    "<a href=\"/console/mes/patients/\(HTML.url(pairing.patientINS))\">\(HTML.escape(names[pairing.patientINS] ?? pairing.patientINS))</a>",
                    "<code>\(HTML.escape(pairing.clientId))</code>", "<code>\(HTML.escape(pairing.idPe))</code>",
                    HTML.badge(pairing.state == .active ? "actif" : "révoqué", pairing.state == .active ? "ok" : "ko"),
                    HTML.badge(pairing.consent ? "donné" : "retiré", pairing.consent ? "ok" : "ko") + " " + toggle,
                    "\(pairing.tokensIssued)", HTML.escape(pairing.lastCallAt ?? "—"),
                ]
            },
            id: "mes-pairings",
            empty: "Aucun appariement."
        )
        content += "<h2>Patients</h2>"
        content += HTML.table(
            ["INS", "Nom", "Naissance", "Messagerie MSSanté", "Mesures"],
            patients.map { patient in
                [
                    "<code>\(HTML.escape(patient.ins))</code>",
                    HTML.escape("\(patient.birthName) \(patient.firstNames)"),
                    HTML.escape(patient.birthDate), "<code>\(HTML.escape(patient.messagingAddress))</code>",
                    "<a href=\"/console/mes/patients/\(HTML.url(patient.ins))\">Voir les mesures →</a>",
                ]
            },
            id: "mes-patients",
            empty: "Aucun patient."
        )
        content +=
            "<p class=\"muted\">Les appels des services sont au <a href=\"/console/journal?service=mes\">journal</a>.</p>"
        return layout.page("Mon espace santé", active: "/console/mes", content, status: status)
    }

    /// One measure as read back from the store.
    struct Point {
        var date: Date
        var values: [Double]
        var unit: String
        var service: String
        var id: String
    }

    func patientPage(ins: String) async throws -> Response {
        guard let patient = try mes.directory.patient(ins: ins) else {
            return layout.page(
                "Patient inconnu",
                active: "/console/mes",
                HTML.notice("Aucun patient avec cet INS.", error: true),
                status: .notFound
            )
        }
        let services = Dictionary(
            try mes.directory.services().map { ($0.clientId, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        var series: [String: [Point]] = [:]
        for pairing in try mes.directory.pairings(ins: ins) {
            guard let service = services[pairing.clientId] else { continue }
            for stored in try await mes.measures(of: pairing, service: service) {
                guard case .object(let object) = try JSON(parsing: stored.json),
                    let code = object["code"]?["coding"]?.array?.first?["code"]?.string,
                    let date = object["effectiveDateTime"]?.string.flatMap(Self.date)
                else { continue }
                let quantities = object["component"]?.array?.map { $0["valueQuantity"] } ?? [object["valueQuantity"]]
                let values = quantities.compactMap { $0?["value"]?.number }
                guard !values.isEmpty else { continue }
                series[code, default: []].append(
                    Point(
                        date: date,
                        values: values,
                        unit: quantities.first??["code"]?.string ?? "",
                        service: service.name,
                        id: stored.id
                    )
                )
            }
        }
        var content =
            "<p><b>\(HTML.escape(patient.birthName)) \(HTML.escape(patient.firstNames))</b>, né(e) le \(HTML.escape(patient.birthDate)) · "
            + "INS <code>\(HTML.escape(patient.ins))</code> · messagerie <code>\(HTML.escape(patient.messagingAddress))</code> · "
            + "<a href=\"/console/mes\">← Mon espace santé</a></p>"
        if series.isEmpty { content += HTML.notice("Aucune mesure déposée pour ce patient.") }
        for code in series.keys.sorted() {
            let points = series[code]!.sorted { $0.date < $1.date }
            let label = mes.rules.label(code: code)
            let components = mes.rules.measure(system: nil, code: code)?.components?.map(\.label) ?? [label]
            content +=
                "<h2>\(HTML.escape(label)) <small class=\"muted\">(\(HTML.escape(code)), \(HTML.escape(points.last?.unit ?? "")))</small></h2>"
            content += MeasureChart.svg(
                id: "chart-\(code)",
                series: components.indices.map { index in
                    (
                        components[index],
                        points.compactMap { point in
                            index < point.values.count ? (point.date, point.values[index]) : nil
                        }
                    )
                },
                unit: points.last?.unit ?? ""
            )
            content += HTML.table(
                ["Date", "Valeur", "Service", "Ressource"],
                points.reversed().prefix(20).map { point in
                    [
                        HTML.time(point.date),
                        HTML.escape(point.values.map { Self.format($0) }.joined(separator: " / ") + " " + point.unit),
                        HTML.escape(point.service), "<code>Observation/\(HTML.escape(point.id))</code>",
                    ]
                }
            )
        }
        content +=
            "<p class=\"muted\">Les dépôts bruts (requête et réponse) sont au <a href=\"/console/journal?service=mes\">journal</a>.</p>"
        return layout.page("Mesures de \(patient.birthName) \(patient.firstNames)", active: "/console/mes", content)
    }

    /// The page the demo service's redirect URI points at: what a service would receive.
    func callback(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        let content: String
        if let code = query["code"] {
            content =
                HTML.notice("Appariement accordé : le service reçoit ce code et l'échange sur /mes/oauth/token (mTLS).")
                + "<p>code : <code id=\"code\">\(HTML.escape(String(code)))</code></p><p>state : <code>\(HTML.escape(query["state"].map(String.init) ?? ""))</code></p>"
        } else {
            content = HTML.notice(
                "Appariement refusé : \(query["error"].map(String.init) ?? "?") — \(query["error_description"].map(String.init) ?? "")",
                error: true
            )
        }
        return layout.page(
            "Retour vers le service",
            active: "/console/mes",
            content + "<p><a href=\"/console/mes\">← Mon espace santé</a></p>"
        )
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(format: "%.1f", value)
    }
}

/// A line chart of measures over time, rendered by the server as SVG (no script): one line per series, a point per
/// measure with its value in a tooltip, the value range on the left and the date range below.
enum MeasureChart {
    static let colors = ["#0a6e4f", "#b42318", "#1f6feb", "#9a6700"]

    static func svg(id: String, series: [(label: String, points: [(Date, Double)])], unit: String) -> String {
        let all = series.flatMap(\.points)
        guard let first = all.map(\.0).min(), let last = all.map(\.0).max(), let low = all.map(\.1).min(),
            let high = all.map(\.1).max()
        else { return "" }
        let (width, height, left, right, top, bottom) = (720.0, 240.0, 64.0, 16.0, 16.0, 36.0)
        let span = max(last.timeIntervalSince(first), 1)
        let padding = max((high - low) * 0.1, abs(high) * 0.02, 0.5)
        let (minimum, maximum) = (low - padding, high + padding)
        func x(_ date: Date) -> Double { left + (width - left - right) * date.timeIntervalSince(first) / span }
        func y(_ value: Double) -> Double {
            top + (height - top - bottom) * (1 - (value - minimum) / (maximum - minimum))
        }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }
        let day = DateFormatter()
        day.dateFormat = "dd/MM HH:mm"
        day.timeZone = TimeZone(identifier: "Europe/Paris")
        var parts: [String] = [
            "<svg id=\"\(HTML.escape(id))\" class=\"chart\" role=\"img\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" "
                + "style=\"max-width:\(Int(width))px\" xmlns=\"http://www.w3.org/2000/svg\">",
            "<title>\(HTML.escape(series.map(\.label).joined(separator: ", "))) (\(HTML.escape(unit)))</title>",
            "<rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(width - left - right))\" height=\"\(number(height - top - bottom))\" fill=\"#f6f8fa\" stroke=\"#d0d7de\"/>",
        ]
        for fraction in [0.0, 0.5, 1.0] {
            let value = minimum + (maximum - minimum) * fraction
            parts.append(
                "<line x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(y(value)))\" y2=\"\(number(y(value)))\" stroke=\"#d0d7de\" stroke-dasharray=\"3 3\"/>"
                    + "<text x=\"\(number(left - 6))\" y=\"\(number(y(value) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#656d76\">\(ConsoleMES.format(value.rounded(toPlaces: 1)))</text>"
            )
        }
        parts.append(
            "<text x=\"\(number(left))\" y=\"\(number(height - 12))\" font-size=\"11\" fill=\"#656d76\">\(HTML.escape(day.string(from: first)))</text>"
                + "<text x=\"\(number(width - right))\" y=\"\(number(height - 12))\" text-anchor=\"end\" font-size=\"11\" fill=\"#656d76\">\(HTML.escape(day.string(from: last)))</text>"
        )
        for (index, line) in series.enumerated() {
            let color = colors[index % colors.count]
            let points = line.points.sorted { $0.0 < $1.0 }
            parts.append(
                "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.map { "\(number(x($0.0))),\(number(y($0.1)))" }.joined(separator: " "))\"/>"
            )
            for point in points {
                parts.append(
                    "<circle class=\"point\" cx=\"\(number(x(point.0)))\" cy=\"\(number(y(point.1)))\" r=\"3.5\" fill=\"\(color)\"><title>\(HTML.escape(line.label)) \(ConsoleMES.format(point.1)) \(HTML.escape(unit)) — \(HTML.escape(day.string(from: point.0)))</title></circle>"
                )
            }
            parts.append(
                "<text x=\"\(number(left + 8 + Double(index) * 130))\" y=\"\(number(top + 14))\" font-size=\"12\" fill=\"\(color)\">● \(HTML.escape(line.label))</text>"
            )
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}

import Access
import Foundation
import Hummingbird
import RORFHIR
import TestPKI

/// The web console on the admin port (`/console`): server-rendered pages over the same objects as the admin API —
/// dashboard, onboarding and whitelists, live journal, ROR data with versions, capacity board, certificate
/// workshop, faults. Forms POST and answer 303 (success) or the page again with the error next to its field.
enum Console {
    static func add(
        to router: Router<AdminRequestContext>,
        dashboard: ConsoleDashboard,
        access: ConsoleAccess,
        data: ConsoleData,
        mes: ConsoleMES,
        dmp: ConsoleDMP,
        recette: ConsoleRecette
    ) {
        let console = router.group("console")
        router.get("/") { _, _ in HTML.redirect("/console") }
        console.get { _, _ in try await dashboard.page() }
        access.add(to: console)
        data.add(to: console)
        mes.add(to: console)
        dmp.add(to: console)
        recette.add(to: console)
    }
}

/// The frame of every console page, whose header shows the sandbox clock.
struct ConsoleLayout: Sendable {
    let clock: SandboxClock

    /// The clock as the header shows it.
    func clockLabel() -> String {
        let view = clock.view
        let formatter = ISO8601DateFormatter()
        return
            "Horloge du bac à sable : \(formatter.string(from: view.now).replacingOccurrences(of: "T", with: " ")) — \(view.speed > 1 ? view.label : "temps réel")"
    }

    func page(
        _ title: String,
        active: String,
        _ content: String,
        status: HTTPResponse.Status = .ok,
        refreshSeconds: Int? = nil
    ) -> Response {
        HTML.page(title, active: active, clock: clockLabel(), content, status: status, refreshSeconds: refreshSeconds)
    }
}

/// The dashboard: calls of the last minutes, waiting requests, whitelist size, faults, listeners and services.
struct ConsoleDashboard: Sendable {
    let layout: ConsoleLayout
    /// Where the sandbox listens, once it does.
    let ready: @Sendable () async -> ReadyInfo
    let journal: Journal
    let onboarding: Onboarding
    let whitelist: Whitelist
    let faults: FaultInjector

    func page() async throws -> Response {
        let info = await ready()
        let now = Date()
        let recent = try journal.counts(since: now.addingTimeInterval(-5 * 60))
        let hour = try journal.counts(since: now.addingTimeInterval(-3600))
        let requests = try onboarding.list()
        let waiting = Dictionary(
            grouping: requests.filter { !$0.state.isFinal && $0.state != .whitelisted },
            by: \.state
        )
        let cards = [
            ("Appels acceptés (5 min)", "\(recent.accepted)", "\(hour.accepted) sur l'heure"),
            ("Appels refusés (5 min)", "\(recent.refused)", "\(hour.refused) sur l'heure"),
            (
                "Demandes en attente", "\(waiting.values.map(\.count).reduce(0, +))",
                OnboardingState.allCases.compactMap { state in waiting[state].map { "\($0.count) \(state.rawValue)" } }
                    .joined(separator: ", ")
            ),
            ("Entrées de listes blanches", "\(try whitelist.entries().count)", "tous environnements confondus"),
            ("Pannes injectées", "\(faults.rules.count)", faults.rules.isEmpty ? "aucune" : "voir Pannes"),
        ].map {
            "<div class=\"card\"><span class=\"muted\">\(HTML.escape($0.0))</span><b>\(HTML.escape($0.1))</b><small class=\"muted\">\(HTML.escape($0.2))</small></div>"
        }
        let listeners =
            info.environments.map { environment in
                [
                    "<b>\(HTML.escape(environment.name))</b>", "<code>\(HTML.escape(environment.tls))</code>",
                    "<code>\(HTML.escape(environment.caCertificateFile))</code>",
                ]
            } + [
                [
                    "<b>admin</b>", "<code>\(HTML.escape(info.admin))</code>",
                    "API : <a href=\"/admin/openapi.json\">/admin/openapi.json</a>",
                ]
            ]
        let services = [
            ("ROR FHIR (consommation)", SandboxService.Path.rorConsumer),
            ("ROR capacités (alimentation)", SandboxService.Path.rorCapacityFeed + "/Location"),
            ("Jeton ROR (Keycloak)", RORTokenService.path), ("ROR CSD MEV2.4", SandboxService.Path.rorCSD + "?wsdl"),
            ("INSi", SandboxService.Path.insi + "?wsdl"),
            ("Mon espace santé (mesures)", SandboxService.Path.mes + "/fhir"),
        ].map { ["\(HTML.escape($0.0))", "<code>\(HTML.escape(info.tls + $0.1))</code>"] }
        var content = "<div class=\"cards\">\(cards.joined())</div>"
        content += "<h2>Écoutes</h2>" + HTML.table(["Environnement", "URL", "CA à faire confiance"], listeners)
        content += "<h2>Services</h2>" + HTML.table(["Service", "URL"], services)
        let latest = try journal.entries(JournalFilter(limit: 8))
        content +=
            "<h2>Derniers appels</h2>" + HTML.table(ConsoleData.journalHeaders, latest.map(ConsoleData.journalCells))
            + "<p><a href=\"/console/journal\">Journal en direct →</a></p>"
        return layout.page("Tableau de bord", active: "/console", content)
    }
}

/// Onboarding, whitelists, certificate workshop, faults.
struct ConsoleAccess: Sendable {
    let layout: ConsoleLayout
    let onboarding: Onboarding
    let whitelist: Whitelist
    let clock: SandboxClock
    let faults: FaultInjector
    let faultAudit: FaultAudit
    let workshop: CertificateWorkshop

    func add(to console: RouterGroup<AdminRequestContext>) {
        console.get("onboarding") { request, _ in
            onboardingPage(state: request.uri.queryParameters["state"].map(String.init))
        }
        console.post("onboarding") { request, _ in
            let form = try await FormData.read(request)
            do {
                let submission = try Self.submission(from: form)
                let created = try onboarding.submit(submission, actor: form["actor"] ?? "console")
                return HTML.redirect("/console/onboarding#request-\(created.id)")
            } catch let error as OnboardingError {
                return onboardingPage(form: form, formError: error.description, status: .badRequest)
            }
        }
        console.post("onboarding/:id/:action") { request, context in
            let form = try await FormData.read(request)
            guard let id = context.parameters.get("id", as: Int64.self), let action = context.parameters.get("action")
            else {
                return onboardingPage(notice: "identifiant de demande invalide", status: .badRequest)
            }
            do {
                // The API's action table, fed from the form (labels of the console's own actors kept).
                var profile: Int?
                if let text = form["accessProfile"] {
                    guard let value = Int(text) else {
                        throw OnboardingError(.invalid, "accessProfile: '\(text)' is not a number")
                    }
                    profile = value
                }
                let fields = AdminOnboarding.Action(
                    actor: form["actor"],
                    reason: form["reason"],
                    accessProfile: profile,
                    clientId: form["clientId"],
                    establishments: (form["establishments"] ?? "").split(whereSeparator: {
                        $0 == "," || $0.isWhitespace
                    }).map(String.init),
                    finess: form["finess"],
                    certificatePEM: form["certificatePEM"]
                )
                let defaultActor =
                    [
                        "validate": "comité (console)", "reject": "comité (console)", "tests-done": "éditeur (console)",
                        "whitelist": "ANS (console)",
                    ][action] ?? "console"
                guard
                    try AdminOnboarding.perform(action, id: id, fields, on: onboarding, defaultActor: defaultActor)
                        != nil
                else {
                    return onboardingPage(notice: "action inconnue '\(action)'", status: .badRequest)
                }
            } catch let error as OnboardingError {
                return onboardingPage(
                    notice: "Demande #\(id) : \(error.description)",
                    status: error.kind == .conflict ? .conflict : error.kind == .notFound ? .notFound : .badRequest
                )
            }
            return HTML.redirect("/console/onboarding#request-\(id)")
        }
        console.post("clock") { request, _ in
            let form = try await FormData.read(request)
            guard let text = form["speed"], let speed = Double(text) else {
                return onboardingPage(notice: "vitesse d'horloge : un nombre de 1 à 100000", status: .badRequest)
            }
            do { try clock.setSpeed(speed) } catch let error as ClockError {
                return onboardingPage(notice: error.description, status: .badRequest)
            }
            return HTML.redirect("/console/onboarding")
        }

        console.get("whitelist") { request, _ in
            try whitelistPage(
                service: request.uri.queryParameters["service"].map(String.init),
                environment: request.uri.queryParameters["environment"].map(String.init)
            )
        }
        console.post("whitelist/:id/delete") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self), try whitelist.remove(id: id) else {
                return try whitelistPage(notice: "entrée introuvable", status: .notFound)
            }
            return HTML.redirect("/console/whitelist")
        }

        console.get("certificates") { _, _ in certificatesPage() }
        console.post("certificates") { request, _ in
            let form = try await FormData.read(request)
            let order = AdminCertificates.Order(
                subjectDN: form["subjectDN"] ?? "",
                environment: form["environment"],
                negative: form["negative"],
                keyType: form["keyType"]
            )
            do {
                return certificatesPage(form: form, minted: try workshop.mint(order))
            } catch let error as AdminCertificates.CertificateOrderError {
                return certificatesPage(form: form, error: error.description, status: .badRequest)
            }
        }

        console.get("faults") { _, _ in faultsPage() }
        console.post("faults") { request, _ in
            let form = try await FormData.read(request)
            do {
                let rule = try faultRule(from: form)
                let added = try faults.add(rule)
                faultAudit.record(added, "added")
                return HTML.redirect("/console/faults")
            } catch let error as FaultError {
                return faultsPage(form: form, error: error.description, status: .badRequest)
            }
        }
        console.post("faults/:id/delete") { _, context in
            guard let id = context.parameters.get("id", as: Int.self),
                let rule = faults.rules.first(where: { $0.id == id }),
                faults.remove(id: id)
            else {
                return faultsPage(error: "panne introuvable", status: .notFound)
            }
            faultAudit.record(rule, "removed")
            return HTML.redirect("/console/faults")
        }
    }

    // MARK: Onboarding

    static let stateBadges: [OnboardingState: String] = [
        .submitted: "wait", .validated: "info", .testsDone: "wait", .whitelisted: "ok", .rejected: "ko", .revoked: "ko",
    ]

    /// Reads the submission form; establishment certificates are blocks `FINESS 750000001` followed by a PEM.
    static func submission(from form: FormData) throws -> OnboardingSubmission {
        let establishments = (form["establishments"] ?? "").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(
            String.init
        )
        var certificates: [EstablishmentCertificate] = []
        if let text = form["establishmentCertificates"] {
            var finess: String?
            var pem = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).map({
                $0.trimmingCharacters(in: .whitespaces)
            }) {
                if line.uppercased().hasPrefix("FINESS") {
                    if let finess { certificates.append(.init(finess: finess, certificatePEM: pem)) }
                    finess = line.dropFirst(6).trimmingCharacters(in: CharacterSet(charactersIn: " :\t"))
                    pem = ""
                } else if !line.isEmpty {
                    guard finess != nil else {
                        throw OnboardingError(
                            .invalid,
                            "establishmentCertificates: start each certificate with a line 'FINESS 750000001'"
                        )
                    }
                    pem += line + "\n"
                }
            }
            if let finess { certificates.append(.init(finess: finess, certificatePEM: pem)) }
        }
        return OnboardingSubmission(
            kind: form["kind"] ?? "",
            direction: form["direction"] ?? "",
            service: form["service"] ?? "",
            environment: form["environment"],
            contact: form["contact"] ?? "",
            subjectDN: form["subjectDN"],
            certificatePEM: form["certificatePEM"],
            establishments: establishments.isEmpty ? nil : establishments,
            establishmentCertificates: certificates.isEmpty ? nil : certificates
        )
    }

    /// The form field an error message is about (messages start with, or name, the field).
    static func field(of message: String, among fields: [String]) -> String? {
        let head = message.split(separator: ":").first.map(String.init) ?? ""
        if let exact = fields.first(where: { head.hasPrefix($0) }) { return exact }
        return fields.first { message.contains($0) }
    }

    func onboardingPage(
        state: String? = nil,
        form: FormData = FormData(""),
        formError: String? = nil,
        notice: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let requests: [OnboardingRequest]
        do {
            requests = try onboarding.list(state: state.flatMap(OnboardingState.init(rawValue:)))
        } catch {
            return layout.page(
                "Demandes d'intégration",
                active: "/console/onboarding",
                HTML.notice("\(error)", error: true),
                status: .internalServerError
            )
        }
        var content = notice.map { HTML.notice($0, error: true) } ?? ""
        let filter = HTML.select(
            "state",
            "État",
            options: [("", "tous")] + OnboardingState.allCases.map { ($0.rawValue, $0.rawValue) },
            selected: state ?? ""
        )
        content += "<form class=\"filters\" method=\"get\">\(filter)<button class=\"secondary\">Filtrer</button></form>"
        let rows = requests.reversed().map { request -> [String] in
            let identity =
                request.subjectDN.map { "<code>\(HTML.escape($0))</code>" }
                ?? (request.kind == .proprietary
                    ? "\(request.establishmentCertificates.count) certificat(s) d'établissement" : "clé publique (PEM)")
            let finess =
                request.kind == .proprietary ? request.establishmentCertificates.map(\.finess) : request.establishments
            var actions: [String] = []
            let base = "/console/onboarding/\(request.id)"
            switch request.state {
            case .submitted:
                let profile =
                    request.service == .rorFHIR && request.direction == .consume
                    ? "<select name=\"accessProfile\" aria-label=\"profil d'accès\"><option value=\"\">profil…</option>"
                        + (0...5).map { "<option value=\"\($0)\">profil \($0)</option>" }.joined() + "</select>" : ""
                actions.append(HTML.button(base + "/validate", "Valider", inputs: profile))
                actions.append(
                    HTML.button(
                        base + "/reject",
                        "Rejeter",
                        inputs: "<input name=\"reason\" placeholder=\"motif\" aria-label=\"motif du rejet\">",
                        kind: "danger"
                    )
                )
            case .validated:
                actions.append(HTML.button(base + "/tests-done", "Tests terminés"))
                actions.append(HTML.button(base + "/revoke", "Retirer", kind: "secondary"))
            case .testsDone:
                actions.append(HTML.button(base + "/whitelist", "Inscrire en liste blanche"))
                actions.append(HTML.button(base + "/revoke", "Retirer", kind: "secondary"))
            case .whitelisted:
                actions.append(
                    HTML.button(
                        base + "/revoke",
                        "Révoquer",
                        inputs: "<input name=\"reason\" placeholder=\"motif\" aria-label=\"motif\">",
                        kind: "danger"
                    )
                )
            case .rejected, .revoked: break
            }
            // The ANS's edits by mail, while the request is alive.
            if !request.state.isFinal {
                if request.kind == .proprietary {
                    for certificate in request.establishmentCertificates
                    where request.establishmentCertificates.count > 1 {
                        actions.append(
                            HTML.button(
                                base + "/remove-certificate",
                                "Retirer \(certificate.finess)",
                                inputs:
                                    "<input type=\"hidden\" name=\"finess\" value=\"\(HTML.escape(certificate.finess))\">",
                                kind: "secondary"
                            )
                        )
                    }
                    actions.append(
                        "<details><summary>Ajouter un établissement</summary>"
                            + HTML.button(
                                base + "/add-certificate",
                                "Ajouter",
                                inputs:
                                    "<input name=\"finess\" placeholder=\"FINESS\" aria-label=\"FINESS\"><textarea name=\"certificatePEM\" rows=\"2\" aria-label=\"certificat PEM\" placeholder=\"-----BEGIN CERTIFICATE-----\"></textarea>"
                            ) + "</details>"
                    )
                } else {
                    actions.append(
                        HTML.button(
                            base + "/establishments",
                            "Modifier les FINESS",
                            inputs:
                                "<input name=\"establishments\" value=\"\(HTML.escape(request.establishments.joined(separator: ", ")))\" aria-label=\"FINESS\">",
                            kind: "secondary"
                        )
                    )
                }
            }
            let due =
                request.state == .testsDone ? request.whitelistDueAt.map { "échéance " + HTML.time($0) } ?? "" : ""
            let note = request.rejectionReason.map { "<br><small class=\"muted\">\(HTML.escape($0))</small>" } ?? ""
            return [
                "<a id=\"request-\(request.id)\"></a>#\(request.id)",
                HTML.badge(request.state.rawValue, Self.stateBadges[request.state] ?? "") + note
                    + (due.isEmpty ? "" : "<br><small>\(due)</small>"),
                HTML.escape("\(request.kind.rawValue) · \(request.direction.rawValue)"),
                HTML.escape("\(request.service.rawValue)@\(request.environment)"),
                identity, HTML.escape(finess.joined(separator: ", ")), HTML.escape(request.contact),
                HTML.escape(request.committee?.clientId ?? "")
                    + (request.committee?.accessProfile.map { " (profil \($0))" } ?? ""),
                actions.joined(),
            ]
        }
        content += HTML.table(
            ["#", "État", "Type", "Service", "Certificat", "Établissements", "Contact", "Client", "Actions"],
            rows,
            id: "requests",
            empty: "Aucune demande."
        )
        content += submissionForm(form: form, error: formError)
        let clock = clock.view
        content += """
            <h2>Horloge et délai de l'ANS</h2>
            <p>Délai entre « tests terminés » et l'inscription : <b>\(HTML.escape(onboarding.delay.description))</b> (temps du bac à sable).
            Horloge : <b>\(HTML.escape(clock.label))</b>.</p>
            <form method="post" action="/console/clock" class="inline">\
            <input name="speed" type="number" min="1" max="100000" step="1" value="\(Int(clock.speed))" aria-label="vitesse de l'horloge">\
            <button class="secondary">Changer la vitesse</button></form>
            <span class="muted">3600 = une heure par seconde ; 1 = temps réel.</span>
            """
        return layout.page("Demandes d'intégration", active: "/console/onboarding", content, status: status)
    }

    func submissionForm(form: FormData, error: String?) -> String {
        let fields = [
            "kind", "direction", "service", "environment", "contact", "subjectDN", "certificatePEM",
            "establishmentCertificates", "establishments",
        ]
        let at = error.flatMap { Self.field(of: $0, among: fields) } ?? (error == nil ? nil : "subjectDN")
        func err(_ name: String) -> String? { at == name ? error : nil }
        let environments = workshop.environments.map { ($0, $0) }
        return """
            <h2>Nouvelle demande d'intégration</h2>
            \(error.map { HTML.notice($0, error: true) } ?? "")
            <form class="panel" method="post" action="/console/onboarding" id="submit-form">
            \(HTML.select("kind", "Type d'organisation", options: [("saas", "SaaS (éditeur hébergeur)"), ("eai-regional", "EAI régional"), ("proprietary", "Solution propriétaire")], selected: form["kind"], error: err("kind")))
            \(HTML.select("direction", "Sens", options: [("feed", "Alimentation"), ("consume", "Consommation")], selected: form["direction"], error: err("direction")))
            \(HTML.select("service", "Service", options: SandboxService.allCases.map { ($0.rawValue, $0.rawValue) }, selected: form["service"], error: err("service")))
            \(HTML.select("environment", "Environnement", options: environments, selected: form["environment"], error: err("environment")))
            \(HTML.field("contact", "Contact", value: form["contact"] ?? "", error: err("contact"), placeholder: "integration@editeur.example", required: true))
            \(HTML.field("subjectDN", "DN du certificat (EAI/SaaS)", value: form["subjectDN"] ?? "", error: err("subjectDN"), placeholder: "CN=…,OU=…,O=…,C=FR"))
            \(HTML.field("establishments", "FINESS (EAI/SaaS, séparés par des virgules)", value: form["establishments"] ?? "", error: err("establishments"), placeholder: "759000001, 759000009"))
            <label class="field\(err("certificatePEM") == nil ? "" : " invalid")"><span>Certificat ou clé publique PEM (requis pour ror-csd)</span>\
            <textarea name="certificatePEM" rows="3">\(HTML.escape(form["certificatePEM"] ?? ""))</textarea>\(err("certificatePEM").map { "<em class=\"error\">\(HTML.escape($0))</em>" } ?? "")</label>
            <label class="field\(err("establishmentCertificates") == nil ? "" : " invalid")"><span>Solution propriétaire : « FINESS 750000001 » puis le PEM, par établissement</span>\
            <textarea name="establishmentCertificates" rows="3">\(HTML.escape(form["establishmentCertificates"] ?? ""))</textarea>\(err("establishmentCertificates").map { "<em class=\"error\">\(HTML.escape($0))</em>" } ?? "")</label>
            <div><button>Soumettre</button></div>
            </form>
            """
    }

    // MARK: Whitelists

    func whitelistPage(
        service: String? = nil,
        environment: String? = nil,
        notice: String? = nil,
        status: HTTPResponse.Status = .ok
    ) throws -> Response {
        let entries = try whitelist.entries().filter {
            (service ?? "").isEmpty || $0.service.rawValue == service
        }.filter { (environment ?? "").isEmpty || $0.environment == environment }
        var content = notice.map { HTML.notice($0, error: true) } ?? ""
        content +=
            "<form class=\"filters\" method=\"get\">"
            + HTML.select(
                "service",
                "Service",
                options: [("", "tous")] + SandboxService.allCases.map { ($0.rawValue, $0.rawValue) },
                selected: service ?? ""
            )
            + HTML.select(
                "environment",
                "Environnement",
                options: [("", "tous")] + workshop.environments.map { ($0, $0) },
                selected: environment ?? ""
            )
            + "<button class=\"secondary\">Filtrer</button></form>"
        let rows = entries.map { entry -> [String] in
            let credential =
                entry.subjectDN.map { "DN <code>\(HTML.escape($0))</code>" }
                ?? "SPKI <code>\(HTML.escape(entry.publicKeySHA256?.hex ?? "?"))</code>"
            let origin =
                entry.onboardingRequestId.map { "<a href=\"/console/onboarding#request-\($0)\">demande #\($0)</a>" }
                ?? HTML.escape(entry.origin)
            return [
                "\(entry.id ?? 0)", HTML.escape(entry.environment), HTML.escape(entry.service.rawValue),
                HTML.escape(entry.role.rawValue), credential,
                HTML.escape(entry.establishments.joined(separator: ", ")),
                HTML.escape(entry.clientId ?? "") + (entry.accessProfile.map { " (profil \($0))" } ?? ""),
                origin + (entry.label.map { "<br><small class=\"muted\">\(HTML.escape($0))</small>" } ?? ""),
                HTML.button("/console/whitelist/\(entry.id ?? 0)/delete", "Retirer", kind: "danger"),
            ]
        }
        content += HTML.table(
            ["#", "Env.", "Service", "Rôle", "Identifiant", "Établissements", "Client", "Origine", ""],
            rows,
            empty: "Liste blanche vide."
        )
        content +=
            "<p class=\"muted\">Ajouter une entrée : par une demande d'intégration (flux réel) ou <code>POST /admin/whitelist</code> / <code>esante-sandbox whitelist add</code>.</p>"
        return layout.page("Listes blanches", active: "/console/whitelist", content, status: status)
    }

    // MARK: Certificate workshop

    func certificatesPage(
        form: FormData = FormData(""),
        minted: AdminCertificates.Minted? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let at = error.flatMap { Self.field(of: $0, among: ["subjectDN", "environment", "negative", "keyType"]) }
        func err(_ name: String) -> String? { at == name ? error : (at == nil && name == "subjectDN" ? error : nil) }
        var content = """
            <form class="panel" method="post" action="/console/certificates" id="certificate-form">
            \(HTML.field("subjectDN", "DN du sujet", value: form["subjectDN"] ?? "", error: err("subjectDN"), placeholder: "CN=MON-LOGICIEL,OU=0002 759000001,O=MON EDITEUR,C=FR", required: true))
            \(HTML.select("environment", "Environnement (PKI)", options: workshop.environments.map { ($0, $0) }, selected: form["environment"], error: err("environment")))
            \(HTML.select("negative", "Cas négatif", options: [("", "aucun (valide)")] + NegativeKind.allCases.map { ($0.rawValue, $0.rawValue) }, selected: form["negative"], error: err("negative")))
            \(HTML.select("keyType", "Clé", options: [("rsa", "RSA-2048 (comme IGC-Santé)"), ("p256", "ECDSA P-256")], selected: form["keyType"], error: err("keyType")))
            <div><button>Émettre</button></div></form>
            """
        if let minted {
            func download(_ name: String, _ text: String) -> String {
                "<a download=\"\(name)\" href=\"data:application/x-pem-file;base64,\(Data(text.utf8).base64EncodedString())\">\(name)</a>"
            }
            let fields = HTML.table(
                ["Champ", "Valeur"],
                [
                    ["DN du sujet", "<code>\(HTML.escape(minted.subjectDN))</code>"],
                    ["Émetteur", "<code>\(HTML.escape(minted.issuerDN))</code>"],
                    ["Numéro de série", "<code>\(HTML.escape(minted.serialNumber))</code>"],
                    ["SPKI SHA-256", "<code>\(HTML.escape(minted.spkiSHA256))</code>"],
                    ["Validité", HTML.time(minted.notValidBefore) + " → " + HTML.time(minted.notValidAfter)],
                    ["Cas négatif", HTML.escape(minted.negative ?? "aucun")],
                    [
                        "Télécharger",
                        [
                            download("cert.pem", minted.certificatePEM), download("key.pem", minted.privateKeyPEM),
                            download("bundle.pem", minted.bundlePEM),
                        ].joined(separator: " · "),
                    ],
                ]
            )
            content += """
                <h2>Certificat émis</h2>
                \(fields)
                <p class="muted">Rien n'est inscrit en liste blanche : soumettez une demande d'intégration avec ce DN.</p>
                <pre id="certificate-pem">\(HTML.escape(minted.certificatePEM))</pre>
                """
        }
        return layout.page("Atelier de certificats", active: "/console/certificates", content, status: status)
    }

    // MARK: Faults

    func faultRule(from form: FormData) throws -> FaultRule {
        func number<T: LosslessStringConvertible>(_ name: String, _: T.Type) throws -> T? {
            guard let text = form[name] else { return nil }
            guard let value = T(text) else { throw FaultError(description: "\(name): '\(text)' is not a number") }
            return value
        }
        var rule = FaultRule(
            service: form["target"].flatMap { $0.hasPrefix("/") ? nil : $0 },
            pathPrefix: form["target"].flatMap { $0.hasPrefix("/") ? $0 : nil },
            latencyMs: try number("latencyMs", Int.self),
            latencyMaxMs: try number("latencyMaxMs", Int.self),
            errorRate: try number("errorPercent", Double.self).map { $0 / 100 },
            retryAfter: try number("retryAfter", Int.self),
            dropRate: try number("dropPercent", Double.self).map { $0 / 100 },
            label: form["label"]
        )
        if let minutes = try number("maintenanceMinutes", Double.self) {
            guard minutes > 0 else { throw FaultError(description: "maintenanceMinutes must be positive") }
            rule.maintenanceUntil = clock.now.addingTimeInterval(minutes * 60)
        }
        return rule
    }

    func faultsPage(form: FormData = FormData(""), error: String? = nil, status: HTTPResponse.Status = .ok) -> Response
    {
        let rows = faults.rules.map { rule in
            [
                "#\(rule.id)", HTML.escape(AdminFaults.describe(rule)), HTML.escape(rule.label ?? ""),
                rule.createdAt.map(HTML.time) ?? "",
                HTML.button("/console/faults/\(rule.id)/delete", "Lever", kind: "danger"),
            ]
        }
        let targets =
            SandboxService.allCases.map { ($0.rawValue, $0.rawValue) } + [
                (SandboxService.Path.rorCapacityFeed, SandboxService.Path.rorCapacityFeed + " (préfixe)")
            ]
        let content =
            HTML.table(["#", "Effet", "Libellé", "Depuis", ""], rows, empty: "Aucune panne injectée.") + """
                <h2>Injecter une panne</h2>
                \(error.map { HTML.notice($0, error: true) } ?? "")
                <form class="panel" method="post" action="/console/faults" id="fault-form">
                \(HTML.select("target", "Service ou préfixe", options: targets, selected: form["target"]))
                \(HTML.field("latencyMs", "Latence (ms)", value: form["latencyMs"] ?? "", type: "number"))
                \(HTML.field("latencyMaxMs", "Latence max (ms, aléatoire)", value: form["latencyMaxMs"] ?? "", type: "number"))
                \(HTML.field("errorPercent", "Erreurs 503 (%)", value: form["errorPercent"] ?? "", type: "number"))
                \(HTML.field("retryAfter", "Retry-After (s)", value: form["retryAfter"] ?? "", type: "number", placeholder: "30"))
                \(HTML.field("maintenanceMinutes", "Maintenance (minutes, horloge du bac à sable)", value: form["maintenanceMinutes"] ?? "", type: "number"))
                \(HTML.field("dropPercent", "Connexions coupées (%)", value: form["dropPercent"] ?? "", type: "number"))
                \(HTML.field("label", "Libellé", value: form["label"] ?? ""))
                <div><button>Injecter</button></div></form>
                <p class="muted">Levées par <code>POST /admin/reset</code>, ou ici.</p>
                """
        return layout.page("Pannes injectées", active: "/console/faults", content, status: status)
    }
}

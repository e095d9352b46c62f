import Foundation
import HTTPCommon
import Hummingbird
import NIOCore
import SOAPCore

/// Server-rendered HTML for the console: escaping, the page layout (no external CDN, font or script), and small
/// builders. Pages are plain strings: readable, cheap, and every value goes through `escape`.
enum HTML {
    /// Text and attribute escaping: XML's five entities, which HTML5 reads too.
    static func escape(_ text: String) -> String { XMLText.escape(text) }

    /// A percent-encoded query or path component.
    static func url(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? text
    }

    static let sections: [(path: String, title: String)] = [
        ("/console", "Tableau de bord"), ("/console/onboarding", "Demandes d'intégration"),
        ("/console/whitelist", "Listes blanches"),
        ("/console/journal", "Journal"), ("/console/capacity", "Capacités"), ("/console/data", "Données ROR"),
        ("/console/mes", "Mon espace santé"), ("/console/dmp", "DMP"), ("/console/recette", "Recette"),
        ("/console/certificates", "Certificats"), ("/console/faults", "Pannes"),
    ]

    /// The whole page: navigation, the clock, the content.
    static func page(
        _ title: String,
        active: String,
        clock: String? = nil,
        _ content: String,
        status: HTTPResponse.Status = .ok,
        refreshSeconds: Int? = nil
    ) -> Response {
        let navigation = sections.map { section in
            "<a href=\"\(section.path)\"\(section.path == active ? " class=\"active\" aria-current=\"page\"" : "")>\(escape(section.title))</a>"
        }.joined()
        let body = """
            <!doctype html>
            <html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · esante-sandbox</title><style>\(css)</style>\
            \(refreshSeconds.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")</head>
            <body><header><div class="brand">esante-sandbox <span>console</span></div><nav>\(navigation)</nav>\
            \(clock.map { "<div class=\"clock\" id=\"clock\">\(escape($0))</div>" } ?? "")</header>
            <main><h1>\(escape(title))</h1>
            \(content)
            </main><footer>Bac à sable hors ligne — ce n'est pas un service de l'ANS ni de l'Assurance Maladie.</footer></body></html>
            """
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }

    static func fragment(_ html: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// 303 to `location` (the answer to a successful form POST).
    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// A table; `rows` are already-escaped cells. Wrapped so a narrow window scrolls it instead of the page.
    static func table(
        _ headers: [String],
        _ rows: [[String]],
        id: String? = nil,
        bodyAttributes: String = "",
        empty: String = "Rien à afficher."
    ) -> String {
        let head = headers.map { "<th>\(escape($0))</th>" }.joined()
        let body =
            rows.isEmpty
            ? "<tr><td colspan=\"\(headers.count)\" class=\"muted\">\(escape(empty))</td></tr>"
            : rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return
            "<div class=\"scroll\"><table><thead><tr>\(head)</tr></thead><tbody\(id.map { " id=\"\($0)\"" } ?? "")\(bodyAttributes)>\(body)</tbody></table></div>"
    }

    static func badge(_ text: String, _ kind: String) -> String {
        "<span class=\"badge \(kind)\">\(escape(text))</span>"
    }

    /// A labelled input with its inline error, if any.
    static func field(
        _ name: String,
        _ label: String,
        value: String = "",
        error: String? = nil,
        type: String = "text",
        placeholder: String = "",
        required: Bool = false,
        help: String? = nil
    ) -> String {
        """
        <label class="field\(error == nil ? "" : " invalid")"><span>\(escape(label))</span>\
        <input type="\(type)" name="\(name)" value="\(escape(value))" placeholder="\(escape(placeholder))"\(required ? " required" : "")\
        \(error == nil ? "" : " aria-invalid=\"true\"")>\
        \(help.map { "<small>\(escape($0))</small>" } ?? "")\(error.map { "<em class=\"error\">\(escape($0))</em>" } ?? "")</label>
        """
    }

    static func select(
        _ name: String,
        _ label: String,
        options: [(String, String)],
        selected: String?,
        error: String? = nil
    ) -> String {
        let items = options.map {
            "<option value=\"\(escape($0.0))\"\($0.0 == selected ? " selected" : "")>\(escape($0.1))</option>"
        }.joined()
        return
            "<label class=\"field\(error == nil ? "" : " invalid")\"><span>\(escape(label))</span><select name=\"\(name)\">\(items)</select>"
            + (error.map { "<em class=\"error\">\(escape($0))</em>" } ?? "") + "</label>"
    }

    /// A one-button form (POST) with optional extra inputs.
    static func button(_ action: String, _ label: String, inputs: String = "", kind: String = "") -> String {
        "<form method=\"post\" action=\"\(escape(action))\" class=\"inline\">\(inputs)<button class=\"\(kind)\">\(escape(label))</button></form>"
    }

    static func notice(_ text: String, error: Bool = false) -> String {
        "<p class=\"notice\(error ? " error" : "")\" role=\"\(error ? "alert" : "status")\">\(escape(text))</p>"
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return
            "<time datetime=\"\(formatter.string(from: date))\">\(escape(formatter.string(from: date).replacingOccurrences(of: "T", with: " ")))</time>"
    }

    static let css = """
        :root{--fg:#1d2329;--muted:#5f6b76;--line:#d8dee4;--bg:#f6f8fa;--accent:#0b5cad;--ok:#1a7f37;--ko:#b42318;--warn:#9a6700}
        *{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
        header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.6rem 1rem;background:var(--bg);border-bottom:1px solid var(--line)}
        .brand{font-weight:700}.brand span{font-weight:400;color:var(--muted)}nav{display:flex;flex-wrap:wrap;gap:.25rem}
        nav a{padding:.25rem .55rem;border-radius:6px;color:var(--fg);text-decoration:none}nav a:hover{background:#e7ecf0}
        nav a.active{background:var(--accent);color:#fff}.clock{margin-left:auto;color:var(--muted);font-size:.9em}
        main{padding:1rem;max-width:1400px;margin:0 auto}h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
        footer{padding:1rem;color:var(--muted);font-size:.85em;text-align:center}
        .scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px}table{border-collapse:collapse;width:100%;font-size:.92em}
        th,td{padding:.4rem .55rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}th{background:var(--bg);white-space:nowrap}
        tbody tr:hover{background:#fafbfc}tr.new{animation:flash 2s}@keyframes flash{from{background:#fff3bf}to{background:transparent}}
        .muted{color:var(--muted)}.mono,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
        pre{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:.7rem;overflow:auto;max-height:32rem;white-space:pre-wrap;word-break:break-all}
        .badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;font-size:.82em;border:1px solid var(--line);white-space:nowrap}
        .badge.ok{background:#dafbe1;border-color:#aceebb;color:var(--ok)}.badge.ko{background:#ffebe9;border-color:#ffcecb;color:var(--ko)}
        .badge.wait{background:#fff8c5;border-color:#f5e0a0;color:var(--warn)}.badge.info{background:#ddf4ff;border-color:#b6e3ff;color:var(--accent)}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:.8rem}
        .card{border:1px solid var(--line);border-radius:10px;padding:.8rem 1rem}.card b{display:block;font-size:1.7rem}
        form.panel{border:1px solid var(--line);border-radius:10px;padding:1rem;display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:.7rem 1rem;align-items:end}
        .field{display:flex;flex-direction:column;gap:.2rem}.field span{font-weight:600;font-size:.9em}.field small{color:var(--muted)}
        input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #b7c0c8;border-radius:6px;width:100%;background:#fff}
        .invalid input,.invalid select,textarea.invalid{border-color:var(--ko);outline:1px solid var(--ko)}em.error{color:var(--ko);font-style:normal;font-size:.88em}
        button{font:inherit;padding:.35rem .8rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
        button.secondary{background:#fff;color:var(--accent)}button.danger{background:var(--ko);border-color:var(--ko)}
        form.inline{display:inline-flex;gap:.3rem;align-items:center;margin:.1rem .2rem .1rem 0}form.inline input,form.inline select{width:auto;max-width:11rem}
        .notice{padding:.5rem .8rem;border-radius:8px;background:#ddf4ff}.notice.error{background:#ffebe9;color:var(--ko)}
        .chips{display:flex;flex-wrap:wrap;gap:.3rem}.chip{border:1px solid var(--line);border-radius:8px;padding:.15rem .45rem;font-size:.88em;white-space:nowrap}
        .chip b{font-size:1.05em}.chip.s02{border-color:#aceebb;background:#f0fff4}.chip.s05{border-color:#ffcecb;background:#fff5f5}.chip.s06{border-color:#b6e3ff;background:#f3faff}
        .diff .add{background:#e6ffec;display:block}.diff .del{background:#ffebe9;display:block;text-decoration:line-through}
        .filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.8rem}.filters .field{min-width:10rem}
        @media (max-width:700px){main{padding:.6rem}.clock{margin-left:0;width:100%}th,td{padding:.3rem}}
        """
}

/// `application/x-www-form-urlencoded` bodies of the console's forms.
struct FormData {
    var values: [String: [String]] = [:]

    init(_ text: String) {
        for (name, value) in FormEncoding.items(text) { values[name, default: []].append(value) }
    }

    /// The trimmed value, nil when absent or empty.
    subscript(_ name: String) -> String? {
        guard let value = values[name]?.first?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
            return nil
        }
        return value
    }

    /// Reads a form body (at most 1 MiB: certificates are pasted in).
    static func read(_ request: Request) async throws -> FormData {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        return FormData(String(buffer: body))
    }
}

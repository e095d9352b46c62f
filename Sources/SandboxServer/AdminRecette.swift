import Foundation
import HTTPTypes
import Hummingbird
import Recette

/// `/admin/recette/*`: the packs, runs started for a client, their live status and reports.
enum AdminRecette {
    struct RunOrder: Decodable {
        var pack: String
        /// A subject DN or a public key's SHA-256 (64 hex digits).
        var client: String
        var minutes: Double?
        var productName: String?
        var productVersion: String?
    }

    struct RunView: Encodable {
        var id: Int64
        var pack: String
        var packVersion: String
        var client: String
        var clientKind: String
        var productName: String?
        var productVersion: String?
        var startedAt: Date
        var endsAt: Date
        var closedAt: Date?

        init(_ run: RecetteRun) {
            (id, pack, packVersion, client, clientKind) = (
                run.id, run.pack.id, run.pack.version, run.client.value, run.client.kind.rawValue
            )
            (productName, productVersion, startedAt, endsAt, closedAt) = (
                run.productName, run.productVersion, run.startedAt, run.endsAt, run.closedAt
            )
        }
    }

    static func add(
        to admin: RouterGroup<AdminRequestContext>,
        runs: RecetteRuns,
        injector: RecetteInjector,
        sandboxVersion: String
    ) {
        admin.get("recette/packs") { _, _ in SandboxJSON.response(runs.packs.packs) }

        admin.get("recette/runs") { _, _ in SandboxJSON.response(try runs.runs().map(RunView.init)) }

        admin.post("recette/runs") { request, _ in
            let order: RunOrder
            switch await AdminAPI.decodeBody(request, as: RunOrder.self, "recette run") {
            case .refusal(let response): return response
            case .value(let value): order = value
            }
            do {
                let run = try runs.start(
                    pack: order.pack,
                    client: order.client,
                    minutes: order.minutes ?? 60,
                    productName: order.productName,
                    productVersion: order.productVersion
                )
                try injector.refresh(from: runs)
                return SandboxJSON.response(RunView(run), status: .created)
            } catch let error as RecetteError {
                return SandboxJSON.error(.badRequest, error.description)
            }
        }

        admin.get("recette/runs/:id") { _, context in
            try report(runs, context, sandboxVersion: sandboxVersion, format: .json) { id in try runs.status(id) }
        }

        admin.post("recette/runs/:id/close") { _, context in
            let response = try report(runs, context, sandboxVersion: sandboxVersion, format: .json) { id in
                try runs.close(id)
            }
            try injector.refresh(from: runs)
            return response
        }

        admin.get("recette/runs/:id/report") { request, context in
            let name = request.uri.queryParameters["format"].map(String.init) ?? "json"
            guard let format = RecetteReport.Format(rawValue: name) else {
                return SandboxJSON.error(.badRequest, "format must be json, junit, html or zip, not '\(name)'")
            }
            return try report(runs, context, sandboxVersion: sandboxVersion, format: format) { id in
                try runs.status(id)
            }
        }
    }

    static func report(
        _ runs: RecetteRuns,
        _ context: AdminRequestContext,
        sandboxVersion: String,
        format: RecetteReport.Format,
        judge: (Int64) throws -> (RecetteRun, RunResult, [RecordedCall])?
    ) throws -> Response {
        guard let id = context.parameters.get("id", as: Int64.self) else {
            return SandboxJSON.error(.badRequest, "the run id must be an integer")
        }
        guard let (run, result, calls) = try judge(id) else {
            return SandboxJSON.error(.notFound, "no recette run \(id)")
        }
        let report = RecetteReport(run: run, result: result, calls: calls, sandboxVersion: sandboxVersion)
        var headers = HTTPFields()
        headers[.contentType] = format.contentType
        if format == .zip || format == .junit {
            headers[.contentDisposition] =
                "attachment; filename=\"recette-\(run.id)-\(run.pack.id).\(format.fileExtension)\""
        }
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(data: try report.render(format)))
        )
    }
}

import FHIRCore
import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Store

/// Bulk export as the live ROR runs it (DOC `methodes-fhir/export.md`): `GET [base]/$export?_type=…` → 202 with
/// `Content-Location: [base]/$export-poll-status?_jobId=<uuid>`; polling answers 202 (`X-Progress`) until the job
/// is done, then 200 with the manifest whose `output[].url` are served by `$export-get-file`.
///
/// Live behaviour kept: `Prefer: respond-async` is not required; the associated resources are always exported
/// (`includeAssociatedData=_myCompleteExtract` or not). Beyond the live server: `_outputFormat=application/fhir+ndjson`
/// is honoured (the live server answers Bundles only).
public final class RORBulkExport: Sendable {
    struct Job: Sendable {
        var id: String
        var request: String
        var created: Date
        var profile: Int?
        var done = false
        var progress = "0%"
        /// Output files, written to disk (a national export is ~700 MB: not kept in memory).
        var files: [(type: String, name: String, count: Int, url: URL)] = []
        var error: String?
    }

    private let jobs = NIOLockedValueBox<[String: Job]>([:])
    let repository: ResourceRepository
    let policy: RORAccessPolicy
    /// Resources per output file.
    static let fileSize = 1000
    /// Jobs and their files are kept this long.
    static let lifetime: TimeInterval = 3600
    let directory: URL

    init(
        repository: ResourceRepository,
        policy: RORAccessPolicy,
        directory: URL = FileManager.default.temporaryDirectory
            .appendingPathComponent("esante-sandbox-export-\(UUID().uuidString.lowercased())")
    ) {
        self.repository = repository
        self.policy = policy
        self.directory = directory
    }

    /// Parses and validates the kick-off, starts the job in the background, answers 202.
    func kickOff(_ request: Request, baseURL: String) throws -> Response {
        let items = RORFHIRService.queryItems(request)
        var types = repository.registry.resourceTypes
        var filters: [String: [(String, String)]] = [:]
        var ndjson = false
        for (name, value) in items {
            switch name {
            case "_type":
                let asked = value.split(separator: ",").map(String.init)
                if let unknown = asked.first(where: { repository.registry.parameters[$0] == nil }) {
                    throw FHIRError(
                        .badRequest,
                        code: "invalid",
                        "_type: '\(unknown)' cannot be exported (types: \(repository.registry.resourceTypes.joined(separator: ", ")))",
                        expression: ["_type"]
                    )
                }
                types = asked
            case "_typeFilter":
                for filter in value.split(separator: ",").map(String.init) {
                    guard let question = filter.firstIndex(of: "?") else {
                        throw FHIRError(
                            .badRequest,
                            code: "invalid",
                            "_typeFilter must be Type?query (got '\(filter)')",
                            expression: ["_typeFilter"]
                        )
                    }
                    let type = String(filter[..<question])
                    filters[type, default: []] += FormEncoding.items(String(filter[filter.index(after: question)...]))
                }
            case "_outputFormat":
                switch value {
                case "application/fhir+json", "application/json", "json": ndjson = false
                case "application/fhir+ndjson", "application/ndjson", "ndjson": ndjson = true
                default:
                    throw FHIRError(
                        .badRequest,
                        code: "not-supported",
                        "_outputFormat '\(value)' is not supported (application/fhir+json or application/fhir+ndjson)",
                        expression: ["_outputFormat"]
                    )
                }
            case "includeAssociatedData", "_since", "_format":
                break
            default:
                throw FHIRError(
                    .badRequest,
                    code: "not-supported",
                    "Unknown $export parameter '\(name)'",
                    expression: [name]
                )
            }
        }
        if let since = items.first(where: { $0.0 == "_since" })?.1 {
            guard FHIRDate.range(of: since) != nil else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "_since must be a FHIR instant (got '\(since)')",
                    expression: ["_since"]
                )
            }
            for type in types { filters[type, default: []].append(("_lastUpdated", "ge\(since)")) }
        }
        // Validate every filter now: a bad one is the kick-off's 400, not a failed job.
        var searches: [SearchRequest] = []
        for type in types {
            do {
                var search = try SearchRequest(type: type, items: filters[type] ?? [], registry: repository.registry)
                search.count = SearchRequest.maximumCount
                searches.append(search)
            } catch let error as SearchError {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "_typeFilter for \(type): \(error.message)",
                    expression: ["_typeFilter"]
                )
            }
        }
        removeExpired()
        let id = UUID().uuidString.lowercased()
        let profile = RORCaller.profile
        jobs.withLockedValue {
            $0[id] = Job(
                id: id,
                request: "\(baseURL)/$export?\(request.uri.query ?? "")",
                created: Date(),
                profile: profile
            )
        }
        Task.detached(priority: .utility) { [self] in
            await RORCaller.$profile.withValue(profile) { await self.run(id: id, searches: searches, ndjson: ndjson) }
        }
        var response = Response(status: .accepted)
        response.headers[.contentLocation] = "\(baseURL)/$export-poll-status?_jobId=\(id)"
        return response
    }

    /// Runs the export: the matching resources of each type, then the resources they reference (associated data).
    func run(id: String, searches: [SearchRequest], ndjson: Bool) async {
        do {
            let folder = directory.appendingPathComponent(id)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var writer = ExportWriter(folder: folder, ndjson: ndjson)
            var exported = Set<String>()
            /// Loads resources by id a file at a time, writes them, and returns the ids written (never holding a
            /// whole national export in memory).
            func export(_ type: String, _ ids: [String]) async throws -> [String] {
                var written: [String] = []
                for start in stride(from: 0, to: ids.count, by: Self.fileSize) {
                    let chunk = Array(ids[start..<min(start + Self.fileSize, ids.count)]).filter {
                        !exported.contains("\(type)/\($0)")
                    }
                    let resources = try await policy.visible(repository.resources(type: type, ids: chunk, bulk: true))
                    try writer.write(type, resources)
                    exported.formUnion(resources.map { "\(type)/\($0.id)" })
                    written += resources.map(\.id)
                }
                return written
            }
            var frontier: [String: [String]] = [:]
            for (index, search) in searches.enumerated() {
                frontier[search.type, default: []] += try await export(
                    search.type,
                    try await repository.searchIDs(search)
                )
                update(id) { $0.progress = "\(Int(Double(index + 1) / Double(searches.count + 1) * 100))%" }
            }
            // Associated data: what the exported resources reference, and the roles of exported offers.
            for _ in 0..<3 {
                var found: [String: [String]] = [:]
                for (type, ids) in frontier where !ids.isEmpty {
                    let references = try await repository.outgoingReferences(
                        type: type,
                        ids: ids,
                        parameters: nil,
                        targetType: nil
                    )
                    for (target, refs) in Dictionary(grouping: references, by: \.0) {
                        found[target, default: []] += try await export(target, refs.map(\.1))
                    }
                }
                if let services = frontier["HealthcareService"], !services.isEmpty {
                    let roles = try await repository.incomingReferences(
                        sourceType: "PractitionerRole",
                        parameters: ["service"],
                        targetType: "HealthcareService",
                        ids: services
                    )
                    found["PractitionerRole", default: []] += try await export("PractitionerRole", roles)
                }
                frontier = found
                if found.values.allSatisfy(\.isEmpty) { break }
            }
            let files = try await writer.finish()
            // The export passed ~1 GB through malloc in file-sized pieces; give the freed pages back to the system.
            LinuxCalls.trimMallocHeap()
            update(id) {
                $0.files = files
                $0.done = true
                $0.progress = "100%"
            }
        } catch {
            update(id) {
                $0.error = "\(error)"
                $0.done = true
            }
        }
    }

    private func update(_ id: String, _ change: (inout Job) -> Void) {
        jobs.withLockedValue { jobs in
            if var job = jobs[id] {
                change(&job)
                jobs[id] = job
            }
        }
    }

    func job(_ request: Request) throws -> Job {
        guard let id = request.uri.queryParameters["_jobId"].map(String.init),
            let job = jobs.withLockedValue({ $0[id] })
        else {
            throw FHIRError(.notFound, code: "not-found", "Unknown export job", expression: ["_jobId"])
        }
        guard job.profile == RORCaller.profile else {
            throw FHIRError(.notFound, code: "not-found", "Unknown export job", expression: ["_jobId"])
        }
        return job
    }

    func poll(_ request: Request, baseURL: String) throws -> Response {
        let job = try job(request)
        guard job.done else {
            var response = Response(status: .accepted)
            response.headers[HTTPField.Name("X-Progress")!] = job.progress
            response.headers[.retryAfter] = "1"
            return response
        }
        if let error = job.error {
            throw FHIRError(.internalServerError, code: "exception", "Export failed: \(error)", expression: nil)
        }
        let manifest: [String: Any] = [
            "transactionTime": FHIRInstant.string(job.created),
            "request": job.request,
            "requiresAccessToken": true,
            "output": job.files.map { file in
                [
                    "type": file.type, "count": file.count,
                    "url": "\(baseURL)/$export-get-file?_jobId=\(job.id)&_fileId=\(file.name)",
                ]
            },
            "error": [],
        ]
        let data = try JSONSerialization.data(
            withJSONObject: manifest,
            options: [.sortedKeys, .withoutEscapingSlashes]
        )
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    func file(_ request: Request) throws -> Response {
        let job = try job(request)
        let name = request.uri.queryParameters["_fileId"].map(String.init)
        guard job.done, let file = job.files.first(where: { $0.name == name }) else {
            throw FHIRError(
                .notFound,
                code: "not-found",
                "Unknown export file '\(name ?? "")'",
                expression: ["_fileId"]
            )
        }
        let type = file.name.hasSuffix(".ndjson") ? "application/fhir+ndjson" : OperationOutcome.contentType
        guard let data = try? Data(contentsOf: file.url) else {
            throw FHIRError(.gone, code: "not-found", "Export file '\(file.name)' has expired", expression: ["_fileId"])
        }
        return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Appends resources to per-type output files of at most ``fileSize`` resources. Files are built and written in
    /// the background, one after the other, while the export reads the next resources: the two halves of the work
    /// then use both cores (figures in `docs/performance.md`).
    struct ExportWriter {
        let folder: URL
        let ndjson: Bool
        var pending: [String: [StoredResource]] = [:]
        var parts: [String: Int] = [:]
        var files: [(type: String, name: String, count: Int, url: URL)] = []
        /// The file being written, after those before it (an error ends the chain and is thrown by ``finish()``).
        private var writing: Task<Void, any Error>?

        init(folder: URL, ndjson: Bool) {
            self.folder = folder
            self.ndjson = ndjson
        }

        mutating func write(_ type: String, _ resources: [StoredResource]) throws {
            pending[type, default: []] += resources
            while (pending[type]?.count ?? 0) >= RORBulkExport.fileSize {
                try flush(type, Array(pending[type]!.prefix(RORBulkExport.fileSize)))
                pending[type]!.removeFirst(RORBulkExport.fileSize)
            }
        }

        mutating func flush(_ type: String, _ chunk: [StoredResource]) throws {
            guard !chunk.isEmpty else { return }
            let part = (parts[type] ?? 0) + 1
            parts[type] = part
            let name = "\(type)-\(part).\(ndjson ? "ndjson" : "json")"
            let url = folder.appendingPathComponent(name)
            let ndjson = ndjson
            writing = Task.detached { [writing] in
                try await writing?.value
                try RORBulkExport.fileData(chunk, ndjson: ndjson).write(to: url)
            }
            files.append((type, name, chunk.count, url))
        }

        mutating func finish() async throws -> [(type: String, name: String, count: Int, url: URL)] {
            for type in pending.keys.sorted() { try flush(type, pending[type]!) }
            pending = [:]
            try await writing?.value
            // Grouped by type; within a type, in part order (as written).
            return files.enumerated().sorted { ($0.element.type, $0.offset) < ($1.element.type, $1.offset) }.map(
                \.element
            )
        }
    }

    /// An output file's bytes: a `collection` Bundle, or one resource per line (ndjson).
    static func fileData(_ resources: [StoredResource], ndjson: Bool) -> Data {
        var data = Data()
        data.reserveCapacity(resources.reduce(100) { $0 + $1.json.count + 16 })
        if !ndjson {
            data += Data(
                "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"total\":\(resources.count),\"entry\":[".utf8
            )
        }
        for (index, resource) in resources.enumerated() {
            if !ndjson { data += index > 0 ? Self.nextEntry : Self.firstEntry }
            data += resource.json
            data += ndjson ? Self.newline : Self.entryEnd
        }
        if !ndjson { data += Data("]}".utf8) }
        return data
    }

    private static let firstEntry = Data("{\"resource\":".utf8), nextEntry = Data(",{\"resource\":".utf8)
    private static let entryEnd = Data("}".utf8), newline = Data("\n".utf8)

    public func removeAll() {
        jobs.withLockedValue { $0.removeAll() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Drops jobs older than ``lifetime`` with their files.
    func removeExpired() {
        let expired = jobs.withLockedValue { jobs -> [String] in
            let old = jobs.values.filter { Date().timeIntervalSince($0.created) > Self.lifetime }.map(\.id)
            for id in old { jobs[id] = nil }
            return old
        }
        for id in expired { try? FileManager.default.removeItem(at: directory.appendingPathComponent(id)) }
    }
}

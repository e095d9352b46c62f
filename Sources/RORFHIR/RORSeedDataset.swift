import FHIRCore
import Foundation
import GRDB
import Store

/// The ROR seed dataset: `Seeds/ror/*.json` (FHIR Bundles or single resources), and optionally
/// `Seeds/ror/dataset.sqlite`, the same data already stored and indexed (`seed generate` writes it for national
/// datasets, `seed prebuild` for any folder).
///
/// Loading a national dataset from JSON parses ~1 GB and writes ~7 million index rows: minutes. The prebuilt file
/// is the database a load would produce; a fresh data folder starts as a copy of it (seconds). It is used only
/// when it still describes the JSON beside it (same file names and sizes) and was indexed by the same rules
/// (same migrations, same search parameters): otherwise the JSON is loaded, and the log says why.
public struct RORSeedDataset: Sendable {
    public static let prebuiltName = "dataset.sqlite"

    /// The `ror` folder of a seeds folder.
    public let folder: URL

    public init(seeds: URL) {
        self.folder = seeds.appendingPathComponent("ror")
    }

    public var prebuiltFile: URL { folder.appendingPathComponent(Self.prebuiltName) }

    /// The JSON files, in load order (name order: a national dataset is split in numbered parts).
    public func jsonFiles() throws -> [URL] {
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    // MARK: Loading JSON

    /// Loads the JSON files into `db`, whose ROR tables are empty, and returns the number of resources.
    ///
    /// The search index's secondary B-trees are dropped during the insert and rebuilt after: each is then sorted
    /// once instead of taking one random insert per row (7 per row). Parsing and indexing run on every core; the
    /// writes stay on this connection. Every seed is version 1.
    /// `progress` receives the files stored so far and their number (then the index rebuild, the last step).
    static func load(
        _ files: [URL],
        into repository: ResourceRepository,
        db: Database,
        progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> Int {
        guard !files.isEmpty else { return 0 }
        repository.resourcesChanged(in: db)
        let indexes = try Row.fetchAll(
            db,
            sql: """
                SELECT name, sql FROM sqlite_master
                WHERE type = 'index' AND tbl_name IN ('fhir_index', 'fhir_resource') AND sql IS NOT NULL ORDER BY name
                """
        ).map { (name: $0["name"] as String, sql: $0["sql"] as String) }
        for index in indexes { try db.execute(sql: "DROP INDEX \(index.name)") }
        var count = 0
        for file in files {
            let data = try Data(contentsOf: file)
            // Read as written: the stored resources keep the seed file's member order.
            let object: JSONObject
            do {
                guard case .object(let read) = try JSON(parsing: data) else {
                    throw ResourceError("\(file.path): not a JSON object")
                }
                object = read
            } catch let error as JSON.ParseError {
                throw ResourceError("\(file.path): not a JSON object: \(error)")
            }
            let resources: [JSONObject] =
                object["resourceType"]?.string == "Bundle"
                ? (object["entry"]?.array ?? []).compactMap { $0["resource"]?.object }
                : [object]
            let prepared = PreparedBatch(count: resources.count)
            DispatchQueue.concurrentPerform(iterations: resources.count) { index in
                let resource = resources[index]
                prepared.set(
                    index,
                    Result {
                        do { return try repository.prepare(resource, version: 1) } catch {
                            throw ResourceError(
                                "seed \(file.lastPathComponent) \(resource["resourceType"]?.string ?? "?")/\(resource["id"]?.string ?? "?"): \(error)"
                            )
                        }
                    }
                )
            }
            for result in prepared.results() {
                do {
                    try repository.insert(try result.get(), in: db)
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    let stored = try? result.get().stored
                    throw ResourceError(
                        "seed \(file.lastPathComponent): \(stored?.type ?? "?")/\(stored?.id ?? "?") appears twice in the dataset"
                    )
                }
            }
            count += resources.count
            progress(files.firstIndex(of: file).map { $0 + 1 } ?? files.count, files.count)
        }
        for index in indexes { try db.execute(sql: index.sql) }
        // Statistics for the query planner (index choice on fhir_index).
        try SandboxStore.analyze(db)
        return count
    }

    // MARK: Prebuilt database

    /// What a prebuilt file must match to stand for the JSON beside it (stored in its `seed_dataset` table).
    func expectedDescription(registry: SearchParameterRegistry) throws -> [String: String] {
        let files = try jsonFiles().map { file -> String in
            let size =
                (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? -1
            return "\(file.lastPathComponent) \(size)"
        }
        return [
            "schema": SandboxStore.schemaIdentifiers.joined(separator: "\n"),
            "indexing": registry.indexingFingerprint,
            "files": files.joined(separator: "\n"),
        ]
    }

    /// Builds `dataset.sqlite` from the JSON files (replacing an older one) and returns the number of resources.
    @discardableResult
    public func prebuild(
        registry: SearchParameterRegistry,
        progress: (_ filesDone: Int, _ files: Int) -> Void = { _, _ in }
    ) throws -> Int {
        let files = try jsonFiles()
        guard !files.isEmpty else { throw ResourceError("\(folder.path): no JSON seed file to prebuild") }
        let description = try expectedDescription(registry: registry)
        var count = 0
        try SandboxStore.build(at: prebuiltFile.path) { store in
            let repository = ResourceRepository(store: store, registry: registry)
            try store.writer.write { db in
                count = try Self.load(files, into: repository, db: db, progress: progress)
                try db.execute(sql: "CREATE TABLE seed_dataset (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                for (key, value) in description {
                    try db.execute(sql: "INSERT INTO seed_dataset (key, value) VALUES (?, ?)", arguments: [key, value])
                }
            }
        }
        return count
    }

    /// Why the prebuilt file cannot stand for the JSON (nil: it can). No prebuilt file at all is a reason too.
    public func prebuiltMismatch(registry: SearchParameterRegistry) throws -> String? {
        guard FileManager.default.fileExists(atPath: prebuiltFile.path) else { return "no \(Self.prebuiltName)" }
        var configuration = Configuration()
        configuration.readonly = true
        let stored: [String: String]
        do {
            let queue = try DatabaseQueue(path: prebuiltFile.path, configuration: configuration)
            defer { try? queue.close() }
            stored = try queue.read { db in
                guard try db.tableExists("seed_dataset") else { return [:] }
                return Dictionary(
                    uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM seed_dataset").map {
                        ($0["key"] as String, $0["value"] as String)
                    }
                )
            }
        } catch {
            return "\(Self.prebuiltName) is not readable: \(error)"
        }
        let expected = try expectedDescription(registry: registry)
        for key in ["files", "schema", "indexing"] where stored[key] != expected[key] {
            switch key {
            case "files": return "the JSON files changed since \(Self.prebuiltName) was built (names or sizes)"
            case "schema":
                return "\(Self.prebuiltName) was built by another version of the sandbox (database migrations differ)"
            default: return "\(Self.prebuiltName) was indexed with other search parameters"
            }
        }
        return nil
    }
}

/// Results of a parallel preparation, one slot per input (each slot written by exactly one iteration).
final class PreparedBatch: @unchecked Sendable {
    private var slots: [Result<ResourceRepository.PreparedResource, any Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<ResourceRepository.PreparedResource, any Error>) {
        lock.lock()
        slots[index] = result
        lock.unlock()
    }

    func results() -> [Result<ResourceRepository.PreparedResource, any Error>] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}

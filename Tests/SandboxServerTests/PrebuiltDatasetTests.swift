import Foundation
import GRDB
import Logging
import RORFHIR
import Store
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// `Seeds/ror/dataset.sqlite`: a new data folder starts as a copy of it, only while it stands for the JSON beside it.
@Suite struct PrebuiltDatasetTests {
    static func generated(establishments: Int = 3) throws -> (seeds: URL, dataset: RORSeedDataset, count: Int) {
        let seeds = try SharedPKI.emptySeeds()
        let dataset = RORSeedDataset(seeds: seeds)
        try FileManager.default.createDirectory(at: dataset.folder, withIntermediateDirectories: true)
        let count = try RORDatasetGenerator.write(establishments: establishments, seed: 11, to: dataset.folder)
        return (seeds, dataset, count)
    }

    /// A sandbox on a new data folder (not started).
    static func sandbox(seeds: URL, mode: SandboxStore.InstallMode = .overlay) throws -> Sandbox {
        var configuration = SandboxConfiguration()
        configuration.prebuiltMode = mode
        configuration.dataDirectory = SharedPKI.directory.appendingPathComponent("data-\(UUID().uuidString)")
        configuration.pkiDirectory = SharedPKI.pki.directory
        configuration.keyAlgorithm = .p256
        configuration.seedsDirectory = seeds
        configuration.printBanner = false
        var logger = Logger(label: "prebuilt-under-test")
        logger.logLevel = .critical
        return try Sandbox(configuration: configuration, logger: logger)
    }

    static func count(_ sandbox: Sandbox, where condition: String = "1") throws -> Int {
        try sandbox.store.writer.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM fhir_resource WHERE \(condition)") ?? 0
        }
    }

    @Test func newDataFolderStartsFromThePrebuiltDatabase() throws {
        let (seeds, dataset, written) = try Self.generated()
        #expect(try dataset.prebuiltMismatch(registry: RORSearchParameters.registry) == "no dataset.sqlite")
        #expect(try dataset.prebuild(registry: RORSearchParameters.registry) == written)
        #expect(try dataset.prebuiltMismatch(registry: RORSearchParameters.registry) == nil)

        // The JSON garbled at the same size: a start that parsed it would fail, so this one used the copy.
        let json = dataset.folder.appendingPathComponent("dataset.json")
        let original = try Data(contentsOf: json)
        try Data(repeating: 0x20, count: original.count).write(to: json)
        let fromCopy = try Self.sandbox(seeds: seeds)
        #expect(try Self.count(fromCopy) == written)
        // Searchable at once: the copy carries the index.
        let hospitals = try fromCopy.store.writer.read {
            try Int.fetchOne(
                $0,
                sql:
                    "SELECT COUNT(*) FROM fhir_index WHERE type = 'Organization' AND param = 'name' AND text LIKE 'centre hospitalier%'"
            )
        }
        #expect(hospitals ?? 0 > 0)

        // Edited JSON (another size): the prebuilt file no longer stands for it and the JSON is what is served.
        let edited = String(decoding: original, as: UTF8.self).replacingOccurrences(
            of: "SANDBOX",
            with: "SANDBOX RENOMME"
        )
        try Data(edited.utf8).write(to: json)
        #expect(
            try dataset.prebuiltMismatch(registry: RORSearchParameters.registry)?.contains("JSON files changed") == true
        )
        let fromJSON = try Self.sandbox(seeds: seeds)
        #expect(try Self.count(fromJSON) == written)
        #expect(try Self.count(fromJSON, where: "CAST(json AS TEXT) LIKE '%RENOMME%'") > 0)
    }

    /// Index rows made with other search parameters (another sandbox version) are not reused.
    @Test func prebuiltFromOtherSearchParametersIsNotUsed() throws {
        let (_, dataset, _) = try Self.generated(establishments: 1)
        try dataset.prebuild(registry: RORSearchParameters.registry)
        var other = RORSearchParameters.registry
        other.parameters["Location"]?["near-capacity"] = .init(
            "near-capacity",
            .number,
            paths: ["extension.valueInteger"]
        )
        #expect(try dataset.prebuiltMismatch(registry: other)?.contains("other search parameters") == true)
        // Built by a sandbox with other migrations.
        let queue = try DatabaseQueue(path: dataset.prebuiltFile.path)
        try queue.write {
            try $0.execute(sql: "UPDATE seed_dataset SET value = value || '\nv99-future' WHERE key = 'schema'")
        }
        try queue.close()
        #expect(
            try dataset.prebuiltMismatch(registry: RORSearchParameters.registry)?.contains(
                "another version of the sandbox"
            ) == true
        )
        // A file that is not a prebuilt dataset.
        try Data("not a database".utf8).write(to: dataset.prebuiltFile)
        #expect(try dataset.prebuiltMismatch(registry: RORSearchParameters.registry)?.contains("not readable") == true)
    }

    /// Nothing to prebuild is an error naming the folder; a failed build leaves no file behind.
    @Test func prebuildErrors() throws {
        let dataset = RORSeedDataset(seeds: try SharedPKI.emptySeeds())
        #expect { try dataset.prebuild(registry: RORSearchParameters.registry) } throws: {
            "\($0)".contains("no JSON seed file")
        }
        try FileManager.default.createDirectory(at: dataset.folder, withIntermediateDirectories: true)
        try Data(
            #"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Location", "id": "a"}}, {"resource": {"resourceType": "Location", "id": "a"}}]}"#
                .utf8
        )
        .write(to: dataset.folder.appendingPathComponent("dataset.json"))
        #expect { try dataset.prebuild(registry: RORSearchParameters.registry) } throws: {
            "\($0)".contains("Location/a appears twice")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dataset.folder.path) == ["dataset.json"])
    }

    /// Installing never replaces an existing database, and an unreadable source is named.
    @Test func installNeverOverwrites() throws {
        let (_, dataset, _) = try Self.generated(establishments: 1)
        try dataset.prebuild(registry: RORSearchParameters.registry)
        let folder = try SharedPKI.emptySeeds()
        let target = folder.appendingPathComponent("sandbox.sqlite").path
        try SandboxStore.install(prebuilt: dataset.prebuiltFile.path, at: target)
        let installed = try SandboxStore.open(path: target)
        #expect(try installed.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM fhir_resource") } ?? 0 > 0)
        #expect { try SandboxStore.install(prebuilt: dataset.prebuiltFile.path, at: target) } throws: {
            "\($0)".contains("cannot create")
        }
        #expect {
            try SandboxStore.install(prebuilt: folder.appendingPathComponent("missing").path, at: target + "2")
        } throws: {
            "\($0)".contains("cannot read")
        }
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("installing") }
                .isEmpty
        )
    }

    /// Where two listings first differ, 40 characters before and 60 after.
    static func firstDifference(_ left: [String], _ right: [String]) -> String {
        guard let (a, b) = zip(left, right).first(where: { $0 != $1 }) else { return "" }
        let same = zip(a, b).prefix { $0 == $1 }.count
        return "\(a.dropFirst(same - 40).prefix(100))\n\(b.dropFirst(same - 40).prefix(100))"
    }

    /// Every resource as stored, in order: what two data folders are compared by.
    static func resources(_ sandbox: Sandbox) throws -> [String] {
        try sandbox.store.writer.read {
            try String.fetchAll(
                $0,
                sql: "SELECT type || '/' || id || ' ' || CAST(json AS TEXT) FROM fhir_resource ORDER BY type, id"
            )
        }
    }

    /// Data folders are page overlays over the prebuilt file by default: each keeps its own writes, the prebuilt file
    /// is never written, and a reset brings a folder back to the seeds exactly. `--prebuilt copy` makes a copy.
    @Test func dataFoldersOverOnePrebuiltDatabaseKeepTheirWritesApart() throws {
        let (seeds, dataset, written) = try Self.generated(establishments: 2)
        try dataset.prebuild(registry: RORSearchParameters.registry)
        let prebuilt = try Data(contentsOf: dataset.prebuiltFile)
        let first = try Self.sandbox(seeds: seeds)
        let second = try Self.sandbox(seeds: seeds)
        let firstPath = first.configuration.dataDirectory.appendingPathComponent("sandbox.sqlite").path
        #expect(PageOverlay.isOverlay(database: firstPath))
        let seeded = try Self.resources(first)
        #expect(seeded.count == written)

        try first.store.writer.write { db in
            try db.execute(sql: "DELETE FROM fhir_index WHERE type = 'Organization'")
            try db.execute(sql: "DELETE FROM fhir_resource WHERE type = 'Organization'")
            // A resource changed and one created, as writes leave them (index rows included).
            try db.execute(
                sql: """
                    UPDATE fhir_resource SET version = version + 1, last_updated = '2030-01-01T00:00:00.000Z',
                        json = CAST('{"resourceType":"Location"}' AS BLOB) WHERE type = 'Location'
                    """
            )
            try db.execute(
                sql: """
                    INSERT INTO fhir_resource (type, id, version, last_updated, json)
                        VALUES ('Location', 'created', 1, '2030-01-01T00:00:00.000Z', CAST('{}' AS BLOB));
                    INSERT INTO fhir_index (type, id, param, code) VALUES ('Location', 'created', 'status', 'active');
                    """
            )
        }
        try first.store.writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        #expect(try Self.count(first, where: "type = 'Organization'") == 0)
        #expect(try Self.resources(second) == seeded)
        #expect(try Data(contentsOf: dataset.prebuiltFile) == prebuilt, "the prebuilt file was written")

        try first.reset(all: false)
        #expect(
            try first.store.writer.read {
                try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM fhir_index WHERE id = 'created'")
            } == 0
        )
        let indexRows = "SELECT COUNT(*) || ' ' || total(number) FROM fhir_index"
        #expect(
            try first.store.writer.read { try String.fetchOne($0, sql: indexRows) }
                == second.store.writer.read { try String.fetchOne($0, sql: indexRows) }
        )
        let reset = try Self.resources(first)
        #expect(reset == seeded, "\(Self.firstDifference(reset, seeded))")
        #expect(try Data(contentsOf: dataset.prebuiltFile) == prebuilt)

        let copied = try Self.sandbox(seeds: seeds, mode: .copy)
        let copiedPath = copied.configuration.dataDirectory.appendingPathComponent("sandbox.sqlite").path
        #expect(!PageOverlay.isOverlay(database: copiedPath))
        #expect(try Self.resources(copied) == seeded)
    }
}

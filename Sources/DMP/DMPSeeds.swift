import Foundation
import SOAPCore

extension DMPService {
    /// The structure the seeded documents are recorded as submitted by (the demo centre, `insi-lps`'s OU).
    public static let seedStructure = "1690099990"

    /// `Seeds/dmp/records.json` (the DMPs), then each `Seeds/dmp/documents/*.xml` — an ITI-41
    /// `ProvideAndRegisterDocumentSetRequest` with its documents inline — stored by the same checks as a client's
    /// submission, on first start or, with `replace`, in place of everything (reset). Returns the DMPs loaded.
    @discardableResult
    public func loadSeeds(from seeds: URL?, replace: Bool) throws -> Int {
        let loaded = try records.loadSeeds(from: seeds, replace: replace)
        guard replace || loaded > 0, let folder = seeds?.appendingPathComponent("dmp/documents") else { return loaded }
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        for file in files.filter({ $0.pathExtension == "xml" }).sorted(by: { $0.path < $1.path }) {
            let submission = try HardenedXMLParser(maximumBytes: 16 << 20).parse(Data(contentsOf: file))
            guard
                let patient = submission.descendants.first(where: {
                    $0.attributes["identificationScheme"] == XDS.Scheme.documentPatientId
                })?.attributes["value"].flatMap(XDS.patient)
            else {
                throw SeedError(file: file.lastPathComponent, reason: "no document entry patientId")
            }
            let errors = try documentStore.provideAndRegister(
                submission,
                patient: patient,
                structure: Self.seedStructure,
                requiresSignature: false
            )
            guard errors.isEmpty else {
                throw SeedError(
                    file: file.lastPathComponent,
                    reason: errors.map { "\($0.code): \($0.context)" }.joined(separator: "; ")
                )
            }
        }
        return loaded
    }

    public struct SeedError: Error, CustomStringConvertible {
        public var file: String
        public var reason: String
        public var description: String { "Seeds/dmp/documents/\(file): \(reason)" }
    }
}

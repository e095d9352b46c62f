import FHIRCore
import Foundation
import RORFHIR
import Testing

@testable import SandboxTestSupport

/// The ROR profile rules (`Seeds/terminology/ror-profiles.json`): the seeds and the IG's examples conform; mutated
/// copies are refused with the element's FHIRPath.
@Suite("ROR profile validation")
struct RORProfileTests {
    static let validator = try! ProfileValidator.load(
        from: SharedPKI.repositorySeeds.appendingPathComponent("terminology")
    )
    static let examples = Reference.file("ror-fhir/examples")

    static func seeds() throws -> [[String: Any]] {
        let data = try Data(contentsOf: SharedPKI.repositorySeeds.appendingPathComponent("ror/dataset.json"))
        let bundle = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (bundle["entry"] as! [[String: Any]]).map { entry in
            var resource = entry["resource"] as! [String: Any]
            // As stored: the server sets meta.lastUpdated.
            var meta = resource["meta"] as? [String: Any] ?? [:]
            meta["lastUpdated"] = "2026-11-22T10:00:00.000+00:00"
            resource["meta"] = meta
            return resource
        }
    }

    @Test func rulesCoverEveryServedType() {
        #expect(Set(Self.validator.profiles.keys) == Set(RORSearchParameters.registry.resourceTypes))
    }

    @Test func everySeedResourceConforms() throws {
        let resources = try Self.seeds()
        #expect(resources.count > 100)
        for resource in resources {
            let issues = Self.validator.validate(resource)
            #expect(issues.isEmpty, "\(resource["resourceType"]!)/\(resource["id"]!): \(issues.map(\.diagnostics))")
        }
    }

    @Test(.enabled(if: Reference.exists(examples), "needs the ROR IG's examples"))
    func theIGExamplesConform() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.examples, includingPropertiesForKeys: nil)
        #expect(files.contains { $0.pathExtension == "json" })
        for file in files where file.pathExtension == "json" {
            let resource = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            let issues = Self.validator.validate(resource)
            #expect(issues.isEmpty, "\(file.lastPathComponent): \(issues.map(\.diagnostics))")
        }
    }

    struct Mutation: Sendable, CustomStringConvertible {
        var label: String
        var type: String
        var change: @Sendable (inout [String: Any]) -> Void
        var code: String
        var expression: String
        var description: String { label }
    }

    static let sd = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"
    static let capacity = sd + "ror-location-supported-capacity"

    static func mapCapacity(_ resource: inout [String: Any], _ transform: ([[String: Any]]) -> [[String: Any]]) {
        resource["extension"] = (resource["extension"] as! [[String: Any]]).map { ext in
            guard ext["url"] as? String == capacity else { return ext }
            var copy = ext
            copy["extension"] = transform(ext["extension"] as! [[String: Any]])
            return copy
        }
    }

    static let mutations: [Mutation] = [
        Mutation(
            label: "HealthcareService without identifier",
            type: "HealthcareService",
            change: { $0["identifier"] = nil },
            code: "required",
            expression: "HealthcareService.identifier"
        ),
        Mutation(
            label: "HealthcareService without sensitive-unit",
            type: "HealthcareService",
            change: {
                $0["extension"] = ($0["extension"] as! [[String: Any]]).filter {
                    $0["url"] as? String != sd + "ror-healthcareservice-sensitive-unit"
                }
            },
            code: "required",
            expression: "HealthcareService.extension.where(url='\(sd)ror-healthcareservice-sensitive-unit')"
        ),
        Mutation(
            label: "HealthcareService providedBy a Location",
            type: "HealthcareService",
            change: { $0["providedBy"] = ["reference": "Location/x"] },
            code: "value",
            expression: "HealthcareService.providedBy.reference"
        ),
        Mutation(
            label: "HealthcareService with an unknown activity field",
            type: "HealthcareService",
            change: { $0["type"] = [["coding": [["system": "x", "code": "99"]]]] },
            code: "code-invalid",
            expression: "HealthcareService.type.coding.code"
        ),
        Mutation(
            label: "Location with a wrong capacity status",
            type: "Location",
            change: {
                mapCapacity(&$0) {
                    $0.map {
                        $0["url"] as? String == "capacityStatus"
                            ? ["url": "capacityStatus", "valueCodeableConcept": ["coding": [["code": "42"]]]] : $0
                    }
                }
            },
            code: "code-invalid",
            expression:
                "Location.extension.where(url='\(capacity)').extension.where(url='capacityStatus').valueCodeableConcept.coding.code"
        ),
        Mutation(
            label: "Location with nbCapacity as text",
            type: "Location",
            change: {
                mapCapacity(&$0) {
                    $0.map {
                        $0["url"] as? String == "nbCapacity" ? ["url": "nbCapacity", "valueInteger": "douze"] : $0
                    }
                }
            },
            code: "value",
            expression: "Location.extension.where(url='\(capacity)').extension.where(url='nbCapacity').valueInteger"
        ),
        Mutation(
            label: "Location indicator without capacityType",
            type: "Location",
            change: { mapCapacity(&$0) { $0.filter { $0["url"] as? String != "capacityType" } } },
            code: "required",
            expression: "Location.extension.where(url='\(capacity)').extension.where(url='capacityType')"
        ),
        Mutation(
            label: "Location with a bad update date",
            type: "Location",
            change: {
                mapCapacity(&$0) {
                    $0.map {
                        $0["url"] as? String == "capacityUpdateDate"
                            ? ["url": "capacityUpdateDate", "valueDateTime": "22/11/2026"] : $0
                    }
                }
            },
            code: "value",
            expression:
                "Location.extension.where(url='\(capacity)').extension.where(url='capacityUpdateDate').valueDateTime"
        ),
        Mutation(
            label: "Location with two creation dates",
            type: "Location",
            change: {
                $0["extension"] =
                    ($0["extension"] as! [[String: Any]]) + [
                        ["url": sd + "ror-meta-creation-date", "valueDateTime": "2020-01-01"]
                    ]
            },
            code: "structure",
            expression: "Location.extension.where(url='\(sd)ror-meta-creation-date')"
        ),
        Mutation(
            label: "Practitioner without idNatPs",
            type: "Practitioner",
            change: { $0["identifier"] = [["system": "other", "value": "1"]] },
            code: "required",
            expression: "Practitioner.identifier.where(system='urn:oid:1.2.250.1.71.4.2.1')"
        ),
        Mutation(
            label: "PractitionerRole without practitioner",
            type: "PractitionerRole",
            change: { $0["practitioner"] = nil },
            code: "required",
            expression: "PractitionerRole.practitioner.reference"
        ),
        Mutation(
            label: "Organization without lastUpdated",
            type: "Organization",
            change: { $0["meta"] = [:] as [String: Any] },
            code: "required",
            expression: "Organization.meta.lastUpdated"
        ),
    ]

    @Test(arguments: mutations)
    func mutatedCopiesAreRefusedWithTheirExpression(_ mutation: Mutation) throws {
        var resource = try #require(try Self.seeds().first { $0["resourceType"] as? String == mutation.type })
        #expect(Self.validator.validate(resource).isEmpty)
        mutation.change(&resource)
        let issues = Self.validator.validate(resource)
        #expect(
            issues.contains { $0.code == mutation.code && $0.expression == mutation.expression },
            "\(issues.map { "\($0.code) \($0.expression)" })"
        )
        // Told which top-level element changed, the validator still finds it; told another one changed, it checks
        // only that one (the capacity feed's contract: the rest is the stored, validated version).
        let element = String(mutation.expression.split(separator: ".")[1])
        let partial = Self.validator.validate(resource, changed: [element])
        #expect(
            partial.contains { $0.code == mutation.code && $0.expression == mutation.expression },
            "\(element): \(partial.map(\.expression))"
        )
        #expect(
            Self.validator.validate(resource, changed: [element == "extension" ? "identifier" : "extension"]).isEmpty
        )
    }
}

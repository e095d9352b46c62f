import FHIRCore
import Foundation

/// `GET /ws-diffusion-fhir/metadata`: modelled on the production CapabilityStatement "ROR 3.2" (HAPI FHIR 6.4.4):
/// search-type and read on the five ROR resources, the search parameters this sandbox really implements (generated
/// from the registry, so it never claims more), `_include`/`_revinclude` with `*` and `:iterate`.
enum RORCapabilityStatement {
    /// `OperationDefinition/{id}` (read), for the system operations the server declares.
    static var operationDefinitions: [String: [String: Any]] {
        [
            "export": [
                "resourceType": "OperationDefinition", "id": "export", "name": "export", "status": "active",
                "kind": "operation",
                "code": "export", "system": true, "type": false, "instance": false, "affectsState": false,
                "description":
                    "Bulk export (FHIR Bulk Data 2.0): 202 + Content-Location to $export-poll-status, then a manifest of $export-get-file URLs",
                "parameter": [
                    ["name": "_outputFormat", "use": "in", "min": 0, "max": "1", "type": "string"],
                    ["name": "_since", "use": "in", "min": 0, "max": "1", "type": "instant"],
                    ["name": "_type", "use": "in", "min": 0, "max": "*", "type": "string"],
                    ["name": "_typeFilter", "use": "in", "min": 0, "max": "*", "type": "string"],
                    ["name": "includeAssociatedData", "use": "in", "min": 0, "max": "*", "type": "code"],
                ],
            ]
        ]
    }

    static func json(registry: SearchParameterRegistry) -> Data {
        let resources: [[String: Any]] = registry.resourceTypes.map { type in
            let parameters = (registry.parameters[type] ?? [:]).values.sorted { $0.code < $1.code }
            var searchParam: [[String: Any]] = [["name": "_id", "type": "token"]]
            searchParam += parameters.map { ["name": $0.code, "type": $0.type.rawValue] }
            return [
                "type": type,
                "profile": "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-\(type.lowercased())",
                "interaction": [["code": "read"], ["code": "search-type"]],
                "versioning": "versioned",
                "readHistory": false,
                "searchInclude": ["*"] + parameters.filter { $0.type == .reference }.map { "\(type):\($0.code)" },
                "searchRevInclude": ["*"],
                "searchParam": searchParam,
            ]
        }
        let statement: [String: Any] = [
            "resourceType": "CapabilityStatement",
            "id": "esante-sandbox-ror",
            "name": "ROR 3.2 (esante-sandbox)",
            "title": "esante-sandbox stand-in for the national ROR FHIR API (MEV3)",
            "status": "active",
            "date": "2026-11-22",
            "publisher": "esante-sandbox (not the ANS)",
            "kind": "instance",
            "software": ["name": "esante-sandbox", "version": "0.1.0"],
            "implementation": ["description": "ROR 3.2 stand-in", "url": "/ws-diffusion-fhir"],
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [
                [
                    "mode": "server",
                    "security": ["cors": false, "service": [["text": "OAuth"]]],
                    "resource": resources,
                    "operation": [["name": "export", "definition": "OperationDefinition/export"]],
                    "searchParam": [
                        ["name": "_count", "type": "number", "documentation": "200 per page by default, 1000 at most"],
                        ["name": "_sort", "type": "string"],
                        ["name": "_include", "type": "string"],
                        ["name": "_revinclude", "type": "string"],
                        ["name": "_summary", "type": "token"],
                        ["name": "_elements", "type": "string"],
                        ["name": "_total", "type": "token"],
                        [
                            "name": "_filter", "type": "special",
                            "documentation":
                                "and/or/not, parentheses, eq ne gt lt ge le sa eb sw co, chained parameters",
                        ],
                    ],
                ]
            ],
        ]
        return
            (try? JSONSerialization.data(withJSONObject: statement, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
    }
}

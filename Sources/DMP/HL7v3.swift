import Foundation
import SOAPCore

/// The HL7 v3 messages of the DMP's patients service: what the sandbox reads in a request and the acknowledgements
/// it writes. The DMP's own schemas are not public; the element names are HL7 v3's (PRPA topic) and the reading is
/// liberal (elements found by name below the message), as the examples of public DMP clients use them.
enum HL7v3 {
    static let namespace = "urn:hl7-org:v3"
    /// The DMP's device id in HL7 v3 messages (sender of its answers).
    static let dmpRoot = "1.2.250.1.213.4.1.1.1"

    /// The patient a request is about: the `id`/`value` with an INS OID, below `patientIdentifier` (TD0.2) or the
    /// `patient` (TD1.1, TD1.2).
    static func patient(
        in message: SOAPElement,
        operation: DMPService.PatientOperation
    ) throws(DMPFault) -> (ins: String, oid: String) {
        let container: SOAPElement?
        switch operation {
        case .existence:
            guard
                message.descendants.contains(where: { $0.name == "reasonCode" && $0.attributes["code"] == "TEST_EXST" })
            else {
                throw DMPFault(
                    .sender,
                    "InvalidMessage",
                    "TD0.2 needs controlActProcess/reasonCode code=\"TEST_EXST\" (codeSystem 1.2.250.1.213.1.1.4.11)"
                )
            }
            container = message.descendants.first { $0.name == "patientIdentifier" }
        case .creation, .revision:
            container = message.descendants.first { $0.name == "patient" }
        }
        let identifiers =
            container?.descendants.filter { ($0.name == "value" || $0.name == "id") && $0.attributes["root"] != nil }
            ?? []
        guard let identifier = identifiers.first(where: { DMPRecords.insOIDs.contains($0.attributes["root"] ?? "") })
        else {
            throw DMPFault(
                .sender,
                "UnknownPatientIdentifier",
                "no patient identifier with an INS OID (\(DMPRecords.insOIDs.sorted().joined(separator: ", "))) in \(operation.rawValue)"
            )
        }
        let ins = identifier.attributes["extension"] ?? ""
        guard ins.range(of: #"^[12378][0-9]{4}(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}$"#, options: .regularExpression) != nil
        else {
            throw DMPFault(.sender, "InvalidINS", "'\(ins)' is not an INS (13-character matricule and its 2-digit key)")
        }
        return (ins, identifier.attributes["root"]!)
    }

    /// TD1.2: the wanted status — `patient/statusCode` `active` (reactivate) or `completed`/`nullified` (close) —
    /// and an optional closing reason (`reasonCode`'s displayName or code).
    static func revision(in message: SOAPElement) throws(DMPFault) -> (status: DMPRecord.Status, reason: String?) {
        let patient = message.descendants.first { $0.name == "patient" }
        let code = patient?.child("statusCode")?.attributes["code"] ?? ""
        let reason = message.descendants.first { $0.name == "reasonCode" }.map {
            $0.attributes["displayName"] ?? $0.attributes["code"] ?? ""
        }
        switch code {
        case "active": return (.open, nil)
        case "completed", "nullified": return (.closed, reason ?? "")
        default:
            throw DMPFault(
                .sender,
                "InvalidMessage",
                "patient/statusCode must be active (reactivate) or completed (close), not '\(code)'"
            )
        }
    }

    /// The acknowledgement of one request.
    struct Reply {
        var request: SOAPElement
        /// The request's `wsa:MessageID`, answered in `wsa:RelatesTo`.
        var relatesTo: String?

        var requestID: String {
            let id = request.child("id")
            return
                "<id root=\"\(XMLText.escape(id?.attributes["root"] ?? ""))\" extension=\"\(XMLText.escape(id?.attributes["extension"] ?? ""))\"/>"
        }

        func envelope(_ interaction: String, action: String, _ content: String) -> String {
            let stamp = Self.stamp.string(from: Date())
            return """
                <?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="\(SOAPFault.envelopeNamespace)" \
                xmlns:wsa="\(SOAPEndpoint.addressingNamespace)"><soap:Header><wsa:Action>urn:hl7-org:v3:\(action)</wsa:Action>\
                <wsa:MessageID>urn:uuid:\(UUID().uuidString.lowercased())</wsa:MessageID>\
                \(relatesTo.map { "<wsa:RelatesTo>\(XMLText.escape($0))</wsa:RelatesTo>" } ?? "")</soap:Header><soap:Body>\
                <\(interaction) xmlns="\(HL7v3.namespace)" ITSVersion="XML_1.0">\
                <id root="\(HL7v3.dmpRoot)" extension="\(UUID().uuidString.lowercased())"/><creationTime value="\(stamp)"/>\
                <interactionId root="2.16.840.1.113883.1.6" extension="\(interaction)"/><processingCode code="P"/>\
                <processingModeCode code="T"/><acceptAckCode code="NE"/>\
                <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">\
                <id root="\(XMLText.escape(senderRoot))"/></device></receiver>\
                <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="\(HL7v3.dmpRoot)"/>\
                <softwareName>DMP</softwareName></device></sender>\(content)</\(interaction)></soap:Body></soap:Envelope>
                """
        }

        var senderRoot: String {
            request.child("sender")?.descendants.first { $0.name == "id" }?.attributes["root"] ?? ""
        }

        static let stamp: DateFormatter = {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMddHHmmss"
            formatter.timeZone = TimeZone(identifier: "Europe/Paris")
            formatter.locale = Locale(identifier: "en_US_POSIX")
            return formatter
        }()

        func patientXML(_ patient: (ins: String, oid: String)) -> String {
            "<id root=\"\(patient.oid)\" extension=\"\(patient.ins)\"/>"
        }

        /// TD0.2's answer: `queryResponseCode` OK (a DMP exists) or NF; the DMP's status (`registrationEvent/statusCode`
        /// active or completed) and whether the calling structure is authorised on it (the sandbox's own element,
        /// `authorOrPerformer/assignedEntity/code`, since the DMP's form is not public).
        func existence(record: DMPRecord?, structure: String, patient: (ins: String, oid: String)) -> String {
            var subject = ""
            if let record {
                let authorised = record.authorisedStructures.contains(structure)
                subject = """
                    <subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN">\
                    <statusCode code="\(record.status == .open ? "active" : "completed")"/>\
                    <subject1 typeCode="SBJ"><patient classCode="PAT">\(patientXML(patient))\
                    <statusCode code="\(record.status == .open ? "active" : "completed")"/></patient></subject1>\
                    <authorOrPerformer typeCode="AUT"><assignedEntity classCode="ASSIGNED">\
                    <id root="1.2.250.1.71.4.2.2" extension="\(XMLText.escape(structure))"/>\
                    <code code="\(authorised ? "AUTORISATION_VALIDE" : "AUTORISATION_ABSENTE")" codeSystem="urn:esante-sandbox:dmp:authorization"/>\
                    </assignedEntity></authorOrPerformer>\
                    <custodian typeCode="CST"><assignedEntity classCode="ASSIGNED"><id root="\(HL7v3.dmpRoot)"/></assignedEntity></custodian>\
                    </registrationEvent></subject>
                    """
            }
            let queryID = request.descendants.first { $0.name == "queryId" }
            return envelope(
                "PRPA_IN201308UV02",
                action: "PRPA_IN201308UV02",
                """
                <acknowledgement><typeCode code="AA"/><targetMessage>\(requestID)</targetMessage></acknowledgement>\
                <controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPA_TE201308UV02" codeSystem="2.16.840.1.113883.1.6"/>\
                \(subject)<queryAck><queryId root="\(XMLText.escape(queryID?.attributes["root"] ?? ""))" \
                extension="\(XMLText.escape(queryID?.attributes["extension"] ?? ""))"/>\
                <queryResponseCode code="\(record == nil ? "NF" : "OK")"/></queryAck></controlActProcess>
                """
            )
        }

        /// An application acknowledgement `AA`.
        func accepted(_ interaction: String, patient: (ins: String, oid: String)) -> String {
            envelope(
                interaction,
                action: interaction,
                """
                <acknowledgement><typeCode code="AA"/><targetMessage>\(requestID)</targetMessage></acknowledgement>\
                <controlActProcess classCode="CACT" moodCode="EVN"><subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN">\
                <subject1 typeCode="SBJ"><patient classCode="PAT">\(patientXML(patient))</patient></subject1>\
                </registrationEvent></subject></controlActProcess>
                """
            )
        }

        /// An application error `AE` with the DMP's code (`DMPFound`, `DMPClosed`…) in `acknowledgementDetail`.
        func refused(_ interaction: String, code: String, _ text: String, patient: (ins: String, oid: String)) -> String
        {
            envelope(
                interaction,
                action: interaction,
                """
                <acknowledgement><typeCode code="AE"/><targetMessage>\(requestID)</targetMessage>\
                <acknowledgementDetail typeCode="E"><code code="\(code)" codeSystem="1.2.250.1.213.4.1.2.1"/>\
                <text>\(XMLText.escape(text))</text></acknowledgementDetail></acknowledgement>\
                <controlActProcess classCode="CACT" moodCode="EVN"><subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN">\
                <subject1 typeCode="SBJ"><patient classCode="PAT">\(patientXML(patient))</patient></subject1>\
                </registrationEvent></subject></controlActProcess>
                """
            )
        }
    }
}

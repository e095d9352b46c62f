import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import INSi
import NIOCore
import SOAPCore
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

@Suite("INSi teleservice")
struct INSiTests {
    static let autoDN = "CN=INSI-AUTO,OU=1690099990,O=CENTRE DE SANTE SANDBOX,C=FR"

    static func start(
        configure: (inout SandboxConfiguration) -> Void = { _ in },
        dn: String = autoDN
    ) async throws -> (RunningSandbox, ClientFiles) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds, configure: configure)
        let client = try SharedPKI.client(dn)
        try running.whitelist("insi", dn: dn)
        return (running, client)
    }

    static func send(
        _ running: RunningSandbox,
        _ call: INSiCall,
        client: ClientFiles,
        contentType: String? = nil
    ) async throws -> INSiAnswer {
        try await send(
            running,
            body: call.xml,
            client: client,
            contentType: contentType
                ?? "application/soap+xml; charset=utf-8; action=\"\(call.action ?? call.operation.action)\""
        )
    }

    static func send(
        _ running: RunningSandbox,
        body: String,
        client: ClientFiles,
        contentType: String = "application/soap+xml; charset=utf-8"
    ) async throws -> INSiAnswer {
        try INSiAnswer(
            try await running.request(
                "/lps",
                method: .post,
                client: client,
                headers: [.contentType: contentType],
                body: body
            )
        )
    }

    struct TraitsCase: Sendable, CustomStringConvertible {
        var name: String, firstName: String, sex: String, date: String, place: String?
        var code: String, matricule: String?
        var description: String { "\(name) \(firstName) → CR \(code)" }
    }

    static let traitsCases = [
        TraitsCase(
            name: "ADRTROIS",
            firstName: "DOMINIQUE",
            sex: "F",
            date: "1997-02-26",
            place: nil,
            code: "00",
            matricule: "297022A020778"
        ),
        TraitsCase(
            name: "ADRTROIS",
            firstName: "TOUSSAINT",
            sex: "M",
            date: "1960-01-01",
            place: "2B020",
            code: "00",
            matricule: "160012B020777"
        ),
        TraitsCase(
            name: "ECETINSI",
            firstName: "PIERRE-ALAIN",
            sex: "M",
            date: "2009-07-14",
            place: nil,
            code: "00",
            matricule: "1090763220834"
        ),
        TraitsCase(
            name: "ECETINSI",
            firstName: "PIERRE-ALAIN MURIEL FLORIANT",
            sex: "M",
            date: "2009-07-14",
            place: nil,
            code: "00",
            matricule: "1090763220834"
        ),
        TraitsCase(
            name: "TCHITCHI",
            firstName: "OLA",
            sex: "F",
            date: "1936-06-21",
            place: nil,
            code: "01",
            matricule: nil
        ),
        TraitsCase(
            name: "TCHITCHI",
            firstName: "CATARINA",
            sex: "F",
            date: "1936-06-21",
            place: nil,
            code: "00",
            matricule: "2360663220836"
        ),
        TraitsCase(
            name: "ADRTROIS",
            firstName: "DOMINIQUE",
            sex: "M",
            date: "1997-02-26",
            place: nil,
            code: "01",
            matricule: nil
        ),
        TraitsCase(
            name: "ADRTROIS",
            firstName: "DOMINIQUE",
            sex: "F",
            date: "1997-02-26",
            place: "63220",
            code: "01",
            matricule: nil
        ),
        TraitsCase(
            name: "HOUILLES",
            firstName: "PIERRE",
            sex: "M",
            date: "1993-01-27",
            place: nil,
            code: "01",
            matricule: nil
        ),
        TraitsCase(
            name: "DE VINCI",
            firstName: "LEONARDO",
            sex: "M",
            date: "2014-02-01",
            place: nil,
            code: "02",
            matricule: nil
        ),
        TraitsCase(
            name: "DE VINCI",
            firstName: "LEONARDO",
            sex: "M",
            date: "2014-02-01",
            place: "69123",
            code: "00",
            matricule: "1140269123102"
        ),
    ]

    /// Five bytes that are not UTF-8 once stopped the whole server (FoundationXML traps on such an element name):
    /// now a SOAP Fault, and the server answers the next call.
    @Test func aBodyThatIsNotUTF8IsAFaultNotACrash() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let answer = try await running.request(
                "/lps",
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml; charset=utf-8"],
                bytes: [0x3C, 0xC9, 0x78, 0x6D, 0x72]
            )
            // INSi answers its faults with HTTP 500, as the CNAM's service does (see the README).
            #expect(answer.status.code == 500, "\(answer.status)")
            #expect(answer.text.contains("Fault"), "\(answer.text)")
            #expect(answer.text.contains("not UTF-8"), "\(answer.text)")
            #expect(try await running.admin("/admin/health").status == .ok)
        }
    }

    @Test func traitsSearchAnswersEachReturnCode() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            for test in Self.traitsCases {
                var call = INSiCall()
                (call.birthName, call.firstNames, call.sex, call.birthDate, call.birthPlace) = (
                    test.name, [test.firstName], test.sex, test.date, test.place
                )
                let answer = try await Self.send(running, call, client: client)
                #expect(answer.status == .ok, "\(test): \(answer.xml)")
                #expect(answer.code == test.code, "\(test)")
                #expect(answer.matricule == test.matricule, "\(test)")
                if test.code != "00" {
                    #expect(answer.result?.child("INDIVIDU") == nil, "\(test): no INDIVIDU unless CR 00")
                }
            }
            // CR 00 in detail: key, OID, INSHISTO, traits in upper case with the whole first-name list.
            var call = INSiCall()
            (call.birthName, call.firstNames, call.sex, call.birthDate) = (
                "ECETINSI", ["PIERRE-ALAIN"], "M", "2009-07-14"
            )
            let answer = try await Self.send(running, call, client: client)
            let individual = try #require(answer.result?.child("INDIVIDU"))
            #expect(individual.path("INSACTIF", "IdIndividu", "Cle")?.text == "89")
            #expect(individual.path("INSACTIF", "OID")?.text == "1.2.250.1.213.1.4.8")
            #expect(individual.path("INSHISTO", "IdIndividu", "NumIdentifiant")?.text == "2090763220834")
            #expect(individual.path("INSHISTO", "DateFin")?.text == "2019-02-28")
            #expect(individual.path("TIQ", "ListePrenom")?.text == "PIERRE-ALAIN MURIEL FLORIANT")
            #expect(individual.children.map(\.name) == ["INSACTIF", "INSHISTO", "TIQ"])
            // An NIA answers with the NIA OID.
            (call.birthName, call.firstNames, call.sex, call.birthDate) = (
                "PROVISOIRE", ["MATRICULE"], "M", "2009-07-01"
            )
            #expect(
                try await Self.send(running, call, client: client).result?.path("INDIVIDU", "INSACTIF", "OID")?.text
                    == "1.2.250.1.213.1.4.9"
            )
        }
    }

    /// The CNDA-mandated loop: each first name in turn until CR 00, then all of them joined by spaces.
    static func cndaLoop(
        _ running: RunningSandbox,
        client: ClientFiles,
        name: String,
        firstNames: [String],
        sex: String,
        date: String
    ) async throws -> (code: String?, calls: Int) {
        var calls = 0
        for firstName in firstNames + (firstNames.count > 1 ? [firstNames.joined(separator: " ")] : []) {
            var call = INSiCall()
            (call.birthName, call.firstNames, call.sex, call.birthDate) = (name, [firstName], sex, date)
            calls += 1
            let answer = try await send(running, call, client: client)
            if answer.code != "01" { return (answer.code, calls) }
        }
        return ("01", calls)
    }

    @Test func firstNameLoopOfACNDAConformantClient() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let tchitchi = try await Self.cndaLoop(
                running,
                client: client,
                name: "TCHITCHI",
                firstNames: ["OLA", "CATARINA"],
                sex: "F",
                date: "1936-06-21"
            )
            #expect(tchitchi.code == "00" && tchitchi.calls == 2)
            let houilles = try await Self.cndaLoop(
                running,
                client: client,
                name: "HOUILLES",
                firstNames: ["PIERRE", "PAUL", "JACQUES"],
                sex: "M",
                date: "1993-01-27"
            )
            #expect(
                houilles.code == "01" && houilles.calls == 4,
                "three first names then the list: four calls, all CR 01"
            )
            let nessi = try await Self.cndaLoop(
                running,
                client: client,
                name: "NESSI",
                firstNames: ["MICHELANGELO", "ANTHONY"],
                sex: "M",
                date: "2010-08-07"
            )
            #expect(nessi.code == "00" && nessi.calls == 1)
        }
    }

    struct FaultCase: Sendable, CustomStringConvertible {
        var label: String
        var call: @Sendable () -> INSiCall
        var errorCode: String
        var subcode: String?
        var reasonContains: String
        var description: String { label }
    }

    static let faultCases: [FaultCase] = [
        FaultCase(
            label: "unknown IDAM",
            call: {
                var c = INSiCall()
                c.idam = "INCONNU-42"
                return c
            },
            errorCode: "desir_550",
            subcode: "env:siram_100",
            reasonContains: "progiciel"
        ),
        FaultCase(
            label: "no MessageID",
            call: {
                var c = INSiCall()
                c.messageID = nil
                return c
            },
            errorCode: "sbx_entete",
            reasonContains: "MessageID"
        ),
        FaultCase(
            label: "MessageID not a uuid",
            call: {
                var c = INSiCall()
                c.messageID = "42"
                return c
            },
            errorCode: "sbx_entete",
            reasonContains: "MessageID"
        ),
        FaultCase(
            label: "ContexteBAM version",
            call: {
                var c = INSiCall()
                c.bamVersion = "01_01"
                return c
            },
            errorCode: "sbx_entete",
            reasonContains: "01_02"
        ),
        FaultCase(
            label: "Action of the other operation",
            call: {
                var c = INSiCall()
                c.action = INSiOperation.vitale.action
                return c
            },
            errorCode: "sbx_action",
            reasonContains: "RECSANSVITALE"
        ),
        FaultCase(
            label: "unknown body element",
            call: {
                var c = INSiCall()
                c.body = "<x:Autre xmlns:x=\"urn:x\"/>"
                return c
            },
            errorCode: "sbx_operation",
            reasonContains: "Autre"
        ),
        FaultCase(
            label: "lower-case birth name",
            call: {
                var c = INSiCall()
                c.birthName = "Adrtrois"
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "NomNaissance"
        ),
        FaultCase(
            label: "accented first name",
            call: {
                var c = INSiCall()
                c.firstNames = ["DOMINIQUÉ"]
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "Prenom"
        ),
        FaultCase(
            label: "two first names in one call",
            call: {
                var c = INSiCall()
                c.firstNames = ["DOMINIQUE", "MARIE"]
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "un seul prénom"
        ),
        FaultCase(
            label: "sex I",
            call: {
                var c = INSiCall()
                c.sex = "I"
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "Sexe"
        ),
        FaultCase(
            label: "30 February",
            call: {
                var c = INSiCall()
                c.birthDate = "1997-02-30"
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "DateNaissance"
        ),
        FaultCase(
            label: "COG code",
            call: {
                var c = INSiCall()
                c.birthPlace = "PARIS"
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "LieuNaissance"
        ),
        FaultCase(
            label: "missing birth date",
            call: {
                var c = INSiCall()
                c.birthDate = ""
                return c
            },
            errorCode: "sbx_requete",
            reasonContains: "DateNaissance"
        ),
        FaultCase(
            label: "CPS assertion without secteurActivite",
            call: {
                var c = INSiCall()
                c.security = INSiCall.professionalAssertion(leaving: "secteurActivite")
                return c
            },
            errorCode: "sbx_assertion",
            reasonContains: "secteurActivite"
        ),
        FaultCase(
            label: "Vitale search without the card assertion",
            call: {
                INSiCall.vitale(
                    matricule: "2181213055202",
                    name: "JUMEAU",
                    birthDate: "2018-12-24",
                    rank: 2,
                    assertion: nil
                )
            },
            errorCode: "sbx_vitale",
            reasonContains: "assertion"
        ),
        FaultCase(
            label: "stale card assertion",
            call: {
                INSiCall.vitale(
                    matricule: "2181213055202",
                    name: nil,
                    birthDate: nil,
                    rank: 2,
                    assertion: INSiCall.cardAssertion(notOnOrAfter: Date().addingTimeInterval(-60))
                )
            },
            errorCode: "sbx_vitale",
            reasonContains: "périmée"
        ),
    ]

    @Test(arguments: faultCases)
    func eachCheckAnswersASOAPFault(_ test: FaultCase) async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let call = test.call()
            let answer = try await Self.send(running, call, client: client)
            #expect(answer.status == .internalServerError, "\(answer.xml)")
            #expect(answer.errorCode == test.errorCode, "\(answer.xml)")
            #expect(answer.subcode == (test.subcode ?? "env:\(test.errorCode)"))
            #expect(answer.reason.contains(test.reasonContains), "\(answer.reason)")
            #expect(answer.fault?.path("Detail", "Erreur")?.attributes["messageID"] == call.messageID)
            #expect(answer.fault?.path("Reason", "Text")?.attributes["lang"] == "fr")
        }
    }

    @Test func certificateCommonNameMustBeINSIAutoOrManu() async throws {
        let (running, _) = try await Self.start()
        try await running.whileRunning {
            let other = "CN=INSI-SANDBOX,OU=1690099990,O=CENTRE DE SANTE SANDBOX,C=FR"
            let client = try SharedPKI.client(other)
            try running.whitelist("insi", dn: other)
            let refused = try await Self.send(running, INSiCall(), client: client)
            #expect(refused.status == .internalServerError)
            #expect(refused.errorCode == "DESIR_560")
            #expect(refused.reason == "Niveau d'accès insuffisant")
            // CPx mode: the CPS assertion authenticates the professional, whatever the TLS certificate's CN.
            var cpx = INSiCall()
            cpx.security = INSiCall.professionalAssertion()
            #expect(try await Self.send(running, cpx, client: client).code == "00")
            // INSI-MANU is accepted as INSI-AUTO.
            let manu = "CN=INSI-MANU,OU=1690099990,O=CENTRE DE SANTE SANDBOX,C=FR"
            let manual = try SharedPKI.client(manu)
            try running.whitelist("insi", dn: manu)
            #expect(try await Self.send(running, INSiCall(), client: manual).code == "00")
        }
    }

    @Test func vitaleCardSearch() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            // Twins on one card are told apart by their birth rank.
            let second = try await Self.send(
                running,
                .vitale(matricule: "2181213055202", name: "JUMEAU", birthDate: "2018-12-24", rank: 2),
                client: client
            )
            #expect(second.code == "00")
            #expect(second.result?.path("INDIVIDU", "TIQ", "ListePrenom")?.text == "SACHA")
            let first = try await Self.send(
                running,
                .vitale(matricule: "2181213055201", name: nil, birthDate: nil, rank: 1),
                client: client
            )
            #expect(first.result?.path("INDIVIDU", "TIQ", "ListePrenom")?.text == "ALEXANDRA")
            // Wrong rank, wrong name, a person on no card: CR 01.
            #expect(
                try await Self.send(
                    running,
                    .vitale(matricule: "2181213055202", name: nil, birthDate: nil, rank: 1),
                    client: client
                ).code == "01"
            )
            #expect(
                try await Self.send(
                    running,
                    .vitale(matricule: "2181213055202", name: "DUPONT", birthDate: nil, rank: 2),
                    client: client
                ).code == "01"
            )
            #expect(
                try await Self.send(
                    running,
                    .vitale(matricule: "1090763220834", name: nil, birthDate: nil, rank: 1),
                    client: client
                ).code == "01"
            )
            // The card context must name the same beneficiary.
            var mismatch = INSiCall.vitale(matricule: "2181213055202", name: nil, birthDate: nil, rank: 2)
            mismatch.coverage =
                "<bam:BENEFICIAIRE><bam:Nir><bam:Num>2181213055201</bam:Num></bam:Nir></bam:BENEFICIAIRE>"
            let refused = try await Self.send(running, mismatch, client: client)
            #expect(refused.errorCode == "sbx_vitale")
            #expect(refused.reason.contains("2181213055201"))
        }
    }

    @Test func realisticModeAnswersInsi101ForNobody() async throws {
        let (running, client) = try await Self.start(configure: {
            $0.insiMode = .realistic
            $0.insiNIROID = "1.2.250.1.213.1.4.10"
        })
        try await running.whileRunning {
            var call = INSiCall()
            call.birthName = "HOUILLES"
            (call.firstNames, call.sex, call.birthDate) = (["PIERRE"], "M", "1993-01-27")
            let answer = try await Self.send(running, call, client: client)
            #expect(answer.status == .internalServerError)
            #expect(answer.errorCode == "insi_101")
            #expect(answer.fault?.path("Code", "Value")?.text == "env:Receiver")
            let found = try await Self.send(running, INSiCall(), client: client)
            #expect(
                found.result?.path("INDIVIDU", "INSACTIF", "OID")?.text == "1.2.250.1.213.1.4.10",
                "configured NIR OID"
            )
        }
    }

    static let hostileMessages: [(String, String, String)] = [
        (
            "XXE",
            """
            <?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>\
            <s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><r>&x;</r></s:Body></s:Envelope>
            """, "Document Type Declaration"
        ),
        (
            "billion laughs",
            """
            <?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\
            <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\
            <s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><r>&lol3;</r></s:Body></s:Envelope>
            """, "Document Type Declaration"
        ),
        (
            "malformed", "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><r></s:Body>",
            "malformed XML"
        ),
        (
            "deep",
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>"
                + String(repeating: "<d>", count: 200)
                + String(repeating: "</d>", count: 200) + "</s:Body></s:Envelope>", "deeper than"
        ),
        (
            "too many elements",
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><r>"
                + String(repeating: "<e/>", count: 3000)
                + "</r></s:Body></s:Envelope>", "more than"
        ),
        (
            "SOAP 1.1",
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><r/></e:Body></e:Envelope>",
            "SOAP 1.1"
        ),
        ("not an envelope", "<hello/>", "not a SOAP 1.2"),
        (
            "empty body", "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>",
            "exactly one element"
        ),
        ("empty", "", "empty"),
    ]

    @Test func hostileAndMalformedMessagesGetFaultsAndLeaveTheServerServing() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            for (label, body, reason) in Self.hostileMessages {
                let answer = try await Self.send(running, body: body, client: client)
                #expect(answer.status == .internalServerError, "\(label)")
                #expect(answer.reason.contains(reason), "\(label): \(answer.reason)")
                #expect(!answer.xml.contains("root:"), "\(label): no file content leaked")
            }
            let version = try await Self.send(running, body: Self.hostileMessages[5].1, client: client)
            #expect(version.fault?.path("Code", "Value")?.text == "env:VersionMismatch")
            // Over the size limit: refused before parsing, in SOAP form.
            let huge = try await running.request(
                "/lps",
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: String(repeating: "<a/>", count: 100_000)
            )
            #expect(huge.status == .contentTooLarge)
            #expect(huge.text.contains("Fault"))
            // Not SOAP 1.2 by its media type.
            let text = try await Self.send(running, INSiCall(), client: client, contentType: "text/xml")
            #expect(text.status == .unsupportedMediaType && text.errorCode == "sbx_content_type")
            // Still serving.
            #expect(try await Self.send(running, INSiCall(), client: client).code == "00")
        }
    }

    static let cnamResultSchema = Reference.file("insi/wsdl/xsd/ServiceIdentiteCertifiee/INSi_RESULTAT_INS.xsd")

    @Test(.enabled(if: Reference.xmllint, "needs xmllint"))
    func wsdlAndSchemasAreServedAndResponsesValidate() async throws {
        try await Self.checkWSDLAndAnswers(againstCNAMSchemas: false)
    }

    /// The CNAM's own XSDs (and the GIE SESAM-Vitale fault schema), where a copy is on the machine.
    @Test(
        .enabled(if: Reference.xmllint && Reference.exists(cnamResultSchema), "needs the CNAM's INSi XSDs and xmllint")
    )
    func responsesValidateAgainstTheCNAMSchemas() async throws {
        try await Self.checkWSDLAndAnswers(againstCNAMSchemas: true)
    }

    /// The WSDL and the schemas it imports are served; every answer validates against the served schema or the CNAM's.
    static func checkWSDLAndAnswers(againstCNAMSchemas: Bool) async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let wsdl = try await running.request("/lps?wsdl", client: client)
            #expect(wsdl.status == .ok)
            let definitions = try HardenedXMLParser().parse(Data(wsdl.text.utf8))
            #expect(definitions.attributes["targetNamespace"] == "http://www.cnamts.fr/webservice")
            #expect(definitions.attributes["name"] == "ServiceIdentiteCertifiee-v1")
            let actions = definitions.descendants.filter { $0.name == "operation" }.compactMap {
                $0.attributes["soapAction"]
            }
            #expect(Set(actions) == Set(INSiOperation.published.map(\.action)))
            #expect(definitions.path("service")?.attributes["name"] == "ICIR-v1")
            #expect(definitions.path("service", "port")?.attributes["name"] == "ICIRService")
            #expect(definitions.child("binding")?.attributes["name"] == "ICIRServiceBinding")
            #expect(definitions.child("portType")?.attributes["name"] == "ICIRService")
            let imports = definitions.descendants.filter { $0.name == "import" }.compactMap {
                $0.attributes["schemaLocation"]
            }
            #expect(imports.count == 8)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("insi-xsd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for location in imports {
                let url = try #require(URLComponents(string: location))
                let schema = try await running.request(url.path + "?" + url.percentEncodedQuery!, client: client)
                #expect(schema.status == .ok, "\(location)")
                try Data(schema.text.utf8).write(
                    to: folder.appendingPathComponent((url.queryItems?.first?.value ?? "x") + ".xsd")
                )
            }
            #expect(try await running.request("/lps?xsd=nope", client: client).status == .notFound)

            // Every answer validates against the served schema, or the CNAM's own XSD.
            let reference = cnamResultSchema
            let schemas = againstCNAMSchemas ? [reference] : [folder.appendingPathComponent("resultat.xsd")]
            let calls: [INSiCall] =
                Self.traitsCases.map { test in
                    var call = INSiCall()
                    (call.birthName, call.firstNames, call.sex, call.birthDate, call.birthPlace) = (
                        test.name, [test.firstName], test.sex, test.date, test.place
                    )
                    return call
                } + [.vitale(matricule: "2181213055202", name: "JUMEAU", birthDate: "2018-12-24", rank: 2)]
            // A fault's siram:Erreur detail, against the GIE SESAM-Vitale fault schema.
            let faultSchema = reference.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                "schema_faultSOAP_V01_01.xsd"
            )
            if againstCNAMSchemas {
                var unknown = INSiCall()
                unknown.idam = "INCONNU"
                let fault = try await Self.send(running, unknown, client: client)
                let detail = try #require(
                    fault.xml.range(of: "<siram:Erreur").map { String(fault.xml[$0.lowerBound...]) }?
                        .components(separatedBy: "</siram:Erreur>").first.map { $0 + "</siram:Erreur>" }
                )
                let file = folder.appendingPathComponent("fault.xml")
                try Data(detail.utf8).write(to: file)
                let run = try await Shell.run("xmllint --noout --schema '\(faultSchema.path)' '\(file.path)'")
                #expect(run.status == 0, "\(run.stderr)")
            }
            for (index, call) in calls.enumerated() {
                let answer = try await Self.send(running, call, client: client)
                let resultXML = try #require(
                    answer.xml.range(of: "<RESULTAT").map { String(answer.xml[$0.lowerBound...]) }?
                        .components(separatedBy: "</RESULTAT>").first.map { $0 + "</RESULTAT>" }
                )
                let file = folder.appendingPathComponent("result-\(index).xml")
                try Data(resultXML.utf8).write(to: file)
                for schema in schemas {
                    let run = try await Shell.run("xmllint --noout --schema '\(schema.path)' '\(file.path)'")
                    #expect(run.status == 0, "\(schema.lastPathComponent): \(run.stderr)")
                }
            }
        }
    }

    @Test func adminAPIManagesTheTestBase() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let identity =
                #"{"matricule":"1990175056123","cle":"00","nomNaissance":"NOUVEAU","listePrenom":"JEAN","sexe":"M","dateNaissance":"1999-01-01","lieuNaissance":"75056"}"#
            let badKey = try await running.admin("/admin/insi/identities", method: .post, body: identity)
            #expect(badKey.status == .badRequest)
            #expect(badKey.text.contains("does not verify"))
            let key = try #require(NIRKey.compute("1990175056123"))
            let good = identity.replacingOccurrences(of: #""cle":"00""#, with: #""cle":"\#(key)""#)
            #expect(try await running.admin("/admin/insi/identities", method: .post, body: good).status == .created)
            #expect(
                try await running.admin(
                    "/admin/insi/identities?allowBadKey=true",
                    method: .post,
                    body: identity.replacingOccurrences(of: "1990175056123", with: "1990175056124")
                ).status == .created
            )
            let badTraits = identity.replacingOccurrences(of: "NOUVEAU", with: "Nouveau")
            #expect(
                try await running.admin("/admin/insi/identities?allowBadKey=true", method: .post, body: badTraits)
                    .status == .badRequest
            )
            #expect(try await running.admin("/admin/insi/identities", method: .post, body: "{").status == .badRequest)

            var call = INSiCall()
            (call.birthName, call.firstNames, call.sex, call.birthDate) = ("NOUVEAU", ["JEAN"], "M", "1999-01-01")
            #expect(try await Self.send(running, call, client: client).code == "02", "two NOUVEAU JEAN now")
            #expect(
                try await running.admin("/admin/insi/identities/1990175056124", method: .delete).status == .noContent
            )
            #expect(try await Self.send(running, call, client: client).matricule == "1990175056123")
            #expect(
                try await running.admin("/admin/insi/identities/1990175056124", method: .delete).status == .notFound
            )

            let card =
                #"{"id":"CV-NEW","assure":"1990175056123","beneficiaires":[{"matricule":"1234567890123","rang":1}]}"#
            let refusedCard = try await running.admin("/admin/insi/cards", method: .post, body: card)
            #expect(refusedCard.status == .badRequest && refusedCard.text.contains("not an identity"))

            call.idam = "LPS-NOUVEAU"
            #expect(try await Self.send(running, call, client: client).errorCode == "desir_550")
            #expect(
                try await running.admin(
                    "/admin/insi/lps",
                    method: .post,
                    body: #"{"idam":"LPS-NOUVEAU","label":"test"}"#
                ).status == .created
            )
            #expect(try await Self.send(running, call, client: client).code == "00")
            #expect(
                try await running.admin("/admin/insi/lps", method: .post, body: #"{"idam":"avec espace"}"#).status
                    == .badRequest
            )
            let list = try await running.admin("/admin/insi/lps")
            #expect(list.text.contains("LPS-NOUVEAU"))
        }
    }

    static func verification(
        matricule: String,
        key: String,
        name: String,
        firstName: String,
        sex: String,
        date: String
    ) -> INSiCall {
        var call = INSiCall()
        call.operation = .verification
        call.body = """
            <v:RequeteUnitaire xmlns:v="urn:example:verification"><v:IndividuVerifie><v:INSFourni><v:IdIndividu>\
            <v:NumIdentifiant>\(matricule)</v:NumIdentifiant><v:Cle>\(key)</v:Cle></v:IdIndividu><v:OID>1.2.250.1.213.1.4.8</v:OID></v:INSFourni>\
            <v:TraitsIdentiteIndividu><v:NomNaissance>\(name)</v:NomNaissance><v:Prenom>\(firstName)</v:Prenom><v:Sexe>\(sex)</v:Sexe>\
            <v:DateNaissance>\(date)</v:DateNaissance></v:TraitsIdentiteIndividu></v:IndividuVerifie></v:RequeteUnitaire>
            """
        return call
    }

    /// The assumed verification: a traits search whose one identity must carry the INS supplied.
    @Test func verificationComparesTheSuppliedINS() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let verified = try await Self.send(
                running,
                Self.verification(
                    matricule: "297022A020778",
                    key: "78",
                    name: "ADRTROIS",
                    firstName: "DOMINIQUE",
                    sex: "F",
                    date: "1997-02-26"
                ),
                client: client
            )
            #expect(verified.code == "00" && verified.matricule == "297022A020778")
            let otherINS = try await Self.send(
                running,
                Self.verification(
                    matricule: "160012B020777",
                    key: "13",
                    name: "ADRTROIS",
                    firstName: "DOMINIQUE",
                    sex: "F",
                    date: "1997-02-26"
                ),
                client: client
            )
            #expect(otherINS.code == "01")
            let wrongKey = try await Self.send(
                running,
                Self.verification(
                    matricule: "297022A020778",
                    key: "77",
                    name: "ADRTROIS",
                    firstName: "DOMINIQUE",
                    sex: "F",
                    date: "1997-02-26"
                ),
                client: client
            )
            #expect(wrongKey.code == "01")
            let homonyms = try await Self.send(
                running,
                Self.verification(
                    matricule: "1140275056101",
                    key: "49",
                    name: "DE VINCI",
                    firstName: "LEONARDO",
                    sex: "M",
                    date: "2014-02-01"
                ),
                client: client
            )
            #expect(homonyms.code == "02")
            var empty = INSiCall()
            empty.operation = .verification
            empty.body = "<v:RequeteUnitaire xmlns:v=\"urn:example:verification\"/>"
            #expect(try await Self.send(running, empty, client: client).reason.contains("IndividuVerifie"))
            empty.body =
                "<v:RequeteUnitaire xmlns:v=\"urn:example:verification\"><v:IndividuVerifie><v:INSFourni/></v:IndividuVerifie></v:RequeteUnitaire>"
            #expect(try await Self.send(running, empty, client: client).reason.contains("INSFourni"))
            var broken = Self.verification(
                matricule: "297022A",
                key: "78",
                name: "ADRTROIS",
                firstName: "DOMINIQUE",
                sex: "F",
                date: "1997-02-26"
            )
            #expect(try await Self.send(running, broken, client: client).errorCode == "sbx_requete")
            broken = Self.verification(
                matricule: "297022A020778",
                key: "78",
                name: "adrtrois",
                firstName: "DOMINIQUE",
                sex: "F",
                date: "1997-02-26"
            )
            #expect(try await Self.send(running, broken, client: client).reason.contains("NomNaissance"))
        }
    }

    /// Every seed identity's keys verify by the NIR rule, except the CNDA file's deliberate mismatch (noted as such).
    @Test func seedIdentitiesCarryValidKeys() throws {
        let data = try Data(contentsOf: SharedPKI.repositorySeeds.appendingPathComponent("insi/identities.json"))
        let seed = try JSONDecoder().decode(INSiDirectory.SeedFile.self, from: data)
        let identities = try #require(seed.identities)
        #expect(identities.count >= 10)
        for identity in identities {
            let deliberate = identity.note?.contains("on purpose") == true
            #expect(
                (NIRKey.compute(identity.matricule) == identity.key) != deliberate,
                "\(identity.birthName) \(identity.matricule)"
            )
            for previous in identity.history where !deliberate {
                #expect(
                    NIRKey.compute(previous.matricule) == previous.key,
                    "\(identity.birthName) INSHISTO \(previous.matricule)"
                )
            }
        }
        #expect(identities.contains { $0.kind == .nia })
        #expect(!identities.filter { !$0.history.isEmpty }.isEmpty)
        #expect(
            try #require(seed.cards).contains { Set($0.beneficiaries.map(\.rank)).count > 1 },
            "twins told apart by rank"
        )
    }

    @Test func nirKeyRule() {
        #expect(NIRKey.compute("297022A020778") == "78")
        #expect(NIRKey.compute("160012B020777") == "13")
        #expect(NIRKey.compute("1090763220834") == "89")
        #expect(NIRKey.compute("1810363220456") == "76", "the CNDA's HERMANN carries 60 on purpose")
        #expect(NIRKey.compute("12345") == nil)
    }
}

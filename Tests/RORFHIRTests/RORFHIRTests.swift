import Access
import FHIRCore
import Foundation
import HTTPCommon
import HTTPTypes
import HummingbirdTesting
import NIOCore
import TestPKI
import Testing

@testable import RORFHIR
@testable import SandboxServer
@testable import SandboxTestSupport

/// The ROR FHIR consumer API over mutual TLS with the repository's seeds: the token flow and its errors, the
/// Ror-* headers, reads and searches as a consumer's code sends them.
@Suite("ROR FHIR consumer API")
struct RORFHIRTests {
    @Test func tokenFlowLikeKeycloak() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let response = try await RORConsumer.token(
                running,
                client: consumer,
                form: "grant_type=client_credentials&client_id=esante-sandbox-consumer"
            )
            #expect(response.status == .ok)
            let body = try response.json()
            #expect(body["token_type"] as? String == "Bearer")
            #expect(body["expires_in"] as? Int == 300)
            let token = try #require(body["access_token"] as? String)
            let claims = try Self.claims(token)
            #expect(claims["clientId"] as? String == "esante-sandbox-consumer")
            #expect(claims["profil"] as? Int == 1)
            #expect((claims["cnf"] as? [String: String])?["x5t#S256"] != nil)
            #expect(claims["exp"] as? Int != nil)
        }
    }

    static func claims(_ token: String) throws -> [String: Any] {
        var part = String(token.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(
            of: "_",
            with: "/"
        )
        while part.count % 4 != 0 { part += "=" }
        return try JSONSerialization.jsonObject(with: Data(base64Encoded: part)!) as! [String: Any]
    }

    @Test(arguments: [
        ("client_id=esante-sandbox-consumer", 400, "invalid_request"),
        ("grant_type=password&client_id=esante-sandbox-consumer", 400, "unsupported_grant_type"),
        ("grant_type=client_credentials", 400, "invalid_request"),
        ("grant_type=client_credentials&client_id=nobody", 401, "invalid_client"),
        ("grant_type=client_credentials&client_id=esante-sandbox-feeder", 401, "invalid_client"),
        ("grant_type=client_credentials&client_id=esante-sandbox-consumer&client_secret=x", 400, "unauthorized_client"),
    ])
    func tokenErrorsInOAuth2Form(form: String, status: Int, error: String) async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let response = try await RORConsumer.token(running, client: consumer, form: form)
            #expect(Int(response.status.code) == status, "\(form): \(response.text)")
            #expect(try response.json()["error"] as? String == error)
            #expect(try response.json()["error_description"] is String)
        }
    }

    @Test func profileZeroAuthenticatesWithASecret() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let client = try SharedPKI.client("CN=PUBLIC_APP,OU=33333333300,O=PUBLIC,ST=Paris (75),C=FR")
            let body =
                #"{"service": "ror-fhir", "subjectDN": "CN=PUBLIC_APP,OU=33333333300,O=PUBLIC,ST=Paris (75),C=FR", "clientId": "public-app", "accessProfile": 0, "clientSecret": "s3cret"}"#
            #expect(try await running.admin("/admin/whitelist", method: .post, body: body).status == .created)
            let wrong = try await RORConsumer.token(
                running,
                client: client,
                form: "grant_type=client_credentials&client_id=public-app&client_secret=nope"
            )
            #expect(wrong.status == .unauthorized)
            let right = try await RORConsumer.token(
                running,
                client: client,
                form: "grant_type=client_credentials&client_id=public-app&client_secret=s3cret"
            )
            #expect(right.status == .ok)
            #expect(try Self.claims(try right.json()["access_token"] as! String)["profil"] as? Int == 0)
            // Profile 0 without a secret is refused at registration.
            let invalid = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body: #"{"service": "ror-fhir", "subjectDN": "CN=X,C=FR", "clientId": "x", "accessProfile": 0}"#
            )
            #expect(invalid.status == .badRequest)
            _ = consumer
        }
    }

    @Test func fhirCallsNeedACertificateBoundTokenAndTheRorHeaders() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let path = "/ws-diffusion-fhir/Location?_summary=count"

            let missing = try await running.request(path, client: consumer, headers: RORConsumer.rorHeaders)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate]?.contains("error=\"invalid_token\"") == true)
            #expect(try missing.json()["resourceType"] as? String == "OperationOutcome")

            var forged = RORConsumer.rorHeaders
            forged[.authorization] = "Bearer eyJhbGciOiJFUzI1NiJ9.eyJjbGllbnRJZCI6IngifQ.AAAA"
            #expect(try await running.request(path, client: consumer, headers: forged).status == .unauthorized)

            let token = try await RORConsumer.accessToken(running, client: consumer)
            #expect(try await RORConsumer.get(running, path, client: consumer, token: token).status == .ok)

            // The same token presented with another (whitelisted) certificate: bound to the first one.
            let other = try SharedPKI.client("CN=OTHER_CONSUMER,OU=33333333301,O=OTHER,ST=Paris (75),C=FR")
            try running.whitelist("ror-fhir", dn: "CN=OTHER_CONSUMER,OU=33333333301,O=OTHER,ST=Paris (75),C=FR")
            let stolen = try await RORConsumer.get(running, path, client: other, token: token)
            #expect(stolen.status == .unauthorized)
            #expect(stolen.text.contains("bound to another certificate"))

            // Each Ror-* header is required, and must match the values registered for the client.
            for name in Whitelist.rorHeaderNames {
                var headers = RORConsumer.rorHeaders
                headers[.authorization] = "Bearer \(token)"
                headers[HTTPField.Name(name)!] = nil
                let response = try await running.request(path, client: consumer, headers: headers)
                #expect(response.status == .badRequest, "\(name)")
                #expect(response.text.contains("\"expression\":[\"\(name)\"]"), "\(name)")
            }
            var wrongValue = RORConsumer.rorHeaders
            wrongValue[.authorization] = "Bearer \(token)"
            wrongValue[HTTPField.Name("Ror-Role-Metier-Code")!] = "HUMAIN"
            let mismatch = try await running.request(path, client: consumer, headers: wrongValue)
            #expect(mismatch.status == .forbidden)
            #expect(mismatch.text.contains("Ror-Role-Metier-Code"))

            // metadata is open.
            #expect(try await running.request("/ws-diffusion-fhir/metadata", client: consumer).status == .ok)
        }
    }

    /// Query shapes past the limits are 400 naming the parameter (2 000 repeated names and 3 000 `_filter` terms
    /// reached SQLite's expression depth and escaped as 500); shapes at the limits are answered.
    @Test func oversizedQueryShapesAre400NamingTheParameter() async throws {
        let (running, client) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: client)
            let repeated = (0..<2000).map { "name=x\($0)" }.joined(separator: "&")
            let terms = (0..<3000).map { "name eq \"x\($0)\"" }.joined(separator: " or ")
            let deep = String(repeating: "(", count: 40) + "name eq \"x\"" + String(repeating: ")", count: 40)
            let values = (0..<500).map { "x\($0)" }.joined(separator: ",")
            let many = (0..<300).map { "p\($0)=1" }.joined(separator: "&")
            for (query, parameter, message) in [
                (repeated, "name", "repeated more than 100 times"),
                ("_filter=" + FormEncoding.encode(terms), "_filter", "_filter is too large"),
                ("_filter=" + FormEncoding.encode(deep), "_filter", "40 levels"),
                ("name=" + values, "name", "more than 100 values"),
                (many, "p200", "Too many search parameters"),
            ] {
                // As a form body (POST _search): a 3 000-term query string is past any URL limit.
                var headers = RORConsumer.rorHeaders
                headers[.authorization] = "Bearer \(token)"
                headers[.contentType] = "application/x-www-form-urlencoded"
                let response = try await running.request(
                    "/ws-diffusion-fhir/HealthcareService/_search",
                    method: .post,
                    client: client,
                    headers: headers,
                    body: query
                )
                #expect(response.status == .badRequest, "\(parameter): \(response.text.prefix(300))")
                let issue = try #require((try response.json()["issue"] as? [[String: Any]])?.first)
                #expect(issue["expression"] as? [String] == [parameter])
                #expect((issue["diagnostics"] as? String)?.contains(message) == true, "\(issue)")
            }
            // At the limits: answered.
            let atLimit = (0..<100).map { "name=x\($0)" }.joined(separator: "&")
            let filter100 = (0..<100).map { "name eq \"x\($0)\"" }.joined(separator: " or ")
            for query in [atLimit, "_filter=" + FormEncoding.encode(filter100)] {
                let response = try await RORConsumer.get(
                    running,
                    "/ws-diffusion-fhir/HealthcareService?" + query,
                    client: client,
                    token: token
                )
                #expect(response.status == .ok, "\(response.text.prefix(300))")
            }
        }
    }

    @Test func expiredTokenIsRefused() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            // A token signed by the sandbox key but expired an hour ago.
            let expired = try await running.sandbox.ror.tokens.sign(
                clientId: "esante-sandbox-consumer",
                profile: 1,
                lifetime: -3600,
                identity: nil,
                issuer: "https://localhost/auth/realms/ror",
                environment: "bac-a-sable"
            )
            let response = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location",
                client: consumer,
                token: expired
            )
            #expect(response.status == .unauthorized)
            #expect(response.text.contains("expired"))
        }
    }

    @Test func readSearchPagingAndErrors() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)

            let read = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location/loc-00001-1",
                client: consumer,
                token: token
            )
            #expect(read.status == .ok)
            #expect(read.headers[.eTag] == "W/\"1\"")
            #expect(read.headers[.lastModified] != nil)
            #expect(read.headers[.contentType]?.hasPrefix("application/fhir+json") == true)

            let unknown = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location/nope",
                client: consumer,
                token: token
            )
            #expect(unknown.status == .notFound)
            #expect(unknown.text.contains("not-found"))

            let operation = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/OperationDefinition/export",
                client: consumer,
                token: token
            )
            #expect(try operation.json()["code"] as? String == "export")
            #expect(
                try await RORConsumer.get(
                    running,
                    "/ws-diffusion-fhir/OperationDefinition/nope",
                    client: consumer,
                    token: token
                ).status == .notFound
            )

            let history = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location/loc-00001-1/_history",
                client: consumer,
                token: token
            )
            #expect(history.status == .methodNotAllowed)

            let xml = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location?_format=xml",
                client: consumer,
                token: token
            )
            #expect(xml.status == .notAcceptable)
            #expect(xml.text.contains("JSON only"))

            let badParam = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location?nonsense=1",
                client: consumer,
                token: token
            )
            #expect(badParam.status == .badRequest)
            #expect(badParam.text.contains("\"expression\":[\"nonsense\"]"))

            let badDate = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location?_lastUpdated=ge2024-99",
                client: consumer,
                token: token
            )
            #expect(badDate.status == .badRequest)
            #expect(badDate.text.contains("_lastUpdated"))

            let empty = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location?identifier=does-not-exist",
                client: consumer,
                token: token
            )
            #expect(empty.status == .ok)
            #expect(try empty.json()["total"] as? Int == 0)

            // Paging: default 200 per page; here 7 per page over the 60 seeded offers, following `next` links.
            var url = "/ws-diffusion-fhir/HealthcareService?_count=7&_sort=_id"
            var seen: [String] = []
            var total = 0
            for _ in 0..<20 {
                let page = try await RORConsumer.get(running, url, client: consumer, token: token)
                #expect(page.status == .ok, "\(url): \(page.text)")
                let bundle = try page.json()
                total = bundle["total"] as? Int ?? total
                seen += (bundle["entry"] as? [[String: Any]] ?? []).map {
                    ($0["resource"] as! [String: Any])["id"] as! String
                }
                guard
                    let next = (bundle["link"] as? [[String: String]])?.first(where: { $0["relation"] == "next" })?[
                        "url"
                    ]
                else { break }
                let components = try #require(URLComponents(string: next))
                url = components.path + "?" + (components.percentEncodedQuery ?? "")
            }
            #expect(total >= 50)
            #expect(seen.count == total)
            #expect(Set(seen).count == total)
            #expect(seen == seen.sorted())

            let gone = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir?_getpages=unknown&_getpagesoffset=7&_count=7",
                client: consumer,
                token: token
            )
            #expect(gone.status == .gone)

            // POST _search with a form body.
            var headers = RORConsumer.rorHeaders
            headers[.authorization] = "Bearer \(token)"
            headers[.contentType] = "application/x-www-form-urlencoded"
            let post = try await running.request(
                "/ws-diffusion-fhir/Location/_search",
                method: .post,
                client: consumer,
                headers: headers,
                body: "_id=loc-00001-1"
            )
            #expect(try post.json()["total"] as? Int == 1)
        }
    }

    /// The brief's example query (IG/DOC §4) on the seeds: offers of an activity with a currently available
    /// bed for women in their place, with the places included.
    @Test func briefExampleQueryFindsAvailableBeds() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let nos = { (tre: String) in
                "https://mos.esante.gouv.fr/NOS/\(tre)/FHIR/\(tre.replacingOccurrences(of: "_", with: "-"))"
            }
            let query = [
                "specialty=\(nos("TRE_R211-ActiviteOperationnelle"))|356",
                "location.capacity-type=\(nos("TRE_R329-NatureCapacite"))|01",
                "location.gender-capacity-available=\(nos("TRE_R332-GenreCapacite"))|01",
                "location.temporality-capacity=\(nos("TRE_R331-TemporaliteCapacite"))|01",
                "location.capacity-status=\(nos("TRE_R330-TypeStatutCapacite"))|02",
                "location.nb-capacity=gt0",
                "_include=HealthcareService:location",
            ].joined(separator: "&").replacingOccurrences(of: "|", with: "%7C")
            let response = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService?\(query)",
                client: consumer,
                token: token
            )
            #expect(response.status == .ok, "\(response.text)")
            let bundle = try response.json()
            let entries = bundle["entry"] as? [[String: Any]] ?? []
            let matches = entries.filter { ($0["search"] as? [String: String])?["mode"] == "match" }
            let includes = entries.filter { ($0["search"] as? [String: String])?["mode"] == "include" }
            #expect(!matches.isEmpty)
            #expect(!includes.isEmpty)
            for match in matches {
                let resource = match["resource"] as! [String: Any]
                #expect("\(resource["specialty"]!)".contains("356"))
            }
            for include in includes {
                #expect((include["resource"] as! [String: Any])["resourceType"] as? String == "Location")
            }
        }
    }

    /// The IG's own JSON examples, when a copy is on the machine: loaded, then found by their identifiers.
    @Test(.enabled(if: Reference.exists(RORFHIRTests.referenceExamples), "needs the ROR IG's examples"))
    func referenceExamplesAreSearchableByIdentifier() async throws {
        let seeds = try SharedPKI.emptySeeds()
        try FileManager.default.createDirectory(
            at: seeds.appendingPathComponent("ror"),
            withIntermediateDirectories: true
        )
        for file in try FileManager.default.contentsOfDirectory(
            at: Self.referenceExamples,
            includingPropertiesForKeys: nil
        )
        where file.pathExtension == "json" {
            try FileManager.default.copyItem(
                at: file,
                to: seeds.appendingPathComponent("ror/\(file.lastPathComponent)")
            )
        }
        let running = try await RunningSandbox.start(seeds: seeds)
        try await running.whileRunning {
            for file in try FileManager.default.contentsOfDirectory(
                at: Self.referenceExamples,
                includingPropertiesForKeys: nil
            )
            where file.pathExtension == "json" {
                let resource = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
                let type = resource["resourceType"] as! String
                for identifier in resource["identifier"] as? [[String: Any]] ?? [] {
                    guard let value = identifier["value"] as? String else { continue }
                    let items: [(String, String)] = [("identifier", value)]
                    let request = try SearchRequest(type: type, items: items, registry: RORSearchParameters.registry)
                    let ids = try await running.sandbox.ror.repository.searchIDs(request)
                    #expect(ids.contains(resource["id"] as! String), "\(type) identifier \(value)")
                }
            }
        }
    }

    /// A consumer registered with `profile` (fresh certificate, own client id), and its token.
    static func consumer(_ running: RunningSandbox, profile: Int) async throws -> (ClientFiles, String) {
        let dn = "CN=PROFILE_\(profile)_\(UUID().uuidString.prefix(8)),OU=33333333302,O=PROFILES,ST=Paris (75),C=FR"
        let client = try SharedPKI.client(dn)
        let clientId = "profile-\(profile)-\(UUID().uuidString.prefix(8))"
        var fields: [String: Any] = [
            "service": "ror-fhir", "subjectDN": dn, "clientId": clientId, "accessProfile": profile,
        ]
        if profile == 0 { fields["clientSecret"] = "secret" }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
        #expect(try await running.admin("/admin/whitelist", method: .post, body: body).status == .created)
        let form = "grant_type=client_credentials&client_id=\(clientId)" + (profile == 0 ? "&client_secret=secret" : "")
        let response = try await RORConsumer.token(running, client: client, form: form)
        return (client, try #require(try response.json()["access_token"] as? String))
    }

    /// The capacity statuses (TRE_R330 codes) of the indicators of a Location.
    static func capacityStatuses(_ response: TestClient.Response) throws -> Set<String> {
        let location = try response.json()
        var statuses = Set<String>()
        for ext in location["extension"] as? [[String: Any]] ?? []
        where (ext["url"] as? String)?.hasSuffix("ror-location-supported-capacity") == true {
            for part in ext["extension"] as? [[String: Any]] ?? [] where part["url"] as? String == "capacityStatus" {
                let coding = ((part["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first
                if let code = coding?["code"] as? String { statuses.insert(code) }
            }
        }
        return statuses
    }

    /// Confidentiality levels (TRE_R283 codes) of a resource's telecoms, contacts and offer contacts, sorted.
    static func confidentialityLevels(_ response: TestClient.Response) throws -> [String] {
        let resource = try response.json()
        func level(_ element: Any) -> String? {
            let extensions = (element as? [String: Any])?["extension"] as? [[String: Any]] ?? []
            let level = extensions.first { ($0["url"] as? String)?.hasSuffix("confidentiality-level") == true }
            return ((level?["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"]
                as? String
        }
        var levels = (resource["telecom"] as? [Any] ?? []).compactMap(level)
        levels += (resource["contact"] as? [Any] ?? []).compactMap(level)
        levels += (resource["extension"] as? [[String: Any]] ?? [])
            .filter { ($0["url"] as? String)?.hasSuffix("ror-healthcareservice-contact") == true }.compactMap(level)
        return levels.sorted()
    }

    /// What each profile sees, by the IG's mappings (see `RORAccessPolicy`): places, offers and roles of the
    /// medico-social field (MS) and of others (loc-00006-2, hs-00006-2 and prr-00007-1 are MS; the others MCO).
    struct ProfileView: Sendable, CustomStringConvertible {
        let profile: Int
        let sensitiveVisible: Bool
        let statuses: (other: Set<String>, medicoSocial: Set<String>)
        let placeLevels: (other: [String], medicoSocial: [String])
        let offerLevels: (other: [String], medicoSocial: [String])
        let roleLevels: (other: [String], medicoSocial: [String])
        let organizationLevels: [String]
        var description: String { "profile \(profile)" }
    }

    static let all: Set<String> = ["01", "02", "05", "06"]
    static let profileViews = [
        ProfileView(
            profile: 1,
            sensitiveVisible: true,
            statuses: (all, all),
            placeLevels: (["1", "2", "3"], ["1", "2", "3"]),
            offerLevels: (["1", "2", "3"], ["1", "2", "3"]),
            roleLevels: (["2"], ["2"]),
            organizationLevels: ["1", "1", "2", "3"]
        ),
        ProfileView(
            profile: 2,
            sensitiveVisible: false,
            statuses: (["01", "02", "05"], ["01", "02", "05"]),
            placeLevels: (["1", "2"], ["1", "2"]),
            offerLevels: (["1", "2"], ["1", "2"]),
            roleLevels: (["2"], ["2"]),
            organizationLevels: ["1", "1", "2"]
        ),
        ProfileView(
            profile: 3,
            sensitiveVisible: false,
            statuses: ([], ["01", "02", "05"]),
            placeLevels: ([], ["1", "2"]),
            offerLevels: (["1"], ["1", "2"]),
            roleLevels: ([], ["2"]),
            organizationLevels: ["1", "1"]
        ),
        ProfileView(
            profile: 0,
            sensitiveVisible: false,
            statuses: ([], []),
            placeLevels: ([], []),
            offerLevels: (["1"], ["1"]),
            roleLevels: ([], []),
            organizationLevels: ["1", "1"]
        ),
        ProfileView(
            profile: 4,
            sensitiveVisible: true,
            statuses: (all, all),
            placeLevels: ([], []),
            offerLevels: ([], []),
            roleLevels: ([], []),
            organizationLevels: []
        ),
        ProfileView(
            profile: 5,
            sensitiveVisible: true,
            statuses: (["01"], ["01"]),
            placeLevels: (["1", "2"], ["1", "2"]),
            offerLevels: (["1", "2"], ["1", "2"]),
            roleLevels: (["2"], ["2"]),
            organizationLevels: ["1", "1", "2"]
        ),
    ]

    @Test(arguments: profileViews)
    func accessProfilesFilterWhatConsumersSee(_ view: ProfileView) async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let fullToken = try await RORConsumer.accessToken(running, client: consumer)
            let allServices = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService?_summary=count",
                client: consumer,
                token: fullToken
            )
            let total = try #require(try allServices.json()["total"] as? Int)
            let (client, token) =
                view.profile == 1 ? (consumer, fullToken) : try await Self.consumer(running, profile: view.profile)
            func read(_ path: String) async throws -> TestClient.Response {
                let response = try await RORConsumer.get(
                    running,
                    "/ws-diffusion-fhir/" + path,
                    client: client,
                    token: token
                )
                #expect(response.status == .ok, "\(path)")
                return response
            }

            let count = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService?_summary=count",
                client: client,
                token: token
            )
            #expect(
                try count.json()["total"] as? Int == (view.sensitiveVisible ? total : total - 1),
                "sensitive unit counted"
            )
            let sensitive = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService/hs-00002-1",
                client: client,
                token: token
            )
            #expect(sensitive.status == (view.sensitiveVisible ? .ok : .notFound))

            #expect(try Self.capacityStatuses(try await read("Location/loc-00001-1")) == view.statuses.other)
            #expect(try Self.capacityStatuses(try await read("Location/loc-00006-2")) == view.statuses.medicoSocial)
            #expect(try Self.confidentialityLevels(try await read("Location/loc-00001-1")) == view.placeLevels.other)
            #expect(
                try Self.confidentialityLevels(try await read("Location/loc-00006-2")) == view.placeLevels.medicoSocial
            )
            #expect(
                try Self.confidentialityLevels(try await read("HealthcareService/hs-00001-1")) == view.offerLevels.other
            )
            #expect(
                try Self.confidentialityLevels(try await read("HealthcareService/hs-00006-2"))
                    == view.offerLevels.medicoSocial
            )
            #expect(
                try Self.confidentialityLevels(try await read("PractitionerRole/prr-00001-1")) == view.roleLevels.other
            )
            #expect(
                try Self.confidentialityLevels(try await read("PractitionerRole/prr-00007-1"))
                    == view.roleLevels.medicoSocial
            )
            #expect(try Self.confidentialityLevels(try await read("Organization/eg-00001")) == view.organizationLevels)
            // The same filtering applies to what a search returns, included resources too.
            let search = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/HealthcareService?_id=hs-00006-2&_include=HealthcareService:location",
                client: client,
                token: token
            )
            let place = try #require(
                (try search.json()["entry"] as? [[String: Any]])?.first {
                    ($0["resource"] as? [String: Any])?["resourceType"] as? String == "Location"
                }
            )
            let placeResponse = TestClient.Response(
                head: .init(status: .ok),
                body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: place["resource"]!)),
                trailerHeaders: nil
            )
            #expect(try Self.capacityStatuses(placeResponse) == view.statuses.medicoSocial)

            let practitioner = try await read("Practitioner/pr-00001-1")
            #expect((try practitioner.json()["name"] == nil) == (view.profile == 4))
        }
    }

    @Test func lenientHandlingSaysWhatItIgnored() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)
            var headers = RORConsumer.rorHeaders
            headers[.authorization] = "Bearer \(token)"
            headers[HTTPField.Name("Prefer")!] = "handling=lenient"
            let response = try await running.request(
                "/ws-diffusion-fhir/Location?bogus=1&_id=loc-00001-1",
                client: consumer,
                headers: headers
            )
            #expect(response.status == .ok)
            let entries = try response.json()["entry"] as? [[String: Any]] ?? []
            let outcome = entries.first { ($0["search"] as? [String: String])?["mode"] == "outcome" }
            #expect("\(outcome?["resource"] ?? "")".contains("bogus"))
            #expect(entries.filter { ($0["search"] as? [String: String])?["mode"] == "match" }.count == 1)
        }
    }

    @Test(arguments: [false, true])
    func bulkExportEndToEnd(ndjson: Bool) async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let format = ndjson ? "&_outputFormat=application/fhir%2Bndjson" : ""
            let kickOff = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/$export?_type=HealthcareService&includeAssociatedData=_myCompleteExtract\(format)",
                client: consumer,
                token: token
            )
            #expect(kickOff.status == .accepted)
            let location = try #require(kickOff.headers[.contentLocation])
            #expect(location.contains("/ws-diffusion-fhir/$export-poll-status?_jobId="))
            let poll = try #require(URLComponents(string: location))
            var manifest: [String: Any]?
            for _ in 0..<200 where manifest == nil {
                let status = try await RORConsumer.get(
                    running,
                    poll.path + "?" + poll.percentEncodedQuery!,
                    client: consumer,
                    token: token
                )
                if status.status == .ok {
                    manifest = try status.json()
                } else {
                    #expect(status.status == .accepted)
                    #expect(status.headers[HTTPField.Name("X-Progress")!] != nil)
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let outputs = try #require(manifest?["output"] as? [[String: Any]])
            var counts: [String: Int] = [:]
            for output in outputs {
                let url = try #require(URLComponents(string: output["url"] as! String))
                let file = try await RORConsumer.get(
                    running,
                    url.path + "?" + url.percentEncodedQuery!,
                    client: consumer,
                    token: token
                )
                #expect(file.status == .ok)
                let type = output["type"] as! String
                if ndjson {
                    #expect(file.headers[.contentType] == "application/fhir+ndjson")
                    counts[type, default: 0] += file.text.split(separator: "\n").count
                } else {
                    let entries = try file.json()["entry"] as? [[String: Any]] ?? []
                    counts[type, default: 0] += entries.count
                }
            }
            let services = try await running.sandbox.ror.repository.count(type: "HealthcareService")
            #expect(counts["HealthcareService"] == services)
            #expect((counts["Location"] ?? 0) > 0)  // associated data: the offers' places, organisations, roles
            #expect((counts["Organization"] ?? 0) > 0)
            #expect((counts["PractitionerRole"] ?? 0) > 0)

            let unknown = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/$export-poll-status?_jobId=nope",
                client: consumer,
                token: token
            )
            #expect(unknown.status == .notFound)
            let badType = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/$export?_type=Patient",
                client: consumer,
                token: token
            )
            #expect(badType.status == .badRequest)
            let badFilter = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/$export?_typeFilter=HealthcareService%3Fbogus%3D1",
                client: consumer,
                token: token
            )
            #expect(badFilter.status == .badRequest)
        }
    }

    /// The brief's other example queries (IG/DOC §4) on the seeds, checked against what the seeds contain.
    @Test func briefExampleQueriesOnTheSeeds() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)
            func bundle(_ query: String) async throws -> [String: Any] {
                let response = try await RORConsumer.get(
                    running,
                    "/ws-diffusion-fhir/\(query.replacingOccurrences(of: "|", with: "%7C"))",
                    client: consumer,
                    token: token
                )
                #expect(response.status == .ok, "\(query): \(response.text)")
                return try response.json()
            }
            func modes(_ bundle: [String: Any]) -> [String: Int] {
                var counts: [String: Int] = [:]
                for entry in bundle["entry"] as? [[String: Any]] ?? [] {
                    let resource = entry["resource"] as! [String: Any]
                    counts[
                        "\((entry["search"] as! [String: String])["mode"]!):\(resource["resourceType"]!)",
                        default: 0
                    ] += 1
                }
                return counts
            }
            let locations = try await running.sandbox.ror.repository.count(type: "Location")
            // All places with their offers (all the capacity data).
            let all = try await bundle("Location?_revinclude=HealthcareService:location")
            #expect(all["total"] as? Int == locations)
            #expect(modes(all)["include:HealthcareService"] ?? 0 >= 50)
            // By region (regionSource tag, TRE_R30): the four seeded regions partition the places.
            var byRegion = 0
            for region in ["11", "84", "93", "53"] {
                byRegion += try await bundle("Location?_tag=\(region)&_summary=count")["total"] as? Int ?? 0
            }
            #expect(byRegion == locations)
            #expect(try await bundle("Location?_tag=52&_summary=count")["total"] as? Int == 0)
            // By identifiers (OR), by last update, by the offers that use them.
            #expect(try await bundle("Location?identifier=L1,L2")["total"] as? Int == 0)
            #expect(try await bundle("Location?identifier=11/loc-00001-1,84/loc-00002-1")["total"] as? Int == 2)
            #expect(
                try await bundle("Location?_lastUpdated=ge2022-11-06T15:00&_summary=count")["total"] as? Int
                    == locations
            )
            #expect(try await bundle("Location?_lastUpdated=ge2099-01-01T00:00&_summary=count")["total"] as? Int == 0)
            let has = try await bundle("Location?_has:HealthcareService:location:identifier=11/000011,11/000012")
            #expect((has["total"] as? Int ?? 0) >= 1)
            // Equipment limits: none in the seeds, and the query is valid.
            #expect(
                try await bundle("HealthcareService?location.limit-value=ge200|http://unitsofmeasure.org|kg")["total"]
                    as? Int == 0
            )
            // The DOC's delta extraction: offers changed since a date, or whose organisation (or a parent) changed.
            let services = try await running.sandbox.ror.repository.count(type: "HealthcareService")
            let filter = "(_lastUpdated ge 2022-11-06T15:00 or organization._lastUpdated:above ge 2022-11-06T15:00)"
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await bundle("HealthcareService?_filter=\(filter)&_summary=count")["total"] as? Int == services)
            let none = "(_lastUpdated ge 2099-01-01 or organization._lastUpdated:above ge 2099-01-01)"
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await bundle("HealthcareService?_filter=\(none)&_summary=count")["total"] as? Int == 0)
            // The extraction shape: offers with their organisation (and its parents), places, roles and practitioners.
            let extraction = try await bundle(
                "HealthcareService?_id=hs-00001-1&_include=HealthcareService:organization&_include:iterate=Organization:partof&_include=HealthcareService:location&_revinclude=PractitionerRole:service&_include=PractitionerRole:practitioner"
            )
            let counts = modes(extraction)
            #expect(counts["match:HealthcareService"] == 1)
            #expect(counts["include:Location"] == 1)
            #expect(counts["include:Organization"] ?? 0 >= 2)  // the EG and its EJ (partof, iterated)
            #expect(counts["include:PractitionerRole"] == 1)
            #expect(counts["include:Practitioner"] == 1)
        }
    }

    /// The remaining refusals of the consumer API, each in its protocol's form.
    @Test func otherBadRequestsAreProtocolShaped() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            // Token request not sent as a form: OAuth2 invalid_request.
            let json = try await running.request(
                RORConsumer.tokenPath,
                method: .post,
                client: consumer,
                headers: [.contentType: "application/json"],
                body: #"{"grant_type":"client_credentials"}"#
            )
            #expect(json.status == .badRequest)
            #expect(try json.json()["error"] as? String == "invalid_request")

            let token = try await RORConsumer.accessToken(running, client: consumer)
            for (path, status, expression) in [
                ("/ws-diffusion-fhir/Patient?name=x", HTTPResponse.Status.badRequest, nil as String?),
                ("/ws-diffusion-fhir?_getpages=abc&_getpagesoffset=-1&_count=10", .badRequest, "_getpagesoffset"),
                ("/ws-diffusion-fhir?_getpages=abc&_getpagesoffset=0&_count=0", .badRequest, "_getpagesoffset"),
                ("/ws-diffusion-fhir?name=x", .badRequest, nil),
                ("/ws-diffusion-fhir/$export?_outputFormat=text/csv", .badRequest, "_outputFormat"),
                ("/ws-diffusion-fhir/$export?_since=yesterday", .badRequest, "_since"),
                ("/ws-diffusion-fhir/$export?bogus=1", .badRequest, "bogus"),
                ("/ws-diffusion-fhir/$export?_typeFilter=HealthcareService", .badRequest, "_typeFilter"),
                ("/ws-diffusion-fhir/$export-get-file?_jobId=nope&_fileId=x", .notFound, "_jobId"),
            ] {
                let response = try await RORConsumer.get(running, path, client: consumer, token: token)
                #expect(response.status == status, "\(path): \(response.text)")
                #expect(try response.json()["resourceType"] as? String == "OperationOutcome", "\(path)")
                if let expression {
                    #expect(response.text.contains("\"expression\":[\"\(expression)\"]"), "\(path): \(response.text)")
                }
            }
            var headers = RORConsumer.rorHeaders
            headers[.authorization] = "Bearer \(token)"
            let batch = try await running.request(
                "/ws-diffusion-fhir",
                method: .post,
                client: consumer,
                headers: headers,
                body: "{}"
            )
            #expect(batch.status == .methodNotAllowed)
            #expect(try batch.json()["resourceType"] as? String == "OperationOutcome")
        }
    }

    static let referenceExamples = Reference.file("ror-fhir/examples")
}

@Test func lastModifiedIsAnHTTPDate() {
    #expect(RORFHIRService.httpDate("2026-11-22T03:05:23.303+00:00") == "Sun, 22 Nov 2026 03:05:23 GMT")
    #expect(RORFHIRService.httpDate("2024-02-29T23:59:59.000+00:00") == "Thu, 29 Feb 2024 23:59:59 GMT")
}

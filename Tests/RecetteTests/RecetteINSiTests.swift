import Access
import Foundation
import HTTPTypes
import HummingbirdTesting
import INSi
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// An LPS calling INSi as the CNDA asks (the first-name loop), with the mistakes the `insi` pack must catch.
struct LPSClient {
    enum Fault {
        /// Stops after the first first name answered CR 01.
        case stopsAfterFirstName
        /// Sends no IDAM.
        case noIDAM
    }

    let running: RunningSandbox
    let client: ClientFiles
    var faults: Set<Fault> = []

    func search(_ call: INSiCall) async throws -> INSiAnswer {
        var call = call
        if faults.contains(.noIDAM) { call.idam = "" }
        return try INSiAnswer(
            try await running.request(
                "/lps",
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml; charset=utf-8; action=\"\(call.operation.action)\""],
                body: call.xml
            )
        )
    }

    /// The CNDA loop: each first name alone, then all of them; the first CR 00 ends it.
    func searchByTraits(birthName: String, firstNames: [String], sex: String, birthDate: String) async throws -> String?
    {
        var attempts = firstNames.map { [$0] } + [[firstNames.joined(separator: " ")]]
        if faults.contains(.stopsAfterFirstName) { attempts = Array(attempts.prefix(1)) }
        for attempt in attempts {
            var call = INSiCall()
            (call.birthName, call.firstNames, call.sex, call.birthDate) = (birthName, attempt, sex, birthDate)
            let answer = try await search(call)
            if answer.code == "00" { return answer.matricule }
            if answer.code == "02" { return nil }  // shown to the user: several identities, more traits needed
        }
        return nil
    }

    func day() async throws -> String? {
        let found = try await searchByTraits(
            birthName: "ECETINSI",
            firstNames: ["PIERRE-ALAIN", "MURIEL", "FLORIANT"],
            sex: "M",
            birthDate: "2009-07-14"
        )
        _ = try await searchByTraits(birthName: "DE VINCI", firstNames: ["LEONARDO"], sex: "M", birthDate: "2014-02-01")
        _ = try await search(.vitale(matricule: "2181213055202", name: "JUMEAU", birthDate: "2018-12-24", rank: 2))
        return found
    }
}

@Suite("Recette: the INSi pack")
struct RecetteINSiTests {
    static let lpsDN = "CN=INSI-AUTO,OU=1690099990,O=CENTRE DE SANTE SANDBOX,ST=Rhône (69),C=FR"

    static func judge(_ faults: Set<LPSClient.Fault>) async throws -> (RunDriver.Report, String?) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        return try await running.whileRunning {
            let run = try await RunDriver.start(running, pack: "insi", client: lpsDN)
            let lps = LPSClient(running: running, client: try RunDriver.files(running, "insi-lps"), faults: faults)
            let found = try await lps.day()
            return (try await RunDriver.close(running, run), found)
        }
    }

    @Test func theFirstNameLoopPasses() async throws {
        let (report, found) = try await Self.judge([])
        // CR 01 injected for each first name alone; the whole list finds the identity.
        #expect(found == "1090763220834")
        #expect(report.verdict == "passed", "\(report.problems)")
        #expect(report.steps["SBX-INSI-BOUCLE/B4"]?.status == "pass")
        #expect(report.steps["SBX-INSI-CR02/M1"]?.status == "to-verify")
        #expect(report.steps["SBX-INSI-VITALE/V1"]?.status == "pass")
    }

    @Test func aLoopStoppingAfterTheFirstFirstNameFails() async throws {
        let (report, found) = try await Self.judge([.stopsAfterFirstName])
        #expect(found == nil)
        #expect(report.verdict == "failed")
        let step = try #require(report.steps["SBX-INSI-BOUCLE/B2"])
        #expect(step.status == "fail")
        #expect(step.message.contains("Après le CR 01, recherche avec le prénom suivant MURIEL"), "\(step.message)")
        #expect(step.message.contains("after #"), "\(step.message)")
    }

    @Test func anLPSWithoutIDAMFails() async throws {
        let (report, _) = try await Self.judge([.noIDAM])
        let step = try #require(report.steps["SBX-INSI-CONTEXTE/C1"])
        #expect(step.status == "fail")
        #expect(step.message.contains("IDAM"), "\(step.message)")
    }

    /// The injected CR 01 goes to the run's client only: another INSI-AUTO certificate asking the same gets the
    /// service's own answer.
    @Test func injectedAnswersReachOnlyTheRunsClient() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            let otherDN = "CN=INSI-AUTO,OU=1690099991,O=AUTRE CENTRE SANDBOX,C=FR"
            let other = try SharedPKI.client(otherDN)
            try running.whitelist("insi", dn: otherDN)
            _ = try await RunDriver.start(running, pack: "insi", client: Self.lpsDN)
            var call = INSiCall()
            (call.birthName, call.firstNames, call.sex, call.birthDate) = (
                "ECETINSI", ["PIERRE-ALAIN"], "M", "2009-07-14"
            )
            let outsider = try await LPSClient(running: running, client: other).search(call)
            #expect(outsider.code == "00")
            let member = try await LPSClient(running: running, client: try RunDriver.files(running, "insi-lps"))
                .search(call)
            #expect(member.code == "01")
            // Once: the next identical call gets the service's answer again.
            #expect(
                try await LPSClient(running: running, client: try RunDriver.files(running, "insi-lps")).search(call)
                    .code
                    == "00"
            )
            running.sandbox.journal.flush()
            let injected = try running.sandbox.journal.entries(JournalFilter(limit: 10)).filter {
                $0.reason?.hasPrefix("recette-injection") == true
            }
            #expect(injected.count == 1)
            #expect(injected.first?.subjectDN?.contains("OU=1690099990") == true)
        }
    }
}

import Foundation
import NIOConcurrencyHelpers
import Store
import TestPKI
import Testing
import X509

@testable import Access

@Suite("Onboarding requests, the ANS delay and the sandbox clock")
struct OnboardingTests {
    /// A store, whitelist, clock on a real time the test moves, and the flow.
    final class Fixture: Sendable {
        let store: SandboxStore
        let whitelist: Whitelist
        let realTime = NIOLockedValueBox(Date(timeIntervalSince1970: 1_800_000_000))
        let clock: SandboxClock
        let onboarding: Onboarding

        init(delay: String = "0", speed: Double? = nil) throws {
            store = try SandboxStore.inMemory()
            whitelist = try Whitelist(store: store)
            let time = realTime
            clock = try SandboxClock(store: store, speed: speed, realNow: { time.withLockedValue { $0 } })
            onboarding = try Onboarding(
                store: store,
                whitelist: whitelist,
                clock: clock,
                delay: try WhitelistDelay(parsing: delay),
                environments: ["bac-a-sable", "production"]
            )
        }

        func advance(seconds: Double) { realTime.withLockedValue { $0 += seconds } }
    }

    static let eaiDN = "CN=EAI-ARA-TEST,OU=0002 130007677,O=GCS SARA,ST=Rhone (69),C=FR"

    static func eai(direction: String = "feed", service: String = "ror-fhir") -> OnboardingSubmission {
        OnboardingSubmission(
            kind: "eai-regional",
            direction: direction,
            service: service,
            contact: "eai@example.test",
            subjectDN: eaiDN,
            establishments: ["690000001", "690000002"]
        )
    }

    static func pem(_ dn: String) throws -> (pem: String, identity: ClientIdentity) {
        let root = try CertificateMinter.authority(
            subject: try SandboxPKI.caName("TEST ROOT"),
            algorithm: .p256,
            issuer: nil,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        let leaf = try CertificateMinter.client(
            subject: try SubjectDN(parsing: dn).distinguishedName(),
            algorithm: .p256,
            issuer: root,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        return (
            try leaf.certificate.serializeAsPEM().pemString,
            try ClientIdentity(certificate: leaf.certificate, verdict: .trusted)
        )
    }

    /// Brings a fresh request to `state` through the allowed path.
    static func request(in state: OnboardingState, _ fixture: Fixture) throws -> Int64 {
        let id = try fixture.onboarding.submit(eai(), actor: "test").id
        switch state {
        case .submitted: break
        case .rejected: _ = try fixture.onboarding.reject(id, reason: "incomplete file", actor: "committee")
        case .validated, .testsDone, .whitelisted, .revoked:
            _ = try fixture.onboarding.validate(id, decision: .init(), actor: "committee")
            if state == .validated { break }
            _ = try fixture.onboarding.markTestsDone(id, actor: "publisher")  // delay 0: whitelisted at once
            if state == .testsDone {
                // Only reachable with a delay: rebuild in a fixture with one is simpler, so tested separately.
                break
            }
            if state == .revoked { _ = try fixture.onboarding.revoke(id, reason: "end of contract", actor: "ans") }
        }
        return id
    }

    @Test func everyTransitionIsAllowedOnlyFromItsStates() throws {
        let actions: [(OnboardingState, (Onboarding, Int64) throws -> OnboardingRequest)] = [
            (.validated, { try $0.validate($1, decision: .init(), actor: "c") }),
            (.rejected, { try $0.reject($1, reason: "no", actor: "c") }),
            (.testsDone, { try $0.markTestsDone($1, actor: "p") }),
            (.whitelisted, { try $0.addToWhitelist($1, actor: "a") }),
            (.revoked, { try $0.revoke($1, reason: nil, actor: "a") }),
        ]
        for from in OnboardingState.allCases where from != .testsDone {
            for (target, act) in actions {
                let fixture = try Fixture()
                let id = try Self.request(in: from, fixture)
                #expect(try fixture.onboarding.request(id).state == from)
                let allowed =
                    from.next.contains(target)
                    // with no delay, tests-done goes straight on to whitelisted
                    || (from == .validated && target == .testsDone)
                if allowed {
                    let after = try act(fixture.onboarding, id)
                    #expect(after.state == (target == .testsDone ? .whitelisted : target), "\(from) → \(target)")
                } else {
                    let error = #expect(throws: OnboardingError.self, "\(from) → \(target)") {
                        try act(fixture.onboarding, id)
                    }
                    #expect(error?.kind == .conflict)
                    #expect(error?.description.contains("is \(from.rawValue)") == true)
                    #expect(try fixture.onboarding.request(id).state == from, "unchanged after a refused \(target)")
                }
            }
        }
        // From tests-done (a delay keeps it there).
        for (target, act) in actions {
            let fixture = try Fixture(delay: "1h")
            let id = try fixture.onboarding.submit(Self.eai(), actor: "t").id
            _ = try fixture.onboarding.validate(id, decision: .init(), actor: "c")
            #expect(try fixture.onboarding.markTestsDone(id, actor: "p").state == .testsDone)
            fixture.advance(seconds: 3600)
            if OnboardingState.testsDone.next.contains(target) {
                #expect(try act(fixture.onboarding, id).state == target)
            } else {
                #expect(throws: OnboardingError.self, "tests-done → \(target)") { try act(fixture.onboarding, id) }
            }
        }
    }

    @Test func historyRecordsWhoWhenAndWhy() throws {
        let fixture = try Fixture()
        let id = try Self.request(in: .revoked, fixture)
        let events = try fixture.onboarding.events(id)
        #expect(events.map(\.toState) == ["submitted", "validated", "tests-done", "whitelisted", "revoked"])
        #expect(events.map(\.actor) == ["test", "committee", "publisher", "ans", "ans"])
        #expect(events.last?.reason == "end of contract")
        #expect(events[1].fromState == "submitted")
    }

    @Test func eaiRequestBecomesOneEntryScopedToItsFINESSList() throws {
        let fixture = try Fixture()
        let id = try Self.request(in: .whitelisted, fixture)
        let entries = try fixture.whitelist.entries()
        #expect(entries.count == 1)
        #expect(entries[0].onboardingRequestId == id)
        #expect(entries[0].role == .feed)
        #expect(entries[0].establishments == ["690000001", "690000002"])
        let caller = try WhitelistTests.identity(Self.eaiDN)
        #expect(fixture.whitelist.decide(identity: caller, service: .rorFHIR, environment: "bac-a-sable").allowed)
        #expect(!fixture.whitelist.decide(identity: caller, service: .rorFHIR, environment: "production").allowed)

        // The ANS updates the list by mail: the entry follows.
        _ = try fixture.onboarding.setEstablishments(id, ["690000003"], actor: "ans")
        #expect(try fixture.whitelist.entries().map(\.establishments) == [["690000003"]])
        let bad = #expect(throws: OnboardingError.self) {
            try fixture.onboarding.setEstablishments(id, ["69"], actor: "ans")
        }
        #expect(bad?.kind == .invalid)
        #expect(try fixture.whitelist.entries().map(\.establishments) == [["690000003"]], "nothing half-applied")

        _ = try fixture.onboarding.revoke(id, reason: "left the region", actor: "ans")
        #expect(try fixture.whitelist.entries().isEmpty)
        #expect(!fixture.whitelist.decide(identity: caller, service: .rorFHIR, environment: "bac-a-sable").allowed)
        #expect(throws: OnboardingError.self) {
            try fixture.onboarding.setEstablishments(id, ["690000001"], actor: "ans")
        }
    }

    @Test func proprietarySolutionGetsOneEntryPerEstablishmentCertificate() throws {
        let fixture = try Fixture()
        let first = try Self.pem("CN=HOPITAL-A,OU=750000001,O=EDITEUR X,C=FR")
        let second = try Self.pem("CN=HOPITAL-B,OU=750000002,O=EDITEUR X,C=FR")
        let third = try Self.pem("CN=HOPITAL-C,OU=750000003,O=EDITEUR X,C=FR")
        let request = try fixture.onboarding.submit(
            OnboardingSubmission(
                kind: "proprietary",
                direction: "feed",
                service: "ror-fhir",
                contact: "x@editeur.test",
                establishmentCertificates: [
                    .init(finess: "750000001", certificatePEM: first.pem),
                    .init(finess: "750000002", certificatePEM: second.pem),
                ]
            ),
            actor: "t"
        )
        _ = try fixture.onboarding.validate(request.id, decision: .init(), actor: "c")
        _ = try fixture.onboarding.markTestsDone(request.id, actor: "p")
        var entries = try fixture.whitelist.entries()
        #expect(Set(entries.map(\.establishments)) == [["750000001"], ["750000002"]])
        let decision = fixture.whitelist.decide(
            identity: second.identity,
            service: .rorFHIR,
            environment: "bac-a-sable"
        )
        #expect(
            decision.entry?.establishments == ["750000002"],
            "each certificate writes for its own establishment only"
        )

        _ = try fixture.onboarding.addEstablishmentCertificate(
            request.id,
            .init(finess: "750000003", certificatePEM: third.pem),
            actor: "ans"
        )
        #expect(
            fixture.whitelist.decide(identity: third.identity, service: .rorFHIR, environment: "bac-a-sable").allowed
        )
        let duplicate = #expect(throws: OnboardingError.self) {
            try fixture.onboarding.addEstablishmentCertificate(
                request.id,
                .init(finess: "750000003", certificatePEM: third.pem),
                actor: "ans"
            )
        }
        #expect(duplicate?.kind == .conflict)
        _ = try fixture.onboarding.removeEstablishmentCertificate(request.id, finess: "750000001", actor: "ans")
        #expect(
            !fixture.whitelist.decide(identity: first.identity, service: .rorFHIR, environment: "bac-a-sable").allowed
        )
        entries = try fixture.whitelist.entries()
        #expect(entries.count == 2)
        #expect(throws: OnboardingError.self, "an EAI list edit on a proprietary request") {
            try fixture.onboarding.setEstablishments(request.id, ["750000009"], actor: "ans")
        }
    }

    @Test func csdRequestWhitelistsTheKey() throws {
        let fixture = try Fixture()
        let client = try Self.pem("CN=CSD-CLIENT,O=EDITEUR Y,C=FR")
        let request = try fixture.onboarding.submit(
            OnboardingSubmission(
                kind: "saas",
                direction: "consume",
                service: "ror-csd",
                contact: "y@editeur.test",
                certificatePEM: client.pem
            ),
            actor: "t"
        )
        _ = try fixture.onboarding.validate(request.id, decision: .init(), actor: "c")
        _ = try fixture.onboarding.markTestsDone(request.id, actor: "p")
        let entry = try #require(try fixture.whitelist.entries().first)
        #expect(entry.subjectDN == nil)
        #expect(entry.publicKeySHA256 == client.identity.spkiSHA256)
    }

    @Test func badSubmissionsAreRefusedAndNothingIsStored() throws {
        let fixture = try Fixture()
        var cases: [(OnboardingSubmission, String)] = []
        var s = Self.eai()
        s.kind = "hospital"
        cases.append((s, "kind: 'hospital'"))
        s = Self.eai()
        s.direction = "read"
        cases.append((s, "direction: 'read'"))
        s = Self.eai()
        s.service = "dmp2"
        cases.append((s, "service: 'dmp2'"))
        s = Self.eai()
        s.environment = "recette"
        cases.append((s, "environment: 'recette' is not served here"))
        s = Self.eai()
        s.contact = " "
        cases.append((s, "contact"))
        s = Self.eai()
        s.subjectDN = "CN=broken,=x"
        cases.append((s, "subjectDN"))
        s = Self.eai()
        s.establishments = []
        cases.append((s, "a feeding eai-regional gives the FINESS"))
        s = Self.eai()
        s.establishments = ["12345"]
        cases.append((s, "'12345' is not a FINESS"))
        s = Self.eai()
        s.establishments = ["690000001", "690000001"]
        cases.append((s, "appears twice"))
        s = Self.eai(direction: "consume", service: "ror-csd")
        s.subjectDN = nil
        cases.append((s, "ror-csd whitelists by public key"))
        s = Self.eai()
        s.kind = "proprietary"
        cases.append((s, "one certificate per establishment"))
        s = Self.eai()
        s.establishmentCertificates = [.init(finess: "690000001", certificatePEM: "x")]
        cases.append((s, "only proprietary solutions"))
        s = OnboardingSubmission(
            kind: "proprietary",
            direction: "feed",
            service: "ror-fhir",
            contact: "c",
            establishmentCertificates: [.init(finess: "690000001", certificatePEM: "not a pem")]
        )
        cases.append((s, "certificate of establishment 690000001"))
        for (submission, message) in cases {
            let error = #expect(throws: OnboardingError.self, "\(message)") {
                try fixture.onboarding.submit(submission, actor: "t")
            }
            #expect(error?.kind == .invalid)
            #expect(error?.description.contains(message) == true, "\(error?.description ?? "") should say \(message)")
        }
        #expect(try fixture.onboarding.list().isEmpty)
        #expect(try fixture.onboarding.events(1).isEmpty)
    }

    @Test func committeeDecisionIsCheckedBeforeTheStateChanges() throws {
        let fixture = try Fixture()
        let id = try fixture.onboarding.submit(Self.eai(direction: "consume"), actor: "t").id
        let missing = #expect(throws: OnboardingError.self) {
            try fixture.onboarding.validate(id, decision: .init(), actor: "c")
        }
        #expect(missing?.description.contains("accessProfile") == true)
        #expect(throws: OnboardingError.self) {
            try fixture.onboarding.validate(id, decision: .init(accessProfile: 7), actor: "c")
        }
        #expect(throws: OnboardingError.self, "profile 0 needs a secret") {
            try fixture.onboarding.validate(id, decision: .init(accessProfile: 0), actor: "c")
        }
        #expect(throws: OnboardingError.self) { try fixture.onboarding.reject(id, reason: "  ", actor: "c") }
        #expect(try fixture.onboarding.request(id).state == .submitted)
        let validated = try fixture.onboarding.validate(
            id,
            decision: .init(accessProfile: 2, rorHeaders: ["Ror-Role-Metier-Code": "10"]),
            actor: "c"
        )
        #expect(validated.committee?.clientId == "sandbox-client-\(id)")
        _ = try fixture.onboarding.markTestsDone(id, actor: "p")
        let entry = try #require(try fixture.whitelist.entries().first)
        #expect(entry.accessProfile == 2)
        #expect(fixture.whitelist.rorClient("sandbox-client-\(id)", environment: "bac-a-sable") != nil)
    }

    @Test func theANSDelayRunsOnTheCompressedClock() throws {
        // 5 days at 3600× = 120 real seconds.
        let fixture = try Fixture(delay: "5d", speed: 3600)
        let id = try fixture.onboarding.submit(Self.eai(), actor: "t").id
        _ = try fixture.onboarding.validate(id, decision: .init(), actor: "c")
        let done = try fixture.onboarding.markTestsDone(id, actor: "p")
        #expect(done.state == .testsDone)
        #expect(done.whitelistDueAt == fixture.clock.now.addingTimeInterval(5 * 86_400))
        fixture.advance(seconds: 60)
        let early = #expect(throws: OnboardingError.self) { try fixture.onboarding.addToWhitelist(id, actor: "ans") }
        #expect(early?.kind == .conflict)
        #expect(early?.description.contains("2 d 12 h left") == true, "\(early?.description ?? "")")
        #expect(early?.description.contains("×3600") == true)
        #expect(try fixture.whitelist.entries().isEmpty)
        fixture.advance(seconds: 59)
        #expect(try fixture.onboarding.promoteDue().isEmpty)
        fixture.advance(seconds: 1)
        #expect(try fixture.onboarding.promoteDue().map(\.id) == [id])
        #expect(try fixture.onboarding.request(id).state == .whitelisted)
        #expect(try fixture.onboarding.events(id).last?.actor == "ans")
    }

    @Test func clockKeepsItsTimeLineAcrossSpeedChangesAndProcesses() throws {
        let fixture = try Fixture(speed: 3600)
        let start = fixture.clock.now
        fixture.advance(seconds: 10)
        #expect(fixture.clock.now == start.addingTimeInterval(36_000))
        try fixture.clock.setSpeed(1)
        fixture.advance(seconds: 10)
        #expect(fixture.clock.now == start.addingTimeInterval(36_010), "slowing down does not go back in time")
        let time = fixture.realTime
        let other = try SandboxClock(store: fixture.store, realNow: { time.withLockedValue { $0 } })
        #expect(other.now == fixture.clock.now, "another process (the CLI) reads the same time")
        #expect(other.view.label == "real time")
        try fixture.clock.setSpeed(60)
        #expect(fixture.clock.view.label == "×60 (1 min per second)")
        #expect(throws: ClockError.self) { try fixture.clock.setSpeed(0) }
        #expect(throws: ClockError.self) { try WhitelistDelay(parsing: "5 days") }
        #expect(try WhitelistDelay(parsing: "90m").seconds == 5400)
    }
}

import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import SOAPCore
import Testing

@testable import DMP
@testable import SandboxServer
@testable import SandboxTestSupport

/// The DMP on a full disk (SQLite's page limit standing in for it): a submission is answered as XDS answers what it
/// cannot keep, `XDSRepositoryOutOfResources` in the RegistryResponse, nothing of it stored, and accepted again once
/// there is room; its SOAP services' other writes (HL7v3) with a 503 Receiver fault and a Retry-After (an update in
/// place needs no new page, so that one is checked from the error, and on a real full disk by scripts/disk-full-check).
@Suite("DMP on a full disk")
struct DMPStorageFullTests {
    typealias P = DMPPatientsTests
    typealias D = DMPDocumentTests

    @Test func submissionRefusedAsXDSDoesThenAccepted() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            try await running.databaseFull(true)
            var refusedUniqueId = ""
            var answer: SOAPElement?
            for attempt in 0..<200 {
                let uniqueId = "1.2.250.1.999.1.\(800_000 + attempt)"
                let (response, root) = try await D.submit(
                    running,
                    D.submission(content: D.cda(text: "Plein \(attempt)"), uniqueId: uniqueId),
                    client: client
                )
                #expect(response.status == .ok)
                if !D.errorCodes(root).isEmpty {
                    (refusedUniqueId, answer) = (uniqueId, root)
                    break
                }
            }
            let refusal = try #require(answer, "200 submissions accepted on a full database")
            #expect(D.errorCodes(refusal) == ["XDSRepositoryOutOfResources"])
            #expect(try running.sandbox.dmp.documentStore.entry(uniqueId: refusedUniqueId) == nil)

            try await running.databaseFull(false)
            let (_, accepted) = try await D.submit(
                running,
                D.submission(content: D.cda(text: "Encore"), uniqueId: refusedUniqueId),
                client: client
            )
            #expect(D.errorCodes(accepted).isEmpty, "\(accepted)")
        }
    }

    @Test func soapWritesRefusedWithAReceiverFault() throws {
        let fault = DMPFault.storage(DatabaseError(resultCode: .SQLITE_FULL))
        #expect(fault.response.status == .serviceUnavailable)
        #expect(fault.response.headers[.retryAfter] == "30")
        #expect(fault.fault.code == .receiver && fault.fault.subcode == "sandbox:InsufficientStorage")
        let other = DMPFault.storage(DatabaseError(resultCode: .SQLITE_CORRUPT))
        #expect(other.response.status == .internalServerError && other.response.headers[.retryAfter] == nil)
    }
}

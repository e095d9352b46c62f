import Foundation
import Testing

@testable import Access

/// The journal's page recipe as stored: read back as written, whatever the bytes; a damaged one is refused, never
/// read past its end.
@Suite("Journal page encoding")
struct JournalPageEncodingTests {
    @Test func aPageReadsBackAsWritten() throws {
        let page = JournalPage(
            parts: [
                .bytes(Data("{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":".utf8)),
                .version(StoredVersion(type: "Location", id: "loc-00001-1", version: 12, lastUpdated: "2026-12-07")),
                .bytes(Data([0, 1, 0xFF, 0x0A])),
                .bytes(Data()),
                .version(StoredVersion(type: "HealthcareService", id: "hs-1", version: 1, lastUpdated: "")),
            ],
            length: 70_000
        )
        #expect(JournalPage(encoded: page.encoded()) == page)
    }

    @Test func aDamagedPageIsRefused() {
        let encoded = JournalPage(
            parts: [.version(StoredVersion(type: "Location", id: "l1", version: 3, lastUpdated: "t"))],
            length: 9
        ).encoded()
        for cut in 0..<encoded.count where cut != 4 {
            #expect(JournalPage(encoded: encoded.prefix(cut)) == nil, "cut at \(cut)")
        }
        var badTag = encoded
        badTag[4] = 7
        #expect(JournalPage(encoded: badTag) == nil)
        let noVersion = Data([9, 0, 0, 0, 1, 3, 0, 0, 0]) + Data("a\u{0}b".utf8)
        #expect(JournalPage(encoded: noVersion) == nil)
    }
}

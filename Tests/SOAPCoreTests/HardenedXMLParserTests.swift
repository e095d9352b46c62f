import Foundation
import SOAPCore
import Testing

@Suite("Hardened XML parser (SOAP 1.2: no DTD, bounded)")
struct HardenedXMLParserTests {
    @Test func parserHonoursDeclaredEncodings() throws {
        let text = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>T\u{E9}l\u{E9}service</r>"
        let root = try HardenedXMLParser().parse(try #require(text.data(using: .isoLatin1)))
        #expect(root.text == "Téléservice")
    }

    @Test(arguments: [
        "<!DOCTYPE r><r/>",
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
        "<r><!ENTITY a \"b\"></r>",
        // After false starts (the search resumes past each `<!`), and as the very last bytes.
        "<r><!-- <! <!D <!DOCTYP --><![CDATA[<!DOCTYPE]]></r>",
        "<r/><!DOCTYPE",
    ])
    func documentTypeDeclarationsAreRefusedBeforeParsing(_ text: String) {
        #expect(throws: XMLRejection.documentTypeDeclaration) { try HardenedXMLParser().parse(Data(text.utf8)) }
    }

    /// FoundationXML traps on an element name that is not UTF-8 (found by libFuzzer: five bytes stopped the server);
    /// such bytes are refused first, naming where they are, unless a single-byte encoding is declared.
    @Test func bytesThatAreNotUTF8AreRefusedBeforeTheParser() throws {
        do {
            _ = try HardenedXMLParser().parse(Data([0x3C, 0xC9, 0x78, 0x6D, 0x72]))
            Issue.record("accepted")
        } catch {
            guard case .malformed(let line, let column, let message) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(line == 1 && column == 2)
            #expect(message.contains("byte 1 is not UTF-8"))
        }
        let declared = Data("<?xml version=\"1.0\" encoding=\"UTF08\"?>\n<r>\n<\u{C9}".utf8) + Data([0xC9, 0x3E])
        #expect(throws: XMLRejection.self) { try HardenedXMLParser().parse(declared) }
        // ISO-8859-1 declared: every byte is a character.
        let latin = Data("<?xml version='1.0' encoding='iso-8859-1'?><r>".utf8) + Data([0xC9]) + Data("</r>".utf8)
        #expect(try HardenedXMLParser().parse(latin).text == "É")
    }

    /// SOAP 1.2 forbids processing instructions; FoundationXML crashed on one without data (found by libFuzzer).
    @Test(arguments: [
        "<?m?>", "<?xml?><r/>", "<?xmlx version='1.0'?><r/>", "<?xml version=\"1.0\"?><r><?pi data?></r>",
        "\u{FEFF}<?xml version='1.0'?><?x?><r/>",
    ])
    func processingInstructionsAreRefused(_ text: String) {
        #expect(
            throws: XMLRejection.malformed(
                line: 1,
                column: 1,
                message: "processing instructions are not allowed in a SOAP message"
            )
        ) { try HardenedXMLParser().parse(Data(text.utf8)) }
    }

    /// A CDA document may carry a stylesheet PI (allowed when asked); a PI without data is refused all the same.
    @Test func documentsMayAllowProcessingInstructionsWithData() throws {
        let parser = HardenedXMLParser(allowsProcessingInstructions: true)
        let cda = "<?xml version=\"1.0\"?><?xml-stylesheet type=\"text/xsl\" href=\"CDA.xsl\"?><ClinicalDocument/>"
        #expect(try parser.parse(Data(cda.utf8)).name == "ClinicalDocument")
        #expect(throws: XMLRejection.self) { try parser.parse(Data("<?m?><r/>".utf8)) }
        #expect(throws: XMLRejection.self) { try parser.parse(Data("<r><?m   ?></r>".utf8)) }
    }

    @Test func nearMissesAreNotDeclarations() throws {
        let root = try HardenedXMLParser().parse(Data("<r><!-- <! <!DOCTYP <!ENTIT --><a>&lt;!DOCTYPE</a></r>".utf8))
        #expect(root.child("a")?.text == "<!DOCTYPE")
    }

    @Test func boundsAreEnforced() {
        let deep = String(repeating: "<a>", count: 10) + String(repeating: "</a>", count: 10)
        #expect(throws: XMLRejection.tooDeep(limit: 5)) {
            try HardenedXMLParser(maximumDepth: 5).parse(Data(deep.utf8))
        }
        let many = "<r>" + String(repeating: "<a/>", count: 20) + "</r>"
        #expect(throws: XMLRejection.tooManyElements(limit: 10)) {
            try HardenedXMLParser(maximumElements: 10).parse(Data(many.utf8))
        }
        #expect(throws: XMLRejection.tooLarge(bytes: 200, limit: 100)) {
            try HardenedXMLParser(maximumBytes: 100).parse(Data(String(repeating: " ", count: 200).utf8))
        }
        #expect(throws: XMLRejection.empty) { try HardenedXMLParser().parse(Data()) }
    }

    @Test func malformedXMLNamesWhereItBroke() {
        #expect {
            try HardenedXMLParser().parse(Data("<r><a></r>".utf8))
        } throws: { error in
            if case .malformed(let line, _, _) = error as? XMLRejection { return line == 1 }
            return false
        }
    }
}

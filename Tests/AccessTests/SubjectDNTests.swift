import Testing
import X509

@testable import Access

@Suite("Subject DN parsing and normalisation")
struct SubjectDNTests {
    static let rorDN = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    /// The same DN written the three ways the issue lists, plus the Java `toString()` spacing and OpenSSL's
    /// RFC 2253 escaping of non-ASCII bytes.
    @Test(arguments: [
        ("CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR", SubjectDN.Format.rfc4514),
        ("CN=CLIENT_TEST_RORN, OU=33333333333, O=GIP - TEST3012, ST=Paris (75), C=FR", .rfc4514),
        ("C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN", .openSSLOneLine),
        ("/C=FR/ST=Paris (75)/O=GIP - TEST3012/OU=33333333333/CN=CLIENT_TEST_RORN", .slash),
        ("cn=client_test_rorn,ou=33333333333,o=gip - test3012,st=paris (75),c=fr", .rfc4514),
        ("2.5.4.3=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,S=Paris (75),countryName=FR", .rfc4514),
    ])
    func sameDNThreeWays(text: String, format: SubjectDN.Format) throws {
        #expect(SubjectDN.detectFormat(text) == format)
        let parsed = try SubjectDN(parsing: text)
        let reference = try SubjectDN(parsing: Self.rorDN)
        #expect(parsed.matchKey == reference.matchKey)
        #expect(parsed.rdns.first?.first == SubjectDN.Attribute(type: "C", value: parsed.value(of: "C")!))
    }

    @Test func printsTheRFC4514FormOfTheCertificate() throws {
        let dn = try SubjectDN(
            parsing: "C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN"
        )
        #expect(dn.rfc4514 == Self.rorDN)
        #expect(
            dn.openSSLOneLine == "C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN"
        )
        #expect(dn.slashForm == "/C=FR/ST=Paris (75)/O=GIP - TEST3012/OU=33333333333/CN=CLIENT_TEST_RORN")
    }

    /// Escapes, quotes, accents (NFC vs NFD), multi-valued RDNs, hex values.
    @Test(arguments: [
        // (input, expected RFC 4514 output)
        (#"CN=Dupont\, Jean,O=Société Générale,C=FR"#, #"CN=Dupont\, Jean,O=Société Générale,C=FR"#),
        (#"CN=Soci\C3\A9t\C3\A9,C=FR"#, "CN=Société,C=FR"),
        (##"CN=\#hash\;semi\<lt\>gt,C=FR"##, ##"CN=\#hash\;semi\<lt\>gt,C=FR"##),
        (#"CN=a\+b,C=FR"#, #"CN=a\+b,C=FR"#),
        ("CN=multi+E=a@b.fr,C=FR", "CN=multi+E=a@b.fr,C=FR"),
        (#"CN=" quoted, value ",C=FR"#, #"CN=\ quoted\, value\ ,C=FR"#),
        ("ST=Île-de-France (75),C=FR", "ST=Île-de-France (75),C=FR"),
        ("CN=#0c03616263,C=FR", "CN=abc,C=FR"),
        ("/C=FR/CN=a\\/b", #"CN=a/b,C=FR"#),
        (#"C = FR, O = "Société Générale, \"SG\"", CN = x"#, #"CN=x,O=Société Générale\, \"SG\",C=FR"#),
        ("OID.2.5.4.97=VATFR-123,C=FR", "ORGANIZATIONIDENTIFIER=VATFR-123,C=FR"),
        ("1.2.3.4=x,C=FR", "1.2.3.4=x,C=FR"),
    ])
    func escaping(input: String, expected: String) throws {
        #expect(try SubjectDN(parsing: input).rfc4514 == expected)
    }

    @Test func accentsCompareInNFCAndCaseInsensitively() throws {
        let composed = try SubjectDN(parsing: "CN=INSI-AUTO,ST=Rh\u{00F4}ne (69),C=FR")
        let decomposed = try SubjectDN(parsing: "cn=insi-auto,st=RHO\u{0302}NE (69),c=fr")
        #expect(composed.matchKey == decomposed.matchKey)
        let collapsedSpaces = try SubjectDN(parsing: "CN=INSI-AUTO,ST=Rhône  (69),C=FR")
        #expect(collapsedSpaces.matches(composed))
    }

    @Test func multiValuedRDNIsASet() throws {
        let a = try SubjectDN(parsing: "CN=x+E=a@b.fr,C=FR")
        let b = try SubjectDN(parsing: "E=a@b.fr+CN=x,C=FR")
        #expect(a.matches(b))
        #expect(a.rdns.count == 2)
    }

    @Test func rdnOrderIsSignificant() throws {
        let a = try SubjectDN(parsing: "CN=x,O=y,C=FR")
        let b = try SubjectDN(parsing: "C=FR,O=y,CN=x")
        #expect(!a.matches(b))
        #expect(a.unorderedMatchKey == b.unorderedMatchKey)
    }

    @Test(arguments: [
        ("", DNParseError.Kind.empty),
        ("   ", .empty),
        ("CN", .missingEquals),
        ("CN=x,OU", .missingEquals),
        ("=x", .emptyType),
        ("FOO=bar", .unknownAttributeType("FOO")),
        ("CN=", .emptyValue("CN")),
        ("CN=x\\", .danglingEscape),
        ("CN=x\\Q", .invalidHexEscape),
        ("CN=x\\4", .invalidHexEscape),
        ("CN=\\C3\\28", .invalidUTF8),
        ("CN=\"open", .unterminatedQuote),
        ("CN=#zz", .invalidHexValue),
        ("CN=#0201", .invalidHexValue),
    ])
    func malformed(text: String, kind: DNParseError.Kind) {
        #expect {
            _ = try SubjectDN(parsing: text)
        } throws: { error in
            (error as? DNParseError)?.kind == kind
        }
    }

    @Test func malformedMessageSaysWhereAndWhat() {
        do {
            _ = try SubjectDN(parsing: "CN=ok,FOO=bar")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("character 7"))
            #expect(error.description.contains("FOO"))
        }
    }

    @Test func roundTripsThroughAnX509Name() throws {
        let dn = try SubjectDN(
            parsing:
                ##"CN=\#Dupont\;Jean<x>,OU=\ lead\+trail\ ,O=Société Générale\, \"SG\",ST=Île-de-France (75),C=FR"##
        )
        let name = try dn.distinguishedName()
        // swift-certificates prints the RFC 4514 form; ours must be byte-identical.
        #expect(String(describing: name) == dn.rfc4514)
        #expect(SubjectDN(name) == dn)
    }
}

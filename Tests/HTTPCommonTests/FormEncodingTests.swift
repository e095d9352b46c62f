import HTTPCommon
import Testing

@Suite("Form encoding: one decoder for queries, form bodies and If-None-Exist")
struct FormEncodingTests {
    @Test func plusIsASpaceAndPercentEscapesAreDecoded() {
        let items = FormEncoding.items("name=Centre+hospitalier&identifier=11%2FNEW0001&_count=10")
        #expect(items.map(\.0) == ["name", "identifier", "_count"])
        #expect(items.map(\.1) == ["Centre hospitalier", "11/NEW0001", "10"])
    }

    @Test func orderAndRepetitionsAreKept() {
        let items = FormEncoding.items("_include=a&x=1&_include=b")
        #expect(items.map { "\($0.0)=\($0.1)" } == ["_include=a", "x=1", "_include=b"])
    }

    @Test func pairsWithoutANameAreSkippedAndAMissingValueIsEmpty() {
        let items = FormEncoding.items("=orphan&&flag&a=")
        #expect(items.map(\.0) == ["flag", "a"])
        #expect(items.map(\.1) == ["", ""])
    }

    @Test func invalidPercentEncodingIsKeptAsItCame() {
        #expect(FormEncoding.items("name=100%+sure").map(\.1) == ["100% sure"])
        #expect(FormEncoding.decode("%zz") == "%zz")
    }

    @Test func anEncodedValueDecodesBackToItself() {
        for value in ["a b", "système|code", "Type/id,Other/2", "50%", "x+y&z=1"] {
            let line = "k=" + FormEncoding.encode(value)
            #expect(FormEncoding.items(line).map(\.1) == [value], "\(value)")
        }
    }
}

import Foundation
import SOAPCore
import Testing

@Suite("SOAP action dispatch shared by the SOAP services")
struct SOAPEndpointTests {
    enum Operation: String, SOAPOperation, CaseIterable {
        case search, update

        var action: String { "urn:test:\(rawValue)" }
        func selects(_ body: SOAPElement) -> Bool { body.name == rawValue.capitalized }
    }

    static func request(body: String, wsaAction: String?, httpAction: String?) throws -> SOAPRequest {
        let header =
            wsaAction.map {
                "<soap:Header><wsa:Action xmlns:wsa=\"\(SOAPEndpoint.addressingNamespace)\">\($0)</wsa:Action></soap:Header>"
            } ?? ""
        let xml =
            "<soap:Envelope xmlns:soap=\"\(SOAPFault.envelopeNamespace)\">\(header)<soap:Body><\(body)/></soap:Body></soap:Envelope>"
        let contentType = "application/soap+xml; charset=utf-8" + (httpAction.map { "; action=\"\($0)\"" } ?? "")
        return SOAPRequest(
            envelope: try SOAPEnvelope(data: Data(xml.utf8)),
            contentType: contentType,
            httpAction: SOAPEnvelope.action(contentType: contentType)
        )
    }

    @Test func theBodyElementChoosesAndTheActionsMustAgree() throws {
        let ok = SOAPEndpoint.dispatch(
            try Self.request(body: "Update", wsaAction: "urn:test:update", httpAction: "urn:test:update"),
            among: Operation.allCases,
            requireAddressing: true
        )
        #expect(try ok.get() == .update)
        guard
            case .failure(.unknownElement(let element)) = SOAPEndpoint.dispatch(
                try Self.request(body: "Delete", wsaAction: nil, httpAction: nil),
                among: Operation.allCases,
                requireAddressing: false
            )
        else {
            Issue.record("an unknown element is refused")
            return
        }
        #expect(element.name == "Delete")
        guard
            case .failure(.missingAction(let expected)) = SOAPEndpoint.dispatch(
                try Self.request(body: "Search", wsaAction: nil, httpAction: nil),
                among: Operation.allCases,
                requireAddressing: true
            )
        else {
            Issue.record("wsa:Action is required when asked")
            return
        }
        #expect(expected == "urn:test:search")
        #expect(
            (try? SOAPEndpoint.dispatch(
                try Self.request(body: "Search", wsaAction: nil, httpAction: nil),
                among: Operation.allCases,
                requireAddressing: false
            ).get()) == .search
        )
        guard
            case .failure(.wrongAction(let origin, _, _)) = SOAPEndpoint.dispatch(
                try Self.request(body: "Search", wsaAction: "urn:test:update", httpAction: nil),
                among: Operation.allCases,
                requireAddressing: false
            )
        else {
            Issue.record("a wsa:Action of another operation is refused")
            return
        }
        #expect(origin == "wsa:Action")
        guard
            case .failure(.wrongAction(let httpOrigin, _, _)) = SOAPEndpoint.dispatch(
                try Self.request(body: "Search", wsaAction: nil, httpAction: "urn:test:update"),
                among: Operation.allCases,
                requireAddressing: false
            )
        else {
            Issue.record("a Content-Type action of another operation is refused")
            return
        }
        #expect(httpOrigin == "Content-Type")
        guard
            case .failure(.conflictingActions) = SOAPEndpoint.dispatch(
                try Self.request(body: "Search", wsaAction: "urn:test:search", httpAction: "urn:other"),
                among: Operation.allCases,
                requireAddressing: true
            )
        else {
            Issue.record("the two actions must agree")
            return
        }
        let alias = SOAPEndpoint.dispatch(
            try Self.request(body: "Search", wsaAction: "urn:alias", httpAction: nil),
            among: Operation.allCases,
            requireAddressing: false,
            aliases: { $0 == .search ? ["urn:alias"] : [] }
        )
        #expect(try alias.get() == .search)
    }
}

import Foundation
import Store

/// Where the top-level members of a resource's JSON, and the elements of one list member, sit in its bytes: the
/// next version of the resource copies the bytes of what it did not change instead of writing them again.
///
/// Why: a capacity PATCH changes one or two of a Location's indicators and its `meta`, and writing the whole
/// Location (12.7 KB) again was a twentieth of the PATCH's CPU.
public struct JSONLayout: Sendable {
    /// The JSON the ranges are in.
    let json: Data
    /// Each member's value, by key (offsets from the first byte).
    var members: [String: Range<Int>] = [:]
    /// The list member whose elements are located, and where each is.
    var listName: String?
    var elements: [Range<Int>] = []
    /// The ranges of the previous version's JSON this one copied, and where (the previous version is then kept as
    /// a delta from this one: ``ResourceHistory``).
    public var copies: [VersionDelta.Match] = []

    /// `resource` as JSON text (the bytes `JSON.object(resource).data()` gives), and its layout.
    ///
    /// With `previous` (the layout of the version `list` and `changed` refer to), the members not in `changed` and
    /// the elements of `list` that come whole from that version are copied from its bytes. `changed` nil: any member
    /// may differ (nothing copied but the list's elements). Without `list` the layout is left empty: a dataset load
    /// writes each resource once, and recording where its members are cost it for nothing.
    public static func write(
        _ resource: JSONObject,
        list: ResourceRepository.ListChange? = nil,
        changed: Set<String>? = nil,
        previous: JSONLayout? = nil
    ) -> (Data, JSONLayout) {
        var out: [UInt8] = []
        out.reserveCapacity(previous.map { $0.json.count + 256 } ?? 4096)
        var members: [String: Range<Int>] = [:]
        var elementRanges: [Range<Int>] = []
        var copies: [VersionDelta.Match] = []
        let reusable =
            previous.flatMap { previous in
                list.map { previous.listName == $0.name && previous.elements.count == $0.original.count }
            } ?? false
        // One memcpy (appending a slice of raw bytes went byte by byte).
        func copy(_ old: UnsafeRawBufferPointer, _ range: Range<Int>) {
            copies.append((range, out.count))
            out.append(
                contentsOf: UnsafeBufferPointer(
                    start: old.baseAddress!.advanced(by: range.lowerBound).assumingMemoryBound(to: UInt8.self),
                    count: range.count
                )
            )
        }
        func emit(_ old: UnsafeRawBufferPointer?) {
            out.append(0x7B)
            for (index, member) in resource.members.enumerated() {
                if index > 0 { out.append(0x2C) }
                FHIRJSON.writeString(member.key, into: &out)
                out.append(0x3A)
                let start = out.count
                if let list, member.key == list.name, case .array(let elements) = member.value {
                    // Element by element, so that the next version can copy them.
                    let origins = elements.count == list.origins.count && reusable ? list.origins : nil
                    out.append(0x5B)
                    for (position, element) in elements.enumerated() {
                        if position > 0 { out.append(0x2C) }
                        let elementStart = out.count
                        if let origin = origins?[position], let old, let previous {
                            copy(old, previous.elements[origin])
                        } else {
                            element.write(into: &out)
                        }
                        elementRanges.append(elementStart..<out.count)
                    }
                    out.append(0x5D)
                } else if let changed, !changed.contains(member.key), let old, let range = previous?.members[member.key]
                {
                    copy(old, range)
                } else {
                    member.value.write(into: &out)
                }
                if list != nil { members[member.key] = start..<out.count }
            }
            out.append(0x7D)
        }
        if let previous { previous.json.withUnsafeBytes { emit($0) } } else { emit(nil) }
        let json = Data(out)
        return (
            json,
            JSONLayout(json: json, members: members, listName: list?.name, elements: elementRanges, copies: copies)
        )
    }
}

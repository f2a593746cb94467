import Foundation

/// Checks on JSON text that the Foundation decoders do not make.
public enum JSONKeys {
    /// The first key that appears twice in the top-level object of `json` (compared after
    /// unescaping, so "a" and "\u0061" are the same key), or nil. `json` must already have been
    /// parsed successfully (this scanner assumes well-formed JSON and only tracks nesting).
    public static func firstDuplicateTopLevelKey<C: Collection>(_ json: C) -> String? where C.Element == UInt8 {
        let b = Array(json)
        var seen = Set<String>()
        var depth = 0, i = 0
        var expectKey = false
        while i < b.count {
            let c = b[i]
            switch c {
            case UInt8(ascii: "{"):
                depth += 1
                expectKey = depth == 1
                i += 1
            case UInt8(ascii: "["):
                depth += 1; i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1; i += 1
            case UInt8(ascii: ","):
                expectKey = depth == 1
                i += 1
            case UInt8(ascii: "\""):
                let (s, next) = string(b, from: i)
                if depth == 1 && expectKey {
                    if !seen.insert(s).inserted { return s }
                    expectKey = false
                }
                i = next
            default:
                i += 1
            }
        }
        return nil
    }

    /// The key starting at the quote `b[at]`, unescaped by Foundation's own JSON parser (so it
    /// compares as the decoded header's keys do), and the index past its closing quote.
    static func string(_ b: [UInt8], from at: Int) -> (String, Int) {
        var i = at + 1
        while i < b.count && b[i] != UInt8(ascii: "\"") { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
        let raw = Data(b[at..<min(i + 1, b.count)])
        let key = (try? JSONSerialization.jsonObject(with: raw, options: [.fragmentsAllowed])) as? String
        return (key ?? String(decoding: raw, as: UTF8.self), i + 1)
    }

    /// The byte offset of the first byte that is not part of well-formed UTF-8 in `bytes`, or nil.
    /// (Foundation's JSON decoder refuses them only as "not valid JSON", without saying where.)
    public static func firstInvalidUTF8<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

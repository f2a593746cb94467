import Foundation

/// Splits a byte stream into lines at "\n" (0x0A) only. U+2028, U+0085, "\r" and friends are
/// data: FineWeb text contains them inside JSON strings and they never end a record.
public final class LineReader {
    let reader: ByteReader
    var buf: [UInt8]
    var start = 0
    var end = 0
    var eof = false
    public private(set) var lineNumber = 0
    public let maxLine: Int
    public var name: String { reader.name }

    public init(_ reader: ByteReader, maxLine: Int = 256 << 20) {
        self.reader = reader
        self.maxLine = maxLine
        buf = [UInt8](repeating: 0, count: 1 << 16)
    }

    /// The next line without its "\n" (a final line without "\n" counts), nil at the end.
    public func next() throws -> ArraySlice<UInt8>? {
        var scanFrom = start
        while true {
            if let nl = buf[scanFrom..<end].firstIndex(of: 0x0A) {
                let line = buf[start..<nl]
                start = nl + 1
                lineNumber += 1
                return line
            }
            if eof {
                if start == end { return nil }
                let line = buf[start..<end]
                start = end
                lineNumber += 1
                return line
            }
            scanFrom = end
            // Make room: compact, then grow if the line is longer than the buffer.
            if start > 0 {
                let n = end - start
                buf.withUnsafeMutableBytes { p in
                    if n > 0 { memmove(p.baseAddress!, p.baseAddress! + start, n) }
                }
                scanFrom -= start
                end = n; start = 0
            }
            if end == buf.count {
                if buf.count >= maxLine {
                    throw DistilError.input(name, "line \(lineNumber + 1) is longer than \(maxLine) bytes")
                }
                buf.append(contentsOf: [UInt8](repeating: 0, count: buf.count))
            }
            let got = try buf.withUnsafeMutableBytes { p in
                try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: p[end...]))
            }
            if got == 0 { eof = true } else { end += got }
        }
    }
}

/// Reads JSON-lines records of one type. Blank lines are skipped; unknown fields are ignored;
/// every error names the input and the line: "prompts.jsonl:12: missing field 'text'".
public final class JSONLReader<T: Decodable> {
    let lines: LineReader
    let decoder = JSONDecoder()
    public var name: String { lines.name }
    public var lineNumber: Int { lines.lineNumber }

    public init(_ reader: ByteReader) { lines = LineReader(reader) }

    public convenience init(path: String) throws { self.init(try openInput(path)) }

    public func next() throws -> T? {
        while let line = try lines.next() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            return try decodeJSONLine(T.self, Data(line), decoder: decoder, where: "\(name):\(lines.lineNumber)")
        }
        return nil
    }

    public func readAll() throws -> [T] {
        var out: [T] = []
        while let r = try next() { out.append(r) }
        return out
    }
}

/// A record type with rules its Swift types cannot express (a uid is not negative, a size is not
/// negative): checked after every decode, so a record that breaks one is refused by the field.
public protocol CheckedRecord {
    /// The first field that breaks a rule, and how; nil when the record is valid.
    func invalidField() -> (field: String, problem: String)?
}

/// Decodes one JSON document, turning DecodingError into one readable line.
public func decodeJSONLine<T: Decodable>(_ type: T.Type, _ data: Data, decoder: JSONDecoder = JSONDecoder(),
                                         where place: String) throws -> T {
    if let bad = JSONKeys.firstInvalidUTF8(data) {
        throw DistilError("\(place): not valid UTF-8 (byte \(bad))")
    }
    let value: T
    do {
        value = try decoder.decode(T.self, from: data)
    } catch let e as DecodingError {
        if case .dataCorrupted(let ctx) = e, ctx.codingPath.isEmpty, let field = unrepresentableNumber(T.self, data, decoder) {
            throw DistilError("\(place): field '\(field.path)': \(field.problem)")
        }
        throw DistilError("\(place): \(describe(e))")
    } catch let e as DistilError {
        throw DistilError("\(place): \(e.message)")
    } catch {
        throw DistilError("\(place): invalid JSON: \(error)")
    }
    if let c = value as? CheckedRecord, let bad = c.invalidField() {
        throw DistilError("\(place): field '\(bad.field)': \(bad.problem)")
    }
    return value
}

/// Foundation's decoder reports a number that does not fit its field (1.5 or 2^64 for an Int) as
/// "not valid JSON" without a field. When the text is valid JSON, the number at fault is found by
/// replacing each candidate (not an integer, or beyond 64 bits) with 0 until the decode gets
/// past it. Error path only; records are small.
func unrepresentableNumber<T: Decodable>(_: T.Type, _ data: Data, _ decoder: JSONDecoder) -> (path: String, problem: String)? {
    guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
    var candidates: [([Any], NSNumber)] = []
    func walk(_ v: Any, _ path: [Any]) {
        if let d = v as? [String: Any] { for k in d.keys.sorted() { walk(d[k]!, path + [k]) } }
        else if let a = v as? [Any] { for (i, x) in a.enumerated() { walk(x, path + [i]) } }
        else if let n = v as? NSNumber, !(String(describing: type(of: v)).contains("Bool")) {
            let d = n.doubleValue
            if d != d.rounded() || abs(d) >= 9.2e18 || !d.isFinite || n is NSDecimalNumber { candidates.append((path, n)) }
        }
    }
    walk(root, [])
    func replacing(_ v: Any, _ path: ArraySlice<Any>) -> Any {
        guard let head = path.first else { return 0 }
        if var d = v as? [String: Any], let k = head as? String { d[k] = replacing(d[k]!, path.dropFirst()); return d }
        if var a = v as? [Any], let i = head as? Int { a[i] = replacing(a[i], path.dropFirst()); return a }
        return v
    }
    for (path, n) in candidates {
        guard let patched = try? JSONSerialization.data(withJSONObject: replacing(root, path[...]), options: [.fragmentsAllowed]) else { continue }
        var fixed = true
        do { _ = try decoder.decode(T.self, from: patched) } catch DecodingError.dataCorrupted(let c) where c.codingPath.isEmpty {
            fixed = false
        } catch {}
        if fixed {
            let name = path.map { k in (k as? Int).map { "[\($0)]" } ?? ".\(k)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
            let text = n.stringValue
            let d = n.doubleValue
            return (name, d == d.rounded() && d.isFinite ? "\(text) is out of the field's range" : "expected an integer, got \(text)")
        }
    }
    return nil
}

func pathString(_ path: [CodingKey]) -> String {
    path.map { k in k.intValue.map { "[\($0)]" } ?? ".\(k.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
}

/// One line for a DecodingError: which field, what was expected.
public func describe(_ e: DecodingError) -> String {
    switch e {
    case .keyNotFound(let key, let ctx):
        let parent = pathString(ctx.codingPath)
        return "missing field '\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)'"
    case .typeMismatch(let type, let ctx):
        return "field '\(pathString(ctx.codingPath))': expected \(typeName(type))"
    case .valueNotFound(let type, let ctx):
        return "field '\(pathString(ctx.codingPath))': null where \(typeName(type)) is required"
    case .dataCorrupted(let ctx):
        let p = pathString(ctx.codingPath)
        if p.isEmpty {
            let under = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "invalid JSON" + (under.map { ": \($0)" } ?? "")
        }
        return "field '\(p)': \(ctx.debugDescription)"
    @unknown default:
        return "invalid record"
    }
}

func typeName(_ t: Any.Type) -> String {
    switch t {
    case is String.Type: return "a string"
    case is Int.Type, is Int64.Type, is UInt64.Type, is Int32.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    case is Bool.Type: return "true or false"
    default:
        let s = "\(t)"
        if s.hasPrefix("Array") { return "an array" }
        if s.hasPrefix("Dictionary") { return "an object" }
        return "an object"
    }
}

/// Writes records as JSON lines: sorted keys, no escaped slashes, "\n" after each, so the
/// same records always give the same bytes.
public final class JSONLWriter {
    let writer: ByteWriter
    let encoder: JSONEncoder

    public init(_ writer: ByteWriter) {
        self.writer = writer
        encoder = makeEncoder()
    }

    public func write<T: Encodable>(_ record: T) throws {
        var data = try encoder.encode(record)
        data.append(0x0A)
        try data.withUnsafeBytes { try writer.write($0) }
    }

    public func close() throws { try writer.close() }
}

/// The project's canonical JSON encoder (sorted keys, unescaped slashes).
public func makeEncoder(pretty: Bool = false) -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
    e.nonConformingFloatEncodingStrategy = .throw
    return e
}

/// Encodes one value as canonical JSON bytes.
public func encodeJSON<T: Encodable>(_ v: T, pretty: Bool = false) throws -> [UInt8] {
    Array(try makeEncoder(pretty: pretty).encode(v))
}

/// Decodes a JSON document read from `path` (bounded), with errors naming the file.
public func decodeJSONFile<T: Decodable>(_ type: T.Type, path: String, limit: Int = 64 << 20) throws -> T {
    let bytes = try readFile(path, limit: limit)
    return try decodeJSONLine(T.self, Data(bytes), where: path)
}

import DistilFormats

/// A decoder for the Thrift compact protocol, the encoding of parquet's footer (FileMetaData)
/// and page headers. Built for untrusted bytes: every length is checked against the bytes
/// that remain, list sizes are bounded by them (each element takes at least one byte), and
/// nesting is limited, so no input can make it allocate much, recurse deeply or loop.
///
/// Wire format (thrift compact protocol spec): a struct is a run of field headers, each one
/// byte `delta << 4 | type` (delta 0 means a zigzag varint i16 field id follows), ended by
/// 0x00. Types: 1/2 bool true/false (the value is in the header), 3 i8, 4 i16, 5 i32, 6 i64
/// (zigzag varints), 7 double (8 bytes LE), 8 binary (varint length + bytes), 9 list, 10 set
/// (header `size << 4 | elemType`, size 15 means a varint size follows), 11 map, 12 struct.
struct ThriftReader {
    /// Wire types of the compact protocol.
    enum WireType: UInt8 {
        case boolTrue = 1, boolFalse = 2, i8 = 3, i16 = 4, i32 = 5, i64 = 6, double = 7
        case binary = 8, list = 9, set = 10, map = 11, structure = 12
    }

    /// Thrown for malformed input; the caller adds the file and the structure being read.
    struct Malformed: Error { let what: String }

    let bytes: [UInt8]
    private(set) var pos: Int
    let end: Int
    /// Maximum struct/list nesting (parquet's deepest is ~6; this leaves slack for extensions).
    static let maxDepth = 64
    private var depth = 0

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.pos = start
        self.end = min(end ?? bytes.count, bytes.count)
    }

    var remaining: Int { end - pos }

    mutating func byte() throws -> UInt8 {
        guard pos < end else { throw Malformed(what: "ends early") }
        let b = bytes[pos]
        pos += 1
        return b
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw Malformed(what: "varint overflows 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw Malformed(what: "varint longer than 10 bytes") }
        }
    }

    mutating func zigzag64() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func zigzag32() throws -> Int32 {
        let v = try zigzag64()
        guard let r = Int32(exactly: v) else { throw Malformed(what: "i32 value \(v) out of range") }
        return r
    }

    /// Reads a struct: calls `field(id, type)` for every field, which must consume the value
    /// (or call `skip`). Handles nesting depth and the stop byte.
    mutating func readStruct(_ field: (inout ThriftReader, Int16, WireType) throws -> Void) throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= ThriftReader.maxDepth else { throw Malformed(what: "nested deeper than \(ThriftReader.maxDepth) levels") }
        var lastID: Int16 = 0
        while true {
            let h = try byte()
            if h == 0 { return }
            guard let type = WireType(rawValue: h & 0x0F) else { throw Malformed(what: "unknown field type \(h & 0x0F)") }
            let delta = Int16(h >> 4)
            let id: Int16
            if delta == 0 {
                let v = try zigzag64()
                guard let i = Int16(exactly: v) else { throw Malformed(what: "field id \(v) out of range") }
                id = i
            } else {
                id = lastID &+ delta
            }
            lastID = id
            try field(&self, id, type)
        }
    }

    /// The header of a list or set: element type and count (bounded by the bytes left).
    mutating func listHeader() throws -> (WireType, Int) {
        let h = try byte()
        var n = Int(h >> 4)
        if n == 15 {
            let v = try varint()
            guard v <= UInt64(remaining) else { throw Malformed(what: "list of \(v) elements in \(remaining) bytes") }
            n = Int(v)
        }
        guard let t = WireType(rawValue: h & 0x0F) else { throw Malformed(what: "unknown list element type \(h & 0x0F)") }
        // Every element takes at least one byte on the wire (bools in lists take one each).
        guard n <= remaining else { throw Malformed(what: "list of \(n) elements in \(remaining) bytes") }
        return (t, n)
    }

    /// Reads a list whose elements are decoded by `element`.
    mutating func readList<T>(_ expected: WireType, _ element: (inout ThriftReader) throws -> T) throws -> [T] {
        let (t, n) = try listHeader()
        guard t == expected || (n == 0) else { throw Malformed(what: "list of type \(t), expected \(expected)") }
        var out: [T] = []
        out.reserveCapacity(n)
        depth += 1
        defer { depth -= 1 }
        guard depth <= ThriftReader.maxDepth else { throw Malformed(what: "nested deeper than \(ThriftReader.maxDepth) levels") }
        for _ in 0..<n { out.append(try element(&self)) }
        return out
    }

    mutating func binary() throws -> ArraySlice<UInt8> {
        let n = try varint()
        guard n <= UInt64(remaining) else { throw Malformed(what: "binary of \(n) bytes with \(remaining) left") }
        let s = bytes[pos..<(pos + Int(n))]
        pos += Int(n)
        return s
    }

    // Typed readers that check the wire type of a struct field.

    mutating func i32(_ t: WireType) throws -> Int32 {
        guard t == .i32 || t == .i16 || t == .i8 else { throw Malformed(what: "expected an i32, found \(t)") }
        if t == .i8 { return Int32(Int8(bitPattern: try byte())) }
        return try zigzag32()
    }

    mutating func i64(_ t: WireType) throws -> Int64 {
        guard t == .i64 || t == .i32 || t == .i16 || t == .i8 else { throw Malformed(what: "expected an i64, found \(t)") }
        if t == .i8 { return Int64(Int8(bitPattern: try byte())) }
        return try zigzag64()
    }

    mutating func bool(_ t: WireType) throws -> Bool {
        switch t {
        case .boolTrue: return true
        case .boolFalse: return false
        default: throw Malformed(what: "expected a bool, found \(t)")
        }
    }

    mutating func string(_ t: WireType) throws -> String {
        guard t == .binary else { throw Malformed(what: "expected a string, found \(t)") }
        return String(decoding: try binary(), as: UTF8.self)
    }

    mutating func expectStruct(_ t: WireType) throws {
        guard t == .structure else { throw Malformed(what: "expected a struct, found \(t)") }
    }

    /// Skips one value of type `t` (any depth, bounded).
    mutating func skip(_ t: WireType) throws {
        switch t {
        case .boolTrue, .boolFalse: return
        case .i8: _ = try byte()
        case .i16, .i32, .i64: _ = try varint()
        case .double:
            guard remaining >= 8 else { throw Malformed(what: "ends early") }
            pos += 8
        case .binary: _ = try binary()
        case .list, .set:
            let (et, n) = try listHeader()
            depth += 1
            defer { depth -= 1 }
            guard depth <= ThriftReader.maxDepth else { throw Malformed(what: "nested deeper than \(ThriftReader.maxDepth) levels") }
            for _ in 0..<n {
                // Bool elements of a list are one byte each.
                if et == .boolTrue || et == .boolFalse { _ = try byte() } else { try skip(et) }
            }
        case .map:
            let v = try varint()
            guard v <= UInt64(remaining) else { throw Malformed(what: "map of \(v) entries in \(remaining) bytes") }
            if v == 0 { return }
            let kv = try byte()
            guard let kt = WireType(rawValue: kv >> 4), let vt = WireType(rawValue: kv & 0x0F) else {
                throw Malformed(what: "unknown map element types \(kv)")
            }
            depth += 1
            defer { depth -= 1 }
            guard depth <= ThriftReader.maxDepth else { throw Malformed(what: "nested deeper than \(ThriftReader.maxDepth) levels") }
            for _ in 0..<Int(v) {
                if kt == .boolTrue || kt == .boolFalse { _ = try byte() } else { try skip(kt) }
                if vt == .boolTrue || vt == .boolFalse { _ = try byte() } else { try skip(vt) }
            }
        case .structure:
            try readStruct { r, _, ft in try r.skip(ft) }
        }
    }
}

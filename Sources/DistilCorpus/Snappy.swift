import Foundation

/// A decoder for raw Snappy blocks (the format parquet's SNAPPY codec stores in each page;
/// not the framed ".sz" stream format).
///
/// Block layout (google/snappy format_description.txt): a varint with the uncompressed length,
/// then elements, each starting with a tag byte whose low two bits give the kind:
///   00 literal: length-1 in the upper 6 bits, or (60...63) 1...4 little-endian bytes of length-1 follow
///   01 copy: length 4 + bits 2...4, offset = bits 5...7 << 8 | next byte
///   10 copy: length 1 + upper 6 bits, offset = next 2 bytes LE
///   11 copy: length 1 + upper 6 bits, offset = next 4 bytes LE
/// A copy repeats `length` bytes starting `offset` bytes back in the output (it may overlap
/// itself, which repeats a pattern). The decoder writes only into the caller's buffer of the
/// declared size, checks every literal and offset against both buffers, and fails unless the
/// output is exactly the declared size.
public enum Snappy {
    public struct Failure: Error { public let what: String }

    /// The uncompressed length stored at the start of a block, and the size of that varint.
    public static func declaredLength(_ src: UnsafeRawBufferPointer) throws -> (length: Int, headerSize: Int) {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        var i = 0
        while true {
            guard i < src.count else { throw Failure(what: "snappy block ends inside its length header") }
            let b = src[i]
            i += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            guard shift <= 28 else { throw Failure(what: "snappy length header longer than 5 bytes") }
        }
        guard v <= UInt64(UInt32.max) else { throw Failure(what: "snappy length \(v) exceeds 32 bits") }
        return (Int(v), i)
    }

    /// Decompresses `src` into exactly `dst.count` bytes; throws when the block declares
    /// another length, is malformed, or produces a different number of bytes.
    public static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        let (declared, header) = try declaredLength(src)
        guard declared == dst.count else {
            throw Failure(what: "snappy block declares \(declared) bytes, the page header says \(dst.count)")
        }
        if declared == 0 {
            guard header == src.count else { throw Failure(what: "snappy block has data after an empty output") }
            return
        }
        let s = src.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let d = dst.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let sn = src.count, dn = dst.count
        var ip = header, op = 0
        // Fast loop: while both buffers have slack, a copy tag's length, offset and size come from
        // a table, and bytes move 8 at a time (overshooting into the slack, which later elements
        // overwrite). Anything unusual (long literals, bad offsets, the last bytes) leaves the fast
        // loop without consuming the tag; the careful path then decodes or reports one element.
        try Snappy.copyTags.withUnsafeBufferPointer { table in
            while ip < sn {
                while sn - ip >= 6 && dn - op >= 80 {
                    let tag = s[ip]
                    if tag & 3 == 0 {
                        let length = Int(tag >> 2) + 1
                        if length > 60 || length > sn - ip - 1 { break }
                        if sn - ip - 1 >= 64 {
                            var i = 0
                            repeat { copy8(d + op + i, s + ip + 1 + i); i += 8 } while i < length
                        } else {
                            (d + op).update(from: s + ip + 1, count: length)
                        }
                        ip += 1 + length
                        op += length
                        continue
                    }
                    let e = Int(table[Int(tag)])
                    let extra = e >> 11
                    let mask = UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(8 * extra)) &- 1)
                    let trailer = UInt32(littleEndian: UnsafeRawPointer(s + ip + 1).loadUnaligned(as: UInt32.self)) & mask
                    let length = e & 0xFF
                    let offset = (e & 0x700) + Int(trailer)
                    if offset == 0 || offset > op { break }
                    ip += 1 + extra
                    let dst = d + op, src = UnsafePointer(d + op - offset)
                    if offset >= 8 {
                        var i = 0
                        repeat { copy8(dst + i, src + i); i += 8 } while i < length
                    } else {
                        for i in 0..<length { dst[i] = src[i] }
                    }
                    op += length
                }
                if ip >= sn { break }
                // Careful path: one element, every field checked.
                let tag = s[ip]
                ip += 1
                var length: Int
                var offset: Int
                switch tag & 3 {
                case 0:
                    length = Int(tag >> 2)
                    if length >= 60 {
                        let extra = length - 59
                        guard extra <= sn - ip else { throw Failure(what: "snappy literal length runs past the input at \(ip)") }
                        var l = 0
                        for k in 0..<extra { l |= Int(s[ip + k]) << (8 * k) }
                        ip += extra
                        length = l
                    }
                    length += 1
                    guard length <= sn - ip else { throw Failure(what: "snappy literal of \(length) bytes runs past the input at \(ip)") }
                    guard length <= dn - op else { throw Failure(what: "snappy output exceeds the declared \(dn) bytes") }
                    // Short literals (the common case) copy 16 bytes at once when both buffers have room.
                    if length <= 16 && sn - ip >= 16 && dn - op >= 16 {
                        copy8(d + op, s + ip)
                        copy8(d + op + 8, s + ip + 8)
                    } else {
                        (d + op).update(from: s + ip, count: length)
                    }
                    ip += length
                    op += length
                    continue
                case 1:
                    guard ip < sn else { throw Failure(what: "snappy copy runs past the input at \(ip)") }
                    length = 4 + Int((tag >> 2) & 7)
                    offset = Int(tag >> 5) << 8 | Int(s[ip])
                    ip += 1
                case 2:
                    guard 2 <= sn - ip else { throw Failure(what: "snappy copy runs past the input at \(ip)") }
                    length = 1 + Int(tag >> 2)
                    offset = Int(s[ip]) | Int(s[ip + 1]) << 8
                    ip += 2
                default:
                    guard 4 <= sn - ip else { throw Failure(what: "snappy copy runs past the input at \(ip)") }
                    length = 1 + Int(tag >> 2)
                    offset = Int(s[ip]) | Int(s[ip + 1]) << 8 | Int(s[ip + 2]) << 16 | Int(s[ip + 3]) << 24
                    ip += 4
                }
                guard offset > 0 && offset <= op else {
                    throw Failure(what: "snappy copy offset \(offset) at output \(op) points outside the output")
                }
                guard length <= dn - op else { throw Failure(what: "snappy output exceeds the declared \(dn) bytes") }
                copyBack(d, op, offset, length, dn)
                op += length
            }
        }
        guard op == dn else { throw Failure(what: "snappy block decompresses to \(op) bytes, declared \(dn)") }
    }

    /// For each copy tag (low bits 01, 10, 11): length | offset high bits << 8 (bits 8...10) | bytes after the tag << 11.
    static let copyTags: [UInt16] = (0..<256).map { t -> UInt16 in
        switch t & 3 {
        case 1: return UInt16(4 + ((t >> 2) & 7)) | UInt16((t >> 5) << 8) | UInt16(1 << 11)
        case 2: return UInt16((t >> 2) + 1) | UInt16(2 << 11)
        case 3: return UInt16((t >> 2) + 1) | UInt16(4 << 11)
        default: return 0
        }
    }

    /// Moves 8 bytes (unaligned) from `src` to `dst`.
    @inline(__always)
    private static func copy8(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafePointer<UInt8>) {
        UnsafeMutableRawPointer(dst).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: UInt64.self), as: UInt64.self)
    }

    /// Copies `length` bytes from `offset` back to `op` (regions may overlap: a pattern repeats).
    @inline(__always)
    private static func copyBack(_ d: UnsafeMutablePointer<UInt8>, _ op: Int, _ offset: Int, _ length: Int, _ dn: Int) {
        let dst = d + op, src = UnsafePointer(d + op - offset)
        if offset >= 8 && dn - op >= length + 8 {
            // 8-byte steps, possibly writing up to 7 bytes past `length` (inside the buffer; later
            // elements overwrite them). With offset >= 8 every step reads only bytes already written.
            var i = 0
            repeat {
                copy8(dst + i, src + i)
                i += 8
            } while i < length
        } else if offset >= length {
            dst.update(from: src, count: length)
        } else {
            for i in 0..<length { dst[i] = src[i] }
        }
    }
}

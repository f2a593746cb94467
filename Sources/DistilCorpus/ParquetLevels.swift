import Foundation

/// Parquet's RLE / bit-packed hybrid encoding, used for definition levels and dictionary
/// indices (parquet-format Encodings.md, "Run Length Encoding / Bit-Packing Hybrid").
///
/// The data is a sequence of runs, each starting with a ULEB128 varint header:
///   header & 1 == 1: bit-packed run of (header >> 1) groups of 8 values, each `bitWidth` bits,
///                    packed LSB first, (header >> 1) * bitWidth bytes;
///   header & 1 == 0: RLE run of (header >> 1) copies of one value stored in ceil(bitWidth/8)
///                    bytes, little-endian.
/// Run counts come from the file, so nothing is allocated from them: the decoder fills only
/// the number of values the caller asks for, and fails if the runs hold fewer.
struct RLEHybridDecoder {
    struct Failure: Error { let what: String }

    private let base: UnsafePointer<UInt8>?
    private let count: Int
    private var pos = 0
    let bitWidth: Int

    /// `bytes` must stay valid while the decoder is used.
    init(_ bytes: UnsafeRawBufferPointer, bitWidth: Int) throws {
        guard bitWidth >= 0 && bitWidth <= 32 else { throw Failure(what: "bit width \(bitWidth) outside 0...32") }
        base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        count = bytes.count
        self.bitWidth = bitWidth
    }

    private mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < count, let p = base else { throw Failure(what: "run header runs past the end of the data") }
            let b = p[pos]
            pos += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            guard shift <= 56 else { throw Failure(what: "run header varint too long") }
        }
    }

    /// Decodes exactly `n` values into `out`.
    mutating func decode(into out: UnsafeMutablePointer<UInt32>, _ n: Int) throws {
        var done = 0
        let w = bitWidth
        let mask: UInt64 = w == 32 ? 0xFFFF_FFFF : (UInt64(1) << UInt64(w)) - 1
        while done < n {
            let header = try varint()
            if header & 1 == 0 {
                let runLen = header >> 1
                let valueBytes = (w + 7) / 8
                guard valueBytes <= count - pos else { throw Failure(what: "RLE run value runs past the end of the data") }
                var v: UInt32 = 0
                if let p = base { for k in 0..<valueBytes { v |= UInt32(p[pos + k]) << UInt32(8 * k) } }
                pos += valueBytes
                let take = Int(min(runLen, UInt64(n - done)))
                (out + done).update(repeating: v, count: take)
                done += take
            } else {
                let groups = header >> 1
                // Values this run holds, limited to the bytes present (a writer may omit the
                // padding of a final run) and to what is still needed.
                let declaredBytes = groups.multipliedReportingOverflow(by: UInt64(w))
                let runBytes = declaredBytes.overflow ? UInt64.max : declaredBytes.partialValue
                let present = Int(min(runBytes, UInt64(count - pos)))
                let valuesDeclared = groups.multipliedReportingOverflow(by: 8)
                var available = valuesDeclared.overflow ? Int.max : Int(min(valuesDeclared.partialValue, UInt64(Int.max)))
                if w > 0 { available = min(available, present * 8 / w) }
                let take = min(available, n - done)
                if take == 0 && groups > 0 && w > 0 {
                    throw Failure(what: "bit-packed run runs past the end of the data")
                }
                if w == 0 {
                    (out + done).update(repeating: 0, count: take)
                } else if let p = base {
                    let start = pos
                    for i in 0..<take {
                        let bit = i * w
                        let byte = start + (bit >> 3)
                        let shift = UInt64(bit & 7)
                        var word: UInt64 = 0
                        if byte + 8 <= count {
                            word = UInt64(littleEndian: UnsafeRawPointer(p + byte).loadUnaligned(as: UInt64.self))
                        } else {
                            var k = 0
                            while byte + k < count && k < 8 { word |= UInt64(p[byte + k]) << UInt64(8 * k); k += 1 }
                        }
                        out[done + i] = UInt32(truncatingIfNeeded: (word >> shift) & mask)
                    }
                }
                done += take
                pos += present
            }
        }
    }
}

/// The bit width of levels up to `maxLevel` (0 for 0, 1 for 1, 2 for 2...3, ...).
func levelBitWidth(_ maxLevel: Int) -> Int {
    var w = 0
    while (1 << w) <= maxLevel { w += 1 }
    return w
}

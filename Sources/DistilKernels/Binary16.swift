/// IEEE binary16 → f32, exact for every value, from little-endian data at any alignment (a
/// memory-mapped tensor, a teacher row inside a record).
public enum Binary16 {
    /// f32 → binary16 bits, round to nearest even (Float16's conversion).
    @inline(__always) public static func bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// The f32 bits of all 65,536 binary16 values (256 KiB: stays in a core's L2 cache).
    static let table: [UInt32] = (0...0xFFFF).map { f32Bits(UInt16($0)) }

    /// The f32 bits of a binary16 value, by integer operations only: the table may first be touched
    /// on a thread that flushes subnormals, where a float conversion of a binary16 subnormal (a
    /// library routine on baseline x86-64) would give 0.
    static func f32Bits(_ h: UInt16) -> UInt32 {
        let sign = UInt32(h & 0x8000) << 16
        let e = UInt32(h >> 10) & 0x1F, m = UInt32(h & 0x3FF)
        switch e {
        case 0x1F: return sign | 0x7F80_0000 | m << 13 | (m != 0 ? 0x40_0000 : 0)   // inf; NaN made quiet
        case 0 where m == 0: return sign
        case 0:   // subnormal: m · 2^-24, normalised
            let shift = UInt32(m.leadingZeroBitCount - 21)   // moves the leading 1 to bit 10
            return sign | (113 - shift) << 23 | ((m << shift) & 0x3FF) << 13
        default: return sign | (e + 112) << 23 | m << 13
        }
    }

    /// `n` values by table lookup (~1 cycle per value). Baseline x86-64 has no F16C, and Swift's
    /// SIMD widening conversions are not vector instructions there (the 16-lane version measured
    /// 0.24 G values/s, the table 2.7); builds with F16C use `VectorWidening`.
    public static func decode(raw src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        table.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            let out = UnsafeMutableRawPointer(dst)
            var i = 0
            while i + 4 <= n {
                // Four values in one load; x86-64 and arm64 are little-endian.
                let w = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt64.self))
                out.storeBytes(of: t[Int(w & 0xFFFF)], toByteOffset: 4 * i, as: UInt32.self)
                out.storeBytes(of: t[Int((w >> 16) & 0xFFFF)], toByteOffset: 4 * i + 4, as: UInt32.self)
                out.storeBytes(of: t[Int((w >> 32) & 0xFFFF)], toByteOffset: 4 * i + 8, as: UInt32.self)
                out.storeBytes(of: t[Int(w >> 48)], toByteOffset: 4 * i + 12, as: UInt32.self)
                i += 4
            }
            while i < n {
                out.storeBytes(of: t[Int(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))],
                               toByteOffset: 4 * i, as: UInt32.self)
                i += 1
            }
        }
    }
}

/// How a kernel widens binary16 values to f32 (both ways are exact, so they give the same bits).
public protocol Binary16Widening {
    static func widen(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int)
}

/// By `Binary16`'s table: for builds without F16C.
public enum TableWidening: Binary16Widening {
    @_transparent
    public static func widen(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        Binary16.decode(raw: src, dst, n)
    }
}

/// By the standard library's `Float16` conversion, 16 lanes at a time: one `vcvtph2ps` per 8 or 16
/// values when inlined into a module built for x86-64-v3 or later (4.2 and 10 G values/s measured),
/// a library call per value on baseline x86-64. Denormal binary16 inputs convert exactly even with
/// the FTZ/DAZ flags set (tested).
public enum VectorWidening: Binary16Widening {
    @_transparent
    public static func widen(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 16 <= n {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self)
            out.storeBytes(of: SIMD16<Float>(h), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n {
            dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self))
            i += 1
        }
    }
}

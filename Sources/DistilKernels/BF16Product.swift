/// Products with bfloat16 weights widened in registers: the decode path's small products (a few
/// rows of activations against a weight matrix read straight from the mapped checkpoint), where
/// converting a panel to f32 first would write and read back twice the bytes of the weights.
///
/// Each output is one dot product: 16 lanes of fused multiply-adds along k (the tail's missing
/// lanes are zeros), then the lanes summed in index order. The operations are the same whatever
/// the vector width the module is compiled for, so the x86-64-v3 and -v4 builds give the same bits.
public enum BF16Product {
    /// y[t·ldy + n] = Σ_k x[t·K + k] · w[n·K + k] for n in n0 ..< n1 and t in 0 ..< rows; `w` is a
    /// row-major [N x K] bf16 matrix (little-endian bits).
    // Always inlined: a call to the symbol compiled in this (baseline) module would run the fused
    // multiply-adds without FMA instructions, one libm call per lane (measured 15x slower).
    @inlinable @inline(__always)
    public static func rows(x: UnsafePointer<Float>, rows T: Int, w: UnsafeRawPointer, k K: Int, from n0: Int, to n1: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int) {
        let full = K / 16 * 16
        var t0 = 0
        while t0 < T {
            let m = min(4, T - t0)
            let x0 = x + t0 * K
            let x1 = x0 + (m > 1 ? K : 0), x2 = x0 + (m > 2 ? 2 * K : 0), x3 = x0 + (m > 3 ? 3 * K : 0)
            for n in n0..<n1 {
                let row = w + n * K * 2
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var k = 0
                while k < full {
                    let wv = widen(row.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
                    a0 = a0.addingProduct(load(x0 + k), wv)
                    a1 = a1.addingProduct(load(x1 + k), wv)
                    a2 = a2.addingProduct(load(x2 + k), wv)
                    a3 = a3.addingProduct(load(x3 + k), wv)
                    k += 16
                }
                if full < K {
                    var h = SIMD16<UInt16>(), v0 = SIMD16<Float>(), v1 = v0, v2 = v0, v3 = v0
                    for j in 0..<(K - full) {
                        h[j] = row.loadUnaligned(fromByteOffset: 2 * (full + j), as: UInt16.self)
                        v0[j] = x0[full + j]; v1[j] = x1[full + j]; v2[j] = x2[full + j]; v3[j] = x3[full + j]
                    }
                    let wv = widen(h)
                    a0 = a0.addingProduct(v0, wv); a1 = a1.addingProduct(v1, wv)
                    a2 = a2.addingProduct(v2, wv); a3 = a3.addingProduct(v3, wv)
                }
                let out = y + t0 * ldy + n
                out[0] = sum(a0)
                if m > 1 { out[ldy] = sum(a1) }
                if m > 2 { out[2 * ldy] = sum(a2) }
                if m > 3 { out[3 * ldy] = sum(a3) }
            }
            t0 += m
        }
    }

    /// bf16 bits → f32: each into the high half of a 32-bit lane. Lane by lane rather than by
    /// SIMD16<UInt32>(truncatingIfNeeded:), whose generic specialization the level modules would both
    /// define as a weak symbol (one copy for the whole program: KernelBuildTests); the lanes still
    /// compile to one widening move and a shift.
    @inlinable @inline(__always)
    static func widen(_ h: SIMD16<UInt16>) -> SIMD16<Float> {
        var u = SIMD16<UInt32>()
        for i in 0..<16 { u[i] = UInt32(h[i]) &<< 16 }
        return unsafeBitCast(u, to: SIMD16<Float>.self)
    }

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// The lanes summed in index order (no reassociation: the same on every build).
    @inlinable @inline(__always)
    static func sum(_ a: SIMD16<Float>) -> Float {
        var s: Float = 0
        for i in 0..<16 { s += a[i] }
        return s
    }
}

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
        rows(x: x, rows: T, w: w, k: K, from: n0, to: n1, y: y, ldy: ldy, pairs: false)
    }

    /// One group of four rows of x (x0, rows K apart) against weight rows n0 ..< n1, four weight rows
    /// at a time (16 accumulator chains: for a build with 32 vector registers of 16 lanes); returns
    /// the first weight row it left (fewer than four remain), for `rows` to finish. K % 16 == 0.
    /// Each output is computed by the same operations as in `rows`, so the bits are the same.
    @inlinable @inline(__always)
    public static func quads(x x0: UnsafePointer<Float>, w: UnsafeRawPointer, k K: Int, from n0: Int, to n1: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int) -> Int {
        var n = n0
        while n + 3 < n1 {
            let r = dots4(x0, x0 + K, x0 + 2 * K, x0 + 3 * K, w + n * K * 2, K)
            store(r.0, y + n, ldy, 4); store(r.1, y + n + 1, ldy, 4)
            store(r.2, y + n + 2, ldy, 4); store(r.3, y + n + 3, ldy, 4)
            n += 4
        }
        return n
    }

    /// The same products, two weight rows at a time when `pairs` and four rows of x are at hand (8
    /// accumulator chains of 16 lanes:
    /// for a build with 32 vector registers of 16 lanes, x86-64-v4; with 16 registers of 8 lanes they
    /// spill). Every output is still computed by the same operations in the same order, so both ways
    /// give the same bits.
    @inlinable @inline(__always)
    public static func rows(x: UnsafePointer<Float>, rows T: Int, w: UnsafeRawPointer, k K: Int, from n0: Int, to n1: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int, pairs: Bool) {
        var t0 = 0
        while t0 < T {
            let m = min(4, T - t0)
            let x0 = x + t0 * K
            let x1 = x0 + (m > 1 ? K : 0), x2 = x0 + (m > 2 ? 2 * K : 0), x3 = x0 + (m > 3 ? 3 * K : 0)
            var n = n0
            // Pairs only for full groups of four rows: with fewer, one row's stream is memory-bound
            // and the second row's stream only competes with it (measured: bench-engine --products).
            if pairs && m == 4 {
                while n + 1 < n1 {
                    let (a, b) = dots2(x0, x1, x2, x3, w + n * K * 2, K)
                    store(a, y + t0 * ldy + n, ldy, m); store(b, y + t0 * ldy + n + 1, ldy, m)
                    n += 2
                }
            }
            while n < n1 {
                store(dots(x0, x1, x2, x3, w + n * K * 2, K), y + t0 * ldy + n, ldy, m)
                n += 1
            }
            t0 += m
        }
    }

    /// Four dot products of one weight row with x0…x3 (K values each): 16 lanes of fused
    /// multiply-adds along k, the tail's missing lanes zeros, then the lanes summed in index order.
    @inlinable @inline(__always)
    static func dots(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
                     _ row: UnsafeRawPointer, _ K: Int) -> SIMD4<Float> {
        let full = K / 16 * 16
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
        return SIMD4(sum(a0), sum(a1), sum(a2), sum(a3))
    }

    /// `dots` of two consecutive weight rows in one pass over k (the same operations per output).
    @inlinable @inline(__always)
    static func dots2(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
                      _ row: UnsafeRawPointer, _ K: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        let full = K / 16 * 16
        let row2 = row + 2 * K
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var k = 0
        while k < full {
            let wv = widen(row.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            let wu = widen(row2.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            let v0 = load(x0 + k), v1 = load(x1 + k), v2 = load(x2 + k), v3 = load(x3 + k)
            a0 = a0.addingProduct(v0, wv); b0 = b0.addingProduct(v0, wu)
            a1 = a1.addingProduct(v1, wv); b1 = b1.addingProduct(v1, wu)
            a2 = a2.addingProduct(v2, wv); b2 = b2.addingProduct(v2, wu)
            a3 = a3.addingProduct(v3, wv); b3 = b3.addingProduct(v3, wu)
            k += 16
        }
        if full < K {
            var h = SIMD16<UInt16>(), g = h, v0 = SIMD16<Float>(), v1 = v0, v2 = v0, v3 = v0
            for j in 0..<(K - full) {
                h[j] = row.loadUnaligned(fromByteOffset: 2 * (full + j), as: UInt16.self)
                g[j] = row2.loadUnaligned(fromByteOffset: 2 * (full + j), as: UInt16.self)
                v0[j] = x0[full + j]; v1[j] = x1[full + j]; v2[j] = x2[full + j]; v3[j] = x3[full + j]
            }
            let wv = widen(h), wu = widen(g)
            a0 = a0.addingProduct(v0, wv); a1 = a1.addingProduct(v1, wv)
            a2 = a2.addingProduct(v2, wv); a3 = a3.addingProduct(v3, wv)
            b0 = b0.addingProduct(v0, wu); b1 = b1.addingProduct(v1, wu)
            b2 = b2.addingProduct(v2, wu); b3 = b3.addingProduct(v3, wu)
        }
        return (SIMD4(sum(a0), sum(a1), sum(a2), sum(a3)), SIMD4(sum(b0), sum(b1), sum(b2), sum(b3)))
    }

    /// `dots` of four consecutive weight rows in one pass over k (full 16-lane blocks only: K % 16 == 0).
    @inlinable @inline(__always)
    static func dots4(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
                      _ row: UnsafeRawPointer, _ K: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let r1 = row + 2 * K, r2 = row + 4 * K, r3 = row + 6 * K
        var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0
        var c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0
        var k = 0
        while k < K {
            let v0 = load(x0 + k), v1 = load(x1 + k), v2 = load(x2 + k), v3 = load(x3 + k)
            let wa = widen(row.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            a0 = a0.addingProduct(v0, wa); a1 = a1.addingProduct(v1, wa); a2 = a2.addingProduct(v2, wa); a3 = a3.addingProduct(v3, wa)
            let wb = widen(r1.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            b0 = b0.addingProduct(v0, wb); b1 = b1.addingProduct(v1, wb); b2 = b2.addingProduct(v2, wb); b3 = b3.addingProduct(v3, wb)
            let wc = widen(r2.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            c0 = c0.addingProduct(v0, wc); c1 = c1.addingProduct(v1, wc); c2 = c2.addingProduct(v2, wc); c3 = c3.addingProduct(v3, wc)
            let wd = widen(r3.loadUnaligned(fromByteOffset: 2 * k, as: SIMD16<UInt16>.self))
            d0 = d0.addingProduct(v0, wd); d1 = d1.addingProduct(v1, wd); d2 = d2.addingProduct(v2, wd); d3 = d3.addingProduct(v3, wd)
            k += 16
        }
        return (SIMD4(sum(a0), sum(a1), sum(a2), sum(a3)), SIMD4(sum(b0), sum(b1), sum(b2), sum(b3)),
                SIMD4(sum(c0), sum(c1), sum(c2), sum(c3)), SIMD4(sum(d0), sum(d1), sum(d2), sum(d3)))
    }

    @inlinable @inline(__always)
    static func store(_ v: SIMD4<Float>, _ out: UnsafeMutablePointer<Float>, _ ldy: Int, _ m: Int) {
        out[0] = v[0]
        if m > 1 { out[ldy] = v[1] }
        if m > 2 { out[2 * ldy] = v[2] }
        if m > 3 { out[3 * ldy] = v[3] }
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

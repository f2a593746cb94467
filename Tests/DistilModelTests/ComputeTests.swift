@testable import DistilModel
import XCTest

final class ComputeTests: XCTestCase {
    /// Forward passes run with subnormals flushed to zero (a subnormal operand costs an x86 core a
    /// ~100-cycle assist); the thread's own mode is restored afterwards, and every worker of a
    /// parallel loop flushes the same way, so results do not depend on the thread count.
    func testSubnormalsAreFlushedInsideAndOnlyInside() {
        let tiny = [Float.leastNormalMagnitude]            // an array: not folded at compile time
        let half = { tiny[0] * 0.5 }
        XCTAssertGreaterThan(half(), 0, "the test thread starts in IEEE mode")
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        XCTAssertEqual(Compute.flushingSubnormals { half() }, 0)
        XCTAssertGreaterThan(half(), 0, "the mode is restored")
        let cx = Compute(threads: 3)
        var got = [Float](repeating: -1, count: 12)
        got.withUnsafeMutableBufferPointer { g in
            let p = g.baseAddress!
            cx.forEach(12) { i in p[i] = half() }
        }
        XCTAssertEqual(got, [Float](repeating: 0, count: 12))
        #endif
    }
}

import DistilScore
@testable import DistilKernels

/// The F16C widening of the x86-64-v3/v4 builds converts every binary16 value exactly (as the
/// baseline's table does), with subnormal flushing on, as it is on the engine's threads.
final class WideningTests: XCTestCase {
    func testEveryBuildWidensEveryBinary16ValueExactlyUnderFlushing() {
        let bits = (0..<65_536).map { UInt16($0) } + [0x0001, 0x83FF, 0x3C00]   // a tail of 3 lanes
        for isa in KLKernel.ISA.allCases where isa <= KLKernel.supported {
            var out = [Float](repeating: -1, count: bits.count)
            Compute.flushingSubnormals {
                bits.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer {
                    KLKernel.widenBinary16(src.baseAddress!, $0.baseAddress!, bits.count, isa: isa)
                } }
            }
            var bad = 0
            for (i, b) in bits.enumerated() {
                let want = Float(Float16(bitPattern: b))
                if want.isNaN ? !out[i].isNaN : out[i].bitPattern != want.bitPattern { bad += 1 }
            }
            XCTAssertEqual(bad, 0, "\(isa): \(bad) values widened wrongly")
        }
    }

    /// The baseline's table is built on first use, which may be on a flushing thread; its entries
    /// come from integer operations, so they are right there too (a float conversion of a binary16
    /// subnormal gave 0 under DAZ).
    func testTheTableEntriesAreExactOnAFlushingThread() {
        let bits = (0..<65_536).map { UInt16($0) }
        let want = bits.map { Float(Float16(bitPattern: $0)) }
        let got = Compute.flushingSubnormals { bits.map { Float(bitPattern: Binary16.f32Bits($0)) } }
        let bad = bits.indices.filter { want[$0].isNaN ? !got[$0].isNaN : got[$0].bitPattern != want[$0].bitPattern }
        XCTAssertEqual(bad.count, 0, "wrong for \(bad.prefix(5).map { String(bits[$0], radix: 16) })")
    }
}

import DistilKernels
import DistilKernelsX86v3
import DistilKernelsX86v4
import DistilTensors

/// The decode path's bf16 product (weights widened in registers) against an f64 reference, the same
/// bits from the x86-64-v3 and -v4 builds, and from any thread count through `Compute.matmul`.
final class BF16ProductTests: XCTestCase {
    func bf16(_ v: [Float]) -> [UInt16] { v.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) } }

    func testAgainstF64AndAcrossBuildsAndThreads() throws {
        #if arch(x86_64)
        guard CPUFeatures.x86Level >= 3 else { throw XCTSkip("no x86-64-v3 on this CPU") }
        var seed: UInt64 = 97
        func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 700 }
        for (T, N, K) in [(1, 70, 37), (3, 130, 64), (5, 64, 200), (8, 257, 2048 + 5), (40, 129, 512)] {
            let x = (0..<(T * K)).map { _ in rnd() }
            let w = bf16((0..<(N * K)).map { _ in rnd() })
            let wf = w.map { Float(bitPattern: UInt32($0) << 16) }
            func run(_ body: (UnsafePointer<Float>, UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
                var y = [Float](repeating: .nan, count: T * N)
                x.withUnsafeBufferPointer { xp in w.withUnsafeBytes { wp in y.withUnsafeMutableBufferPointer { body(xp.baseAddress!, wp.baseAddress!, $0.baseAddress!) } } }
                return y
            }
            let v3 = run { DistilKernelsX86v3.Kernels.bf16Rows(x: $0, rows: T, w: $1, k: K, from: 0, to: N, y: $2, ldy: N) }
            var worst = 0.0
            for t in 0..<T { for n in 0..<N {
                var ref = 0.0, mag = 0.0
                for k in 0..<K { ref += Double(x[t * K + k]) * Double(wf[n * K + k]); mag += abs(Double(x[t * K + k]) * Double(wf[n * K + k])) }
                worst = max(worst, abs(Double(v3[t * N + n]) - ref) / max(mag, 1e-30))
            } }
            XCTAssertLessThan(worst, 1e-6, "T \(T) N \(N) K \(K): error relative to Σ|x·w|")
            if KLKernelLevel.hasV4 {
                let v4 = run { DistilKernelsX86v4.Kernels.bf16Rows(x: $0, rows: T, w: $1, k: K, from: 0, to: N, y: $2, ldy: N) }
                XCTAssertEqual(v4.map(\.bitPattern), v3.map(\.bitPattern), "v3 and v4 builds differ at T \(T) K \(K)")
            }
            // Through Compute.matmul at 1 and 3 threads (a decode step's products: up to 64 rows): the
            // same bits as the kernel over the whole matrix.
            if Compute.directLevel != nil, T <= Compute.decodeDirectRows {
                for threads in [1, 3] {
                    let cx = Compute(threads: threads).decoding
                    let y = run { xp, wp, yp in
                        cx.matmul(xp, rows: T, Matrix(base: wp, dtype: .bf16, rows: N, cols: K, name: "w"), into: yp, ldy: N)
                    }
                    XCTAssertEqual(y.map(\.bitPattern), v3.map(\.bitPattern), "\(threads) threads")
                }
            }
        }
        #endif
    }
}

enum KLKernelLevel {
    static var hasV4: Bool { CPUFeatures.x86Level >= 4 }
}

/// DISTIL_ISA's names, and that this process's level is the CPU's lowered to the request.
final class ISASwitchNameTests: XCTestCase {
    func testNamesAndClamping() {
        XCTAssertEqual(CPUFeatures.level(named: "avx2"), 3)
        XCTAssertEqual(CPUFeatures.level(named: "AVX512"), 4)
        XCTAssertEqual(CPUFeatures.level(named: "generic"), 1)
        XCTAssertNil(CPUFeatures.level(named: "sse9"))
        XCTAssertEqual(CPUFeatures.x86Level, min(CPUFeatures.detectedLevel, CPUFeatures.requestedLevel ?? 4))
        XCTAssertFalse(CPUFeatures.levelDescription.isEmpty)
    }
}

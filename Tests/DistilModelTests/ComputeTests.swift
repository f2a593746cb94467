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

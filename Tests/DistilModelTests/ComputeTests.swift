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

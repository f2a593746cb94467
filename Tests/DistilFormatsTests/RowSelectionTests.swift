@testable import DistilFormats
import XCTest

/// The exact entries a row keeps when more than `maxExact` exceed the threshold: the selection
/// without a sort keeps the same entries as sorting by (value desc, id asc), ties included.
final class RowSelectionTests: XCTestCase {
    func reference(_ e: [(Int, Float)], _ count: Int) -> [(Int, Float)] {
        var s = e
        s.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        s.removeLast(s.count - count)
        s.sort { $0.0 < $1.0 }
        return s
    }

    func testSelectionMatchesTheSortedCut() {
        var seed: UInt64 = 5
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        for (n, levels, count) in [(10, 3, 4), (5000, 7, 4096), (20_000, 1 << 20, 4096), (9000, 1, 4096), (4097, 50, 4096), (300, 300, 1)] {
            // `levels` distinct values: few levels make many ties at the cut; -0.0 and 0.0 are one value.
            let e = (0..<n).map { i -> (Int, Float) in
                let v = -Float(next() % UInt64(levels)) / Float(max(1, levels / 8))
                return (i * 3, v == 0 && next() % 2 == 0 ? -0.0 : v)
            }
            let got = TeacherStreamWriter.mostProbable(e, count), want = reference(e, count)
            XCTAssertEqual(got.map(\.0), want.map(\.0), "n \(n) levels \(levels)")
            XCTAssertEqual(got.map { $0.1.bitPattern }, want.map { $0.1.bitPattern })
        }
    }
}

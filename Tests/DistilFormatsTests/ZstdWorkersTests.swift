import DistilFormats
import Foundation
import XCTest

/// The teacher stream's compression on libzstd's worker threads: the bytes do not depend on the
/// number of workers nor on how the input is cut into writes (so a stream stays byte-identical at any
/// thread count), and they decompress to exactly the input, as single-threaded compression does.
final class ZstdWorkersTests: XCTestCase {
    func compress(_ data: [UInt8], workers: Int32, chunk: Int) throws -> [UInt8] {
        let m = MemoryWriter()
        let w = ZstdWriter(m, workers: workers)
        var i = 0
        while i < data.count {
            let n = min(chunk, data.count - i)
            try data.withUnsafeBytes { try w.write(UnsafeRawBufferPointer(rebasing: $0[i..<(i + n)])) }
            i += n
        }
        try w.close()
        return m.bytes
    }

    func testOutputIsTheSameForAnyWorkerCountAndWriteSizes() throws {
        // 24 MB shaped like teacher rows (f16 log-probs: a smooth bulk with noise): several zstd jobs.
        var rng = TestRNG(97)
        let data = (0..<(24 << 20)).map { i in UInt8(truncatingIfNeeded: (i & 1 == 0) ? rng.next() % 13 : 0xC9 + rng.next() % 3) }
        let one = try compress(data, workers: 1, chunk: 1 << 20)
        XCTAssertEqual(try compress(data, workers: 2, chunk: 1 << 20), one)
        XCTAssertEqual(try compress(data, workers: 4, chunk: 300_007), one)
        XCTAssertEqual(try compress(data, workers: 2, chunk: data.count), one)
        XCTAssertEqual(try Zstd.decompress(one, limit: 64 << 20), data)
        let single = try compress(data, workers: 0, chunk: 1 << 20)
        XCTAssertEqual(try Zstd.decompress(single, limit: 64 << 20), data)
        print("zstd level 3: \(data.count) bytes -> \(one.count) with workers, \(single.count) without")
    }
}

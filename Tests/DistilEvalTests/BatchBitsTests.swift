import DistilEval
import DistilFormats
import DistilKernels
import DistilModel
import Foundation
import XCTest

/// Whether --batch changes the bits of the teacher stream. Prompts are prefilled one by one, and in a
/// decode step of up to 4 sequences (x86-64-v3) or 64 (-v4) every bf16 product computes each output
/// the same way whatever the number of rows (BF16Product, `Compute.decodeDirectRows`), so those
/// batches give byte-identical streams; on -v4, 5 prompts at --batch 5 take the kernel's blocks of
/// four rows and its single rows. Larger steps go through sgemm, whose blocking depends on the row
/// count: the same continuations, KL within 1e-5 relative, not the same bits.
final class BatchBitsTests: XCTestCase {
    var demo: String { demoDirectory }

    func stream(batch: Int) throws -> [UInt8] {
        let prompts = (0..<5).map { PromptRecord(id: "p\($0)", text: "", tokens: Array((10 * $0 + 1)...(10 * $0 + 3 + $0 * 4))) }
        return try demoTeacherStream(prompts, maxNew: 10, batch: batch, threads: 2)
    }

    func testBatchesUpToFiveGiveTheSameBytes() throws {
        guard CPUFeatures.x86Level >= 3, ProcessInfo.processInfo.environment["DISTIL_ENGINE_SGEMM_ONLY"] != "1" else {
            throw XCTSkip("no x86-64-v3: every product goes through sgemm")
        }
        let one = try stream(batch: 1)
        for b in 2...(CPUFeatures.x86Level >= 4 ? 5 : 4) { XCTAssertEqual(try stream(batch: b), one, "--batch \(b)") }
    }
}

import DistilEval
import DistilFormats
import DistilKernels
import Foundation
import XCTest

/// DISTIL_ISA=avx2 on an AVX-512 CPU makes the engine and the KL kernels run their x86-64-v3 builds,
/// and the demo teacher's stream comes out byte-identical to the one the -v4 builds write (the promise
/// of BF16ProductTests and KernelBuildTests, held end to end). The -v3 run is this test binary again
/// in a child process (the level is read once per process), with the same OpenBLAS core as this one.
final class ISASwitchTests: XCTestCase {
    static let childOutput = "DISTIL_ISA_TEST_OUTPUT"

    func stream() throws -> [UInt8] {
        let prompts = (0..<3).map { PromptRecord(id: "p\($0)", text: "", tokens: Array((7 * $0 + 1)...(7 * $0 + 4 + $0 * 3))) }
        return try demoTeacherStream(prompts, maxNew: 6, batch: 2, threads: 2)
    }

    func testAVX2SwitchWritesTheSameStream() throws {
        let env = ProcessInfo.processInfo.environment
        if let out = env[ISASwitchTests.childOutput] {
            // The child: report the level it ran at and the stream.
            try Data(([UInt8(CPUFeatures.x86Level)] + (try stream()))).write(to: URL(fileURLWithPath: out))
            return
        }
        guard CPUFeatures.x86Level >= 4 else { throw XCTSkip("needs an AVX-512 CPU to compare the two builds") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("isa-\(getpid()).bin")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        p.arguments = ["DistilEvalTests.ISASwitchTests/testAVX2SwitchWritesTheSameStream"]
        var childEnv = env
        childEnv["DISTIL_ISA"] = "avx2"
        childEnv[ISASwitchTests.childOutput] = out.path
        p.environment = childEnv
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "the DISTIL_ISA=avx2 child failed")
        let child = [UInt8](try Data(contentsOf: out))
        XCTAssertEqual(child.first, 3, "the child ran at x86-64-v\(child.first ?? 0), not v3")
        let mine = try stream()
        XCTAssertGreaterThan(mine.count, 1000)
        XCTAssertTrue(child.dropFirst().elementsEqual(mine), "the v3 and v4 builds wrote different streams")
    }
}

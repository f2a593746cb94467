@testable import DistilTensors
import DistilFormats
import Foundation
import XCTest

/// The stored-dtype conversions the engine's products run through, and the OpenBLAS core choice.
final class MatrixTests: XCTestCase {
    /// Every one of the 65,536 binary16 values converts exactly (Float16's own conversion is the
    /// reference), including subnormals, infinities and NaN, in the 16-lane body and the scalar tail.
    func testF16ConversionIsExactForEveryValue() {
        let bits = (0..<65_536).map { UInt16($0) } + [0x3C00, 0x8001, 0x7C00]   // 3 more: a tail of 3 lanes
        var out = [Float](repeating: -1, count: bits.count)
        bits.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Matrix.f16ToF32(src.baseAddress!, $0.baseAddress!, bits.count) } }
        for (i, b) in bits.enumerated() {
            let want = Float(Float16(bitPattern: b))
            if want.isNaN { XCTAssertTrue(out[i].isNaN, "f16 \(b)") } else { XCTAssertEqual(out[i].bitPattern, want.bitPattern, "f16 \(b)") }
        }
    }

    /// bfloat16 is the high half of an f32: every pattern, body and tail.
    func testBF16ConversionIsExactForEveryValue() {
        let bits = (0..<65_536).map { UInt16($0) } + [0x3F80, 0xFF80, 0x7FC0, 0x0001, 0x8000]
        var out = [Float](repeating: -1, count: bits.count)
        bits.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Matrix.bf16ToF32(src.baseAddress!, $0.baseAddress!, bits.count) } }
        for (i, b) in bits.enumerated() { XCTAssertEqual(out[i].bitPattern, UInt32(b) << 16, "bf16 \(b)") }
    }

    /// Rows of a view convert from their own offset (an expert inside a fused tensor).
    func testRowsOfAViewConvertFromTheirOffset() {
        let values: [Float] = (0..<24).map { Float($0) - 7.5 }
        let bf16 = values.map { UInt16($0.bitPattern >> 16) }
        bf16.withUnsafeBytes { raw in
            let m = Matrix(base: raw.baseAddress!, dtype: .bf16, rows: 6, cols: 4, name: "t")
            var out = [Float](repeating: 0, count: 8)
            out.withUnsafeMutableBufferPointer { m.rows(2, 3).convert(rows: 1, count: 2, into: $0.baseAddress!) }
            XCTAssertEqual(out, Array(values[12..<20]))
        }
    }

    /// The OpenBLAS core family for the CPU flags: AVX-512 (with or without BF16), AVX2 + FMA, else none.
    func testCoreFamilyFromCPUFlags() {
        XCTAssertEqual(BLASCore.bestCore(flags: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx2", "fma"]), "Cooperlake")
        XCTAssertEqual(BLASCore.bestCore(flags: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"]), "SkylakeX")
        XCTAssertEqual(BLASCore.bestCore(flags: ["avx512f", "avx2", "fma"]), "Haswell")   // partial AVX-512 (e.g. KNL-like)
        XCTAssertEqual(BLASCore.bestCore(flags: ["avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASCore.bestCore(flags: ["sse4_2", "avx"]))
        XCTAssertTrue(BLASCore.generic.contains("prescott"))
        XCTAssertFalse(BLASCore.name.isEmpty)
    }

    /// Which core is forced: the best one only when OpenBLAS fell back to a generic core; under
    /// DISTIL_ISA the one of the requested level whenever OpenBLAS chose another (Haswell for avx2 on
    /// an AVX-512 CPU, Prescott for generic), and nothing when it already runs that one.
    func testForcedCoreFollowsTheRequestedLevel() {
        let avx512: Set = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx2", "fma"]
        XCTAssertEqual(BLASCore.forcedCore(chosen: "Prescott", flags: avx512, level: 4, requested: false), "Cooperlake")
        XCTAssertNil(BLASCore.forcedCore(chosen: "Zen", flags: avx512, level: 4, requested: false))
        XCTAssertEqual(BLASCore.bestCore(flags: avx512, level: 3), "Haswell")
        XCTAssertEqual(BLASCore.forcedCore(chosen: "Cooperlake", flags: avx512, level: 3, requested: true), "Haswell")
        XCTAssertEqual(BLASCore.forcedCore(chosen: "Zen", flags: avx512, level: 3, requested: true), "Haswell")
        XCTAssertNil(BLASCore.forcedCore(chosen: "Haswell", flags: avx512, level: 3, requested: true))
        XCTAssertEqual(BLASCore.forcedCore(chosen: "Cooperlake", flags: avx512, level: 1, requested: true), "Prescott")
        XCTAssertNil(BLASCore.forcedCore(chosen: "Cooperlake", flags: avx512, level: 4, requested: true))
    }
}

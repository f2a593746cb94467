import DistilKernels
@testable import DistilScore
import Foundation
import XCTest

/// The KL kernels' instruction-set builds (baseline, x86-64-v3, x86-64-v4): the same bits from each,
/// the teacher stream's binary16 rows read in place exactly as their decoded f32 rows, and no code
/// shared between builds at link time.
final class KernelBuildTests: XCTestCase {
    let builds = KLKernel.ISA.allCases.filter { $0 <= KLKernel.supported }

    /// A row's stream form: binary16 of every value and (id, f32) pairs for the values above -12.
    func streamForm(_ t: [Float]) -> (half: [UInt16], exact: [UInt8], decoded: [Float]) {
        var half = [UInt16](), exact = [UInt8](), decoded = [Float]()
        for (i, x) in t.enumerated() {
            half.append(Float16(x).bitPattern)
            if x > -12 {
                withUnsafeBytes(of: UInt32(i).littleEndian) { exact += $0 }
                withUnsafeBytes(of: x.bitPattern.littleEndian) { exact += $0 }
                decoded.append(x)
            } else {
                decoded.append(Float(Float16(x)))
            }
        }
        return (half, exact, decoded)
    }

    func rows() -> [(String, [Float], [Float])] {
        var rng = TestRNG(99)
        var out: [(String, [Float], [Float])] = []
        for count in [1, 15, 16, 17, 511, 512, 513, 1_000, 20_000, 248_320] {
            let (t, s) = makeRow(&rng, count: count, noise: 0.4)
            out.append(("count \(count)", t, s))
        }
        var (t, s) = makeRow(&rng, count: 3_000, noise: 0.2)
        t[7] = -.infinity; t[2_999] = -.infinity; s[100] = -.infinity; t[600] = -90
        out.append(("-inf and tiny teacher values, a -inf logit", t, s))
        var tn = t; tn[1_234] = .nan
        out.append(("teacher NaN", tn, s))
        var sn = s; sn[2_048] = .nan
        out.append(("student NaN", t, sn))
        // Ties, and the teacher's top in the last partial block.
        var tt = [Float](repeating: log(1.0 / 1_030), count: 1_030)
        tt[1_029] = -0.5; tt[1_027] = -0.5
        out.append(("top in the tail block, tied", tt, [Float](repeating: 2, count: 1_030)))
        return out
    }

    func same(_ a: KLPoint, _ b: KLPoint) -> Bool {
        a.kl.bitPattern == b.kl.bitPattern && a.studentTop == b.studentTop && a.teacherTop == b.teacherTop
    }

    func testEveryBuildGivesTheSameBits() {
        XCTAssertTrue(builds.contains(.baseline))
        for (name, t, s) in rows() {
            var base: KLPoint?
            var baseSoftmax: [Float]?
            var baseLSE: Double?
            for isa in builds {
                let r = t.withUnsafeBufferPointer { tp in s.withUnsafeBufferPointer { sp in
                    KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress!, studentLogits: sp.baseAddress!, count: t.count, isa: isa)
                } }
                var out = [Float](repeating: 0, count: s.count)
                let lse = s.withUnsafeBufferPointer { sp in out.withUnsafeMutableBufferPointer {
                    KLKernel.logSoftmax(sp.baseAddress!, into: $0.baseAddress!, count: s.count, isa: isa)
                } }
                if let b = base, let bs = baseSoftmax, let bl = baseLSE {
                    XCTAssertTrue(same(r, b), "\(name), \(isa): \(r) vs baseline \(b)")
                    XCTAssertEqual(lse.bitPattern, bl.bitPattern, "\(name), \(isa): log-sum-exp")
                    XCTAssertEqual(out.map(\.bitPattern), bs.map(\.bitPattern), "\(name), \(isa): log-softmax")
                } else {
                    base = r; baseSoftmax = out; baseLSE = lse
                }
            }
        }
    }

    /// dl-kl hands the kernel the stream's binary16 row with its exact entries, read in place; that
    /// must give exactly what the decoded f32 row gives.
    func testBinary16RowsReadInPlaceEqualTheirDecodedRows() {
        for (name, t, s) in rows() {
            let form = streamForm(t)
            for isa in builds {
                let decoded = form.decoded.withUnsafeBufferPointer { tp in s.withUnsafeBufferPointer { sp in
                    KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress!, studentLogits: sp.baseAddress!, count: t.count, isa: isa)
                } }
                let inPlace = form.half.withUnsafeBytes { h in form.exact.withUnsafeBytes { e in s.withUnsafeBufferPointer { sp in
                    KLKernel.kl(KLTeacherRow(binary16: h.baseAddress!, exact: e.baseAddress, exactCount: e.count / 8),
                                studentLogits: sp.baseAddress!, count: t.count, isa: isa)
                } } }
                XCTAssertTrue(same(inPlace, decoded), "\(name), \(isa): \(inPlace) vs decoded \(decoded)")
                if !t.contains(where: \.isNaN) {
                    XCTAssertEqual(inPlace.teacherTop, form.decoded.indices.max { form.decoded[$0] < form.decoded[$1] || (form.decoded[$0] == form.decoded[$1] && $0 > $1) }!, name)
                }
            }
        }
    }

    /// An exact entry that makes the teacher's top (its binary16 value ties with another's).
    func testExactEntriesDecideTheTeachersTop() {
        var t = [Float](repeating: -20, count: 2_000)
        t[300] = -0.1; t[1_500] = -0.09999   // equal in binary16; the later one is larger
        XCTAssertEqual(Float16(t[300]), Float16(t[1_500]))
        let half = t.map { Float16($0).bitPattern }
        var exact = [UInt8]()
        for id in [300, 1_500] {
            withUnsafeBytes(of: UInt32(id).littleEndian) { exact += $0 }
            withUnsafeBytes(of: t[id].bitPattern.littleEndian) { exact += $0 }
        }
        var s = [Float](repeating: 0, count: 2_000); s[300] = 5
        for isa in builds {
            let r = half.withUnsafeBytes { h in exact.withUnsafeBytes { e in s.withUnsafeBufferPointer { sp in
                KLKernel.kl(KLTeacherRow(binary16: h.baseAddress!, exact: e.baseAddress, exactCount: 2), studentLogits: sp.baseAddress!,
                            count: 2_000, isa: isa)
            } } }
            XCTAssertEqual(r.teacherTop, 1_500, "\(isa)")
            XCTAssertEqual(r.studentTop, 300, "\(isa)")
        }
    }

    /// The instruction-set modules inline the shared kernel source; a weak (shared) definition in
    /// their objects would be one copy for the whole program at link time, and could hand AVX-512
    /// code to the baseline's callers. Their objects may define only their own module's symbols.
    func testInstructionSetBuildsDefineNoSharedCode() throws {
        #if arch(x86_64) && os(Linux)
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The test bundle sits beside the modules' build folders (.build/<triple>/<configuration>).
        var dir = products
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("DistilKernelsX86v3.build").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        let nm = ["/usr/bin/nm", "/usr/bin/llvm-nm"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let nm else { throw XCTSkip("no nm to read the objects with") }
        for module in ["DistilKernelsX86v3", "DistilKernelsX86v4"] {
            let folder = dir.appendingPathComponent("\(module).build")
            let objects = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".o") }
            XCTAssertFalse(objects.isEmpty, "no objects in \(folder.path)")
            for o in objects {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: nm)
                p.arguments = ["--defined-only", folder.appendingPathComponent(o).path]
                let pipe = Pipe()
                p.standardOutput = pipe
                try p.run()
                let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                XCTAssertEqual(p.terminationStatus, 0)
                let mangledModule = "\(module.count)\(module)"
                for line in text.split(separator: "\n") {
                    let f = line.split(separator: " ")
                    guard f.count == 3 else { continue }
                    let (kind, name) = (f[1], String(f[2]))
                    // Global or weak definitions (local ones, lowercase t/d/r/b, cannot clash).
                    guard kind.first!.isUppercase || ["w", "v", "u"].contains(kind) else { continue }
                    XCTAssertTrue(name.contains(mangledModule) || name == "__swift_reflection_version" || name.hasPrefix("_swift_FORCE_LOAD"),
                                  "\(module)/\(o) defines \(kind) \(name), which other modules may define too")
                }
            }
        }
        #else
        throw XCTSkip("the instruction-set builds exist on x86-64 Linux")
        #endif
    }
}

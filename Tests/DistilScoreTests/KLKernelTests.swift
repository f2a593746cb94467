@testable import DistilScore
import DistilFormats
import DistilKernels
import Foundation
import XCTest

/// The seeded generator of test data: DistilFormats' SplitMix64.
typealias TestRNG = SplitMix64

extension SplitMix64 {
    init(_ seed: UInt64) { self.init(seed: seed) }
}

/// Heavy-tailed synthetic rows: a Gaussian bulk, a tail of boosted tokens, a confident top.
func makeRow(_ rng: inout TestRNG, count: Int, noise: Double) -> (teacher: [Float], student: [Float]) {
    var logits = (0..<count).map { _ in rng.gaussian() * 2 }
    for _ in 0..<max(1, count / 200) { logits[Int(rng.next() % UInt64(count))] += 6 + rng.uniform() * 8 }
    logits[Int(rng.next() % UInt64(count))] += 18
    let m = logits.max()!
    let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
    let teacher = logits.map { Float($0 - lse) }
    let student = logits.map { Float($0 + rng.gaussian() * noise + 7.5) }
    return (teacher, student)
}

/// Straightforward f64 reference on the same f32 inputs.
func referenceKL(_ t: [Float], _ s: [Float]) -> Double {
    let z = s.map(Double.init)
    let m = z.max()!
    let lse = m + log(z.reduce(0) { $0 + exp($1 - m) })
    var kl = 0.0
    for i in 0..<t.count where t[i] != -.infinity {
        let lt = Double(t[i])
        kl += exp(lt) * (lt - (z[i] - lse))
    }
    return kl
}

final class KLKernelTests: XCTestCase {
    /// The kernel on every instruction-set build this CPU runs; all must give the same bits. The
    /// baseline's result is returned.
    func kl(_ t: [Float], _ s: [Float], file: StaticString = #filePath, line: UInt = #line) -> KLPoint {
        let all = KLKernel.ISA.allCases.filter { $0 <= KLKernel.supported }.map { isa in
            t.withUnsafeBufferPointer { tp in s.withUnsafeBufferPointer { sp in
                KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress!, studentLogits: sp.baseAddress!, count: t.count, isa: isa)
            } }
        }
        for (isa, r) in zip(KLKernel.ISA.allCases, all) {
            XCTAssertTrue(r.kl.bitPattern == all[0].kl.bitPattern && r.studentTop == all[0].studentTop && r.teacherTop == all[0].teacherTop,
                          "\(isa): \(r) vs baseline \(all[0])", file: file, line: line)
        }
        return all[0]
    }

    func testFastExpIsAccurateToAboutOneUlp() {
        var worst = 0.0
        var x: Float = -87.0
        while x < 80 {
            let got = Double(FastExp.exp(x)), want = exp(Double(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 1.0e-7)   // under 1 ulp of f32 (ulp 1.19e-7 relative); fit_exp.py: 8.1e-8
        XCTAssertEqual(FastExp.exp(0), 1)
        XCTAssertEqual(FastExp.exp(-Float.infinity), 0)
        XCTAssertEqual(FastExp.exp(-100), 0)
    }

    func testMatchesF64ReferenceOnHeavyTailedRows() {
        var rng = TestRNG(42)
        for (count, noise) in [(248_320, 0.3), (248_320, 0.05), (50_003, 1.0), (1_000, 0.2), (13, 0.5)] {
            let (t, s) = makeRow(&rng, count: count, noise: noise)
            let ref = referenceKL(t, s)
            let got = kl(t, s)
            XCTAssertLessThan(abs(got.kl - ref) / ref, 1e-6, "count \(count) noise \(noise): \(got.kl) vs \(ref)")
            XCTAssertEqual(got.teacherTop, t.indices.max(by: { t[$0] < t[$1] })!)
            XCTAssertEqual(got.studentTop, s.indices.max(by: { s[$0] < s[$1] })!)
        }
    }

    func testDeadTailOfTheVocabularyIsHandledExactlyEnough() {
        // 60% of the vocabulary far below the top (like unused tokens), where the student puts far more
        // mass than the teacher.
        var rng = TestRNG(5)
        var (t, s) = makeRow(&rng, count: 248_320, noise: 0.2)
        for i in 0..<148_992 where t[i] < -5 {
            t[i] = Float(-60 - rng.uniform() * 20)
            s[i] = Float(rng.gaussian() * 2 + 5)
        }
        let ref = referenceKL(t, s)
        let got = kl(t, s)
        XCTAssertLessThan(abs(got.kl - ref) / ref, 1e-6, "\(got.kl) vs \(ref)")
    }

    func testIdenticalDistributionsGiveZero() {
        var rng = TestRNG(7)
        let (t, _) = makeRow(&rng, count: 10_000, noise: 0)
        // The student's logits are the teacher's log-probs shifted by a constant.
        let got = kl(t, t.map { $0 + 3 })
        XCTAssertLessThan(abs(got.kl), 1e-6)
        XCTAssertEqual(got.studentTop, got.teacherTop)
    }

    func testMinusInfinityTeacherContributesZero() {
        var t: [Float] = [log(0.5), log(0.5), -.infinity, -.infinity]
        let s: [Float] = [0, 0, -.infinity, 5]   // student -inf where the teacher is also -inf: fine
        var r = kl(t, s)
        XCTAssertTrue(r.kl.isFinite)
        XCTAssertEqual(r.kl, referenceKL(t, s), accuracy: 1e-6 * referenceKL(t, s))
        t = [0, -.infinity]
        r = kl(t, [-.infinity, 0])                 // the student gives zero probability to the teacher's token
        XCTAssertEqual(r.kl, .infinity)
    }

    func testNaNAnywhereGivesNaN() {
        var rng = TestRNG(3)
        let (t, s) = makeRow(&rng, count: 1_001, noise: 0.2)
        for i in [0, 500, 1_000] {
            var t2 = t; t2[i] = .nan
            XCTAssertTrue(kl(t2, s).kl.isNaN, "teacher NaN at \(i)")
            var s2 = s; s2[i] = .nan
            XCTAssertTrue(kl(t, s2).kl.isNaN, "student NaN at \(i)")
        }
    }

    func testTiesGoToTheLowestIndex() {
        let t: [Float] = Array(repeating: log(1.0 / 20), count: 20)
        let r = kl(t, Array(repeating: 1, count: 20))
        XCTAssertEqual(r.teacherTop, 0)
        XCTAssertEqual(r.studentTop, 0)
        XCTAssertEqual(r.kl, 0, accuracy: 1e-6)
    }

    func testLogSoftmaxMatchesReferenceAndWorksInPlace() {
        var rng = TestRNG(11)
        var z = (0..<10_007).map { _ in Float(rng.gaussian() * 4 + 20) }
        let zd = z.map(Double.init)
        let m = zd.max()!
        let lse = m + log(zd.reduce(0) { $0 + exp($1 - m) })
        let got = z.withUnsafeMutableBufferPointer { p in KLKernel.logSoftmax(p.baseAddress!, into: p.baseAddress!, count: p.count) }
        XCTAssertEqual(got, lse, accuracy: 1e-9 * abs(lse))
        for i in stride(from: 0, to: z.count, by: 97) {
            XCTAssertEqual(Double(z[i]), zd[i] - lse, accuracy: 4e-6)
        }
        let total = z.reduce(0.0) { $0 + exp(Double($1)) }
        XCTAssertEqual(total, 1, accuracy: 1e-5)
    }

    func testStatsAccumulator() {
        var st = KLStats()
        for (i, v) in [0.5, 0.1, 0.4, 0.2, 0.3, 1.0, 0.7, 0.6, 0.9, 0.8].enumerated() {
            st.add(KLPoint(kl: v, studentTop: i % 2, teacherTop: 0))
        }
        XCTAssertEqual(st.mean, 0.55, accuracy: 1e-15)
        XCTAssertEqual(st.std, (0.0825 as Double).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(st.max, 1.0)
        XCTAssertEqual(st.p50, 0.5)
        XCTAssertEqual(st.p90, 0.9)
        XCTAssertEqual(st.p99, 1.0)
        XCTAssertEqual(st.top1Agreement, 0.5)
        let r = st.record(model: "m", promptID: "p")
        XCTAssertEqual(r.n_tokens, 10); XCTAssertEqual(r.kl_mean, 0.55, accuracy: 1e-15)
        XCTAssertEqual(r.kl_p90, 0.9); XCTAssertEqual(r.kl_max, 1.0); XCTAssertEqual(r.top1_agree, 0.5)
        XCTAssertNil(KLStats().record(model: "m", promptID: "p").kl_max)
        st.add(kl: .nan, agree: false)
        XCTAssertTrue(st.mean.isNaN)
        XCTAssertTrue(st.p50.isNaN)
    }
}

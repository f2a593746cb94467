@testable import DistilScore
import XCTest

final class StatisticsTests: XCTestCase {
    func testStudentTQuantilesMatchTables() {
        XCTAssertEqual(StudentT.quantile(0.975, df: 1), 12.7062047, accuracy: 1e-6)
        XCTAssertEqual(StudentT.quantile(0.975, df: 2), 4.30265273, accuracy: 1e-6)
        XCTAssertEqual(StudentT.quantile(0.975, df: 10), 2.22813885, accuracy: 1e-7)
        XCTAssertEqual(StudentT.quantile(0.975, df: 39), 2.02269092, accuracy: 1e-7)
        XCTAssertEqual(StudentT.quantile(0.995, df: 5), 4.03214298, accuracy: 1e-6)
        XCTAssertEqual(StudentT.quantile(0.975, df: 1e7), 1.95996398, accuracy: 1e-6)
        XCTAssertEqual(StudentT.quantile(0.025, df: 10), -2.22813885, accuracy: 1e-7)
        XCTAssertEqual(StudentT.quantile(0.5, df: 3), 0)
    }

    func testStudentTCDF() {
        XCTAssertEqual(StudentT.cdf(0, df: 4), 0.5, accuracy: 1e-15)
        XCTAssertEqual(StudentT.cdf(1, df: 1), 0.75, accuracy: 1e-12)       // Cauchy
        XCTAssertEqual(StudentT.cdf(2.22813885, df: 10), 0.975, accuracy: 1e-8)
        XCTAssertEqual(StudentT.cdf(-2.02269092, df: 39), 0.025, accuracy: 1e-8)
    }

    func testIncompleteBetaKnownValues() {
        XCTAssertEqual(IncompleteBeta.regularized(0.5, a: 2, b: 2), 0.5, accuracy: 1e-14)
        XCTAssertEqual(IncompleteBeta.regularized(0.3, a: 1, b: 1), 0.3, accuracy: 1e-14)
        // I_x(a, 1) = x^a
        XCTAssertEqual(IncompleteBeta.regularized(0.7, a: 3.5, b: 1), pow(0.7, 3.5), accuracy: 1e-13)
    }

    func testSampleSummaryAndCI() {
        let s = SampleSummary([1, 2, 3, 4, 5])
        XCTAssertEqual(s.mean, 3)
        XCTAssertEqual(s.std, (2.5 as Double).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(s.se, (0.5 as Double).squareRoot(), accuracy: 1e-15)
        // t_{0.975,4} = 2.776445105
        XCTAssertEqual(s.ci_high, 3 + 2.776445105 * (0.5 as Double).squareRoot(), accuracy: 1e-8)
        XCTAssertEqual(s.ci_low, 3 - 2.776445105 * (0.5 as Double).squareRoot(), accuracy: 1e-8)
        let one = SampleSummary([0.25])
        XCTAssertEqual(one.ci_low, 0.25); XCTAssertEqual(one.ci_high, 0.25); XCTAssertEqual(one.std, 0)
    }

    func testPairedComparison() {
        let king = [0.30, 0.31, 0.29, 0.35, 0.33]
        let chal = [0.25, 0.27, 0.26, 0.30, 0.29]
        let p = PairedComparison(chal, king)
        let d = [-0.05, -0.04, -0.03, -0.05, -0.04]
        XCTAssertEqual(p.mean_diff, -0.042, accuracy: 1e-15)
        XCTAssertEqual(p.std_diff, Statistics.sampleStd(d), accuracy: 1e-15)
        XCTAssertEqual(p.t, -0.042 / (Statistics.sampleStd(d) / (5 as Double).squareRoot()), accuracy: 1e-9)
        XCTAssertLessThan(p.p_value!, 0.001)
        XCTAssertEqual(p.relative!, 1.37 / 1.58 - 1, accuracy: 1e-12)
        XCTAssertLessThan(p.ci_high, 0)
    }
}

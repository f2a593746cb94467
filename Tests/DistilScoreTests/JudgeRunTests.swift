import DistilFormats
@testable import DistilScore
import Foundation
import XCTest

/// What moved out of dl-judge's main: the files read and written around `Judge.judge`.
final class JudgeRunTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "distil-judgerun-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write<T: Encodable>(_ name: String, _ xs: [T]) throws -> String {
        let w = JSONLWriter(try FileWriter(path: dir + "/" + name))
        for x in xs { try w.write(x) }
        try w.close()
        return dir + "/" + name
    }

    func testWritesTheVerdictAndTheStateAsJudgeDecidesAndADryRunLeavesTheState() throws {
        let checks = try write("checks.jsonl", [Epoch.check(1), Epoch.check(2)])
        let kl = try write("kl.jsonl", (Epoch.records(1, [0.5, 0.6]) + Epoch.records(2, [0.3, 0.3])).map(\.record))
        let state = dir + "/state.json"
        let options = JudgeOptions(epsilon: 0.01, block: 500)
        let v = try JudgeRun.judge(checks: checks, recheck: nil, state: state, kl: [kl], options: options,
                                   out: dir + "/verdict.json", updateState: true)
        let (expected, after) = try Judge.judge(checks: [Epoch.check(1), Epoch.check(2)],
                                                records: try JudgeIO.readKL([kl]), state: JudgeState(), options: options)
        XCTAssertEqual(v, expected)
        XCTAssertEqual(v.winner, 2)
        XCTAssertEqual(try readFile(dir + "/verdict.json"), try JudgeIO.encode(expected))
        XCTAssertEqual(try readFile(state), try JudgeIO.encode(after))

        let before = try readFile(state)
        _ = try JudgeRun.judge(checks: checks, recheck: nil, state: state, kl: [kl], options: options,
                               out: dir + "/verdict2.json", updateState: false)
        XCTAssertEqual(try readFile(state), before, "--no-state-update leaves the state as it was")
    }

    func testShowRefusesAMissingState() {
        XCTAssertThrowsError(try JudgeRun.show(state: dir + "/none.json", json: true)) { e in
            XCTAssertEqual((e as? DistilError)?.message, "\(dir)/none.json: no such file")
        }
    }
}

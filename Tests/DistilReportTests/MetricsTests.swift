import DistilFormats
import DistilScore
@testable import DistilReport
import Foundation
import XCTest

/// The metrics file: what the demo's epochs give, read back by our strict parser (the report suite
/// reads it with prometheus_client's too), names as Prometheus' conventions want them.
final class MetricsTests: XCTestCase {
    var epoch200: String { ReportTests.fixtures + "/epoch-200" }

    func testDemoEpochMetrics() throws {
        let families = try EpochMetrics.collect(epoch: epoch200, exitStatus: 0, now: 1_700_000_000)
        let text = Prometheus.render(families)
        // The committed sample (docs/FORMATS.md, "Metrics") is exactly what the fixture epoch gives.
        XCTAssertEqual(text, try String(contentsOfFile: ReportTests.fixtures + "/metrics.prom", encoding: .utf8))
        let back = try Prometheus.parse(text)
        XCTAssertEqual(back.map(\.name), families.map(\.name))
        func v(_ n: String, _ l: [String: String] = [:]) -> Double? { back.first { $0.name == n }?.value(l) }
        let verdict = try decodeJSONFile(Verdict.self, path: epoch200 + "/verdict.json")
        XCTAssertEqual(v("distil_epoch_block"), 200)
        XCTAssertEqual(v("distil_epoch_success"), 1)
        XCTAssertEqual(v("distil_epoch_runs_total", ["result": "success"]), 1)
        XCTAssertEqual(v("distil_epoch_runs_total", ["result": "failure"]), 0)
        XCTAssertEqual(v("distil_epoch_models_committed"), 2)
        XCTAssertEqual(v("distil_epoch_models_fetched"), 2)
        XCTAssertEqual(v("distil_epoch_models_scored"), 2)
        XCTAssertEqual(v("distil_king_uid"), 2)
        XCTAssertEqual(v("distil_king_mean_kl_nats"), verdict.models.first { $0.uid == 2 }?.score.mean_kl)
        // timings.jsonl: the latest line of each stage (kl: of each uid, summed): 3.092 + 3.118.
        XCTAssertEqual(v("distil_epoch_stage_duration_seconds", ["stage": "teacher"]), 14.507)
        XCTAssertEqual(v("distil_epoch_stage_duration_seconds", ["stage": "kl"])!, 6.21, accuracy: 1e-12)
        // The teacher's tokens: the continuation positions of the scored prompts.
        let tokens = Double(verdict.models[0].per_prompt.reduce(0) { $0 + $1.n_tokens })
        XCTAssertEqual(v("distil_teacher_tokens"), tokens)
        XCTAssertEqual(v("distil_teacher_tokens_per_second")!, tokens / 14.507, accuracy: 1e-9)
        let manifests = try JSONLReader<Manifest>(path: epoch200 + "/manifests.jsonl").readAll()
        XCTAssertEqual(v("distil_epoch_fetched_bytes"), Double(manifests.flatMap(\.files).reduce(Int64(0)) { $0 + $1.size }))
        // Bytes downloaded: what the fetch counted on the wire (fetch-stats.json), not the files' sizes.
        let stats = try decodeJSONFile(FetchStats.self, path: epoch200 + "/fetch-stats.json")
        XCTAssertEqual(v("distil_epoch_downloaded_bytes"), Double(stats.bytes_received))
        XCTAssertEqual(v("distil_epoch_hub_requests"), Double(stats.requests))
        // Conventions: the distil_ prefix, _total only on counters, units as suffixes in base units.
        for f in back {
            XCTAssertTrue(f.name.hasPrefix("distil_"), f.name)
            XCTAssertEqual(f.name.hasSuffix("_total"), f.kind == .counter, f.name)
            XCTAssertFalse(f.help.isEmpty, f.name)
            XCTAssertFalse(f.name.contains("milli") || f.name.contains("_ms") || f.name.contains("kilo"), f.name)
        }
    }

    /// A verdict with scoring failures: the metric counts them by fault, from the verdict's `unscored`.
    func testUnscoredModelsByFault() throws {
        let dir = NSTemporaryDirectory() + "distil-metrics-unscored-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = dir + "/epoch-200"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: epoch200, toPath: e)
        var v = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: e + "/verdict.json"))) as! [String: Any]
        func failure(_ uid: Int, _ fault: String, _ reason: String, _ outcome: String) -> [String: Any] {
            ["uid": uid, "hotkey": "hk\(uid)", "repo": "m/\(uid)", "fault": fault, "reason": reason, "message": "x", "outcome": outcome]
        }
        v["unscored"] = [failure(7, "miner", "UNSCORABLE", "no_weight"), failure(8, "ours", "RETRY", "pending"),
                         failure(9, "miner", "UNSCORABLE", "no_weight")]
        try JSONSerialization.data(withJSONObject: v).write(to: URL(fileURLWithPath: e + "/verdict.json"))
        let back = try Prometheus.parse(Prometheus.render(try EpochMetrics.collect(epoch: e, exitStatus: 0, now: 1)))
        let f = back.first { $0.name == "distil_epoch_models_unscored" }
        XCTAssertEqual(f?.value(["fault": "miner"]), 2)
        XCTAssertEqual(f?.value(["fault": "ours"]), 1)
    }

    func testFailedEpochAndCarriedCounter() throws {
        let dir = NSTemporaryDirectory() + "distil-metrics-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = dir + "/epoch-300"
        try FileManager.default.createDirectory(atPath: e, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: epoch200 + "/manifests.jsonl", toPath: e + "/manifests.jsonl")
        let out = dir + "/distil.prom"
        try EpochMetrics.write(epoch: epoch200, exitStatus: 0, to: out)
        try EpochMetrics.write(epoch: e, exitStatus: 1, to: out)
        try EpochMetrics.write(epoch: epoch200, exitStatus: 0, to: out)
        let back = try Prometheus.parse(try String(contentsOfFile: out, encoding: .utf8))
        let runs = back.first { $0.name == "distil_epoch_runs_total" }!
        XCTAssertEqual(runs.value(["result": "success"]), 2)
        XCTAssertEqual(runs.value(["result": "failure"]), 1)
        let failed = try EpochMetrics.collect(epoch: e, exitStatus: 1)
        XCTAssertEqual(failed.first { $0.name == "distil_epoch_success" }?.value(), 0)
        XCTAssertEqual(failed.first { $0.name == "distil_epoch_block" }?.value(), 300)
        XCTAssertNil(failed.first { $0.name == "distil_king_uid" })
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted(), ["distil.prom", "epoch-300"], "no temporary left")
        XCTAssertThrowsError(try EpochMetrics.collect(epoch: dir + "/nope", exitStatus: 1))
    }

    /// pipelines/validator.sh's runs: an epoch that ran, then a run that was not due (no epoch: the last
    /// epoch's figures stand), then one whose chain read failed.
    func testValidatorRuns() throws {
        let dir = NSTemporaryDirectory() + "distil-metrics-v-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/distil.prom"
        func read() throws -> [MetricFamily] { try Prometheus.parse(try String(contentsOfFile: out, encoding: .utf8)) }
        func v(_ f: [MetricFamily], _ n: String, _ l: [String: String] = [:]) -> Double? { f.first { $0.name == n }?.value(l) }
        try EpochMetrics.write(epoch: epoch200, exitStatus: 0, validator: .init(exitStatus: 0, stages: [
            ("block", "ok"), ("commitments", "ok"), ("epoch", "ok"), ("set-weights", "ok"), ("prune", "skipped")]), to: out)
        let first = try read()
        XCTAssertEqual(v(first, "distil_validator_stage_success", ["stage": "set-weights"]), 1)
        XCTAssertNil(v(first, "distil_validator_stage_success", ["stage": "prune"]))
        try EpochMetrics.write(epoch: nil, exitStatus: nil, validator: .init(exitStatus: 0, stages: [("block", "skipped")]), to: out)
        let notDue = try read()
        for f in first where EpochMetrics.epochPrefixes.contains(where: { f.name.hasPrefix($0) }) {
            XCTAssertEqual(notDue.first { $0.name == f.name }, f, "the last epoch's \(f.name) stands")
        }
        XCTAssertEqual(v(notDue, "distil_validator_runs_total", ["result": "success"]), 2)
        XCTAssertEqual(v(notDue, "distil_epoch_runs_total", ["result": "success"]), 1)
        try EpochMetrics.write(epoch: nil, exitStatus: nil, validator: .init(exitStatus: 10, stages: [("block", "failed")]), to: out)
        let failed = try read()
        XCTAssertEqual(v(failed, "distil_validator_exit_status"), 10)
        XCTAssertEqual(v(failed, "distil_validator_stage_success", ["stage": "block"]), 0)
        XCTAssertEqual(v(failed, "distil_validator_runs_total", ["result": "failure"]), 1)
        XCTAssertEqual(v(failed, "distil_king_uid"), 2)
        for f in failed {
            XCTAssertEqual(f.name.hasSuffix("_total"), f.kind == .counter, f.name)
        }
    }

    func testParserRefusesWhatTheFormatForbids() {
        let bad: [(String, String)] = [
            ("a 1", "newline"),
            ("1a 1\n", "metric name"),
            ("a{b=\"x\\t\"} 1\n", "escape"),
            ("a{b=\"x\"} 1\na{b=\"x\"} 2\n", "twice"),
            ("a 1\n# TYPE a gauge\n", "after its samples"),
            ("a 1\nb 1\na{x=\"1\"} 1\n", "contiguous"),
            ("a{b=\"x\",b=\"y\"} 1\n", "twice"),
            ("a one\n", "float"),
            ("a 0x10\n", "float"),
            ("a 1 2.5\n", "timestamp"),
            ("# TYPE a gaugey\n", "type"),
            ("a{b=x} 1\n", "quoted"),
            ("a{b:c=\"x\"} 1\n", "label name"),
        ]
        for (text, what) in bad {
            XCTAssertThrowsError(try Prometheus.parse(text), text) { e in
                XCTAssertTrue((e as? DistilError)?.message.contains(what) == true, "\(text): \(e)")
            }
        }
        let good = "# HELP a A \\\\ help\\nline.\n# TYPE a gauge\na{b=\"q\\\"\\\\\\n\"} -Inf 1700000000\n# a comment\nc NaN\nd 1.5e-05\n"
        let f = try? Prometheus.parse(good)
        XCTAssertEqual(f?.count, 3)
        XCTAssertEqual(f?[0].help, "A \\ help\nline.")
        XCTAssertEqual(f?[0].samples[0].labels["b"], "q\"\\\n")
        XCTAssertEqual(f?[0].samples[0].value, -.infinity)
        XCTAssertEqual(Prometheus.render(f!.filter { $0.name == "a" }), "# HELP a A \\\\ help\\nline.\n# TYPE a gauge\na{b=\"q\\\"\\\\\\n\"} -Inf\n")
    }
}

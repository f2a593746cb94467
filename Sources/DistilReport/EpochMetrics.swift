import DistilFormats
import DistilScore
import Foundation

/// One line of `epoch-N/timings.jsonl` (docs/FORMATS.md, "Stage timings"): a stage run.
public struct StageTiming: Codable, Equatable, Sendable {
    public var stage: String
    public var uid: Int?
    public var seconds: Double
    public var cached: Bool
    public var exit: Int
}

/// An epoch's figures for monitoring, as Prometheus metric families (docs/FORMATS.md, "Metrics").
/// Per-epoch figures are gauges (they describe the last epoch and go up and down); the one counter,
/// runs by result, is carried over from the previous file so it only grows.
public enum EpochMetrics {
    /// Reads what the epoch folder holds (any artifact may be missing when the epoch failed early).
    /// `exitStatus`: the pipeline's exit status (nil: judged by the presence of verdict.json).
    /// `previous`: the families of the file being replaced (for the counter).
    public static func collect(epoch dir: String, exitStatus: Int?, previous: [MetricFamily] = [],
                               now: Double = Date().timeIntervalSince1970) throws -> [MetricFamily] {
        func path(_ n: String) -> String { (dir as NSString).appendingPathComponent(n) }
        func exists(_ n: String) -> Bool { FileManager.default.fileExists(atPath: path(n)) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DistilError.input(dir, "no such epoch folder")
        }
        let block = Int((dir as NSString).lastPathComponent.split(separator: "-").last ?? "")
        let manifests: [Manifest] = exists("manifests.jsonl") ? try JSONLReader<Manifest>(path: path("manifests.jsonl")).readAll() : []
        let checks: [CheckVerdict] = exists("checks.jsonl") ? try JudgeIO.readChecks(path("checks.jsonl")) : []
        let verdict: Verdict? = exists("verdict.json") ? try decodeJSONFile(Verdict.self, path: path("verdict.json")) : nil
        let timings: [StageTiming] = exists("timings.jsonl") ? try JSONLReader<StageTiming>(path: path("timings.jsonl")).readAll() : []
        let transferred: FetchStats? = exists("fetch-stats.json") ? try decodeJSONFile(FetchStats.self, path: path("fetch-stats.json")) : nil
        let success = (exitStatus.map { $0 == 0 } ?? true) && verdict != nil

        var out: [MetricFamily] = []
        if let b = verdict?.block ?? block {
            out.append(MetricFamily("distil_epoch_block", .gauge, help: "Block of the last epoch run.", value: Double(b)))
        }
        out.append(MetricFamily("distil_epoch_success", .gauge, help: "1 if the last epoch ran to its verdict, else 0.", value: success ? 1 : 0))
        if let e = exitStatus {
            out.append(MetricFamily("distil_epoch_exit_status", .gauge, help: "Exit status of the last epoch's pipeline.", value: Double(e)))
        }
        out.append(MetricFamily("distil_epoch_last_run_timestamp_seconds", .gauge, help: "When the last epoch ended (Unix time).", value: now.rounded()))
        out.append(counter("distil_epoch_runs_total", help: "Epoch runs by result, since the metrics file was first written.",
                           previous: previous, success: success))

        // Seconds per stage: the latest run of each stage (and of each uid for kl), summed over uids.
        var latest: [String: StageTiming] = [:]
        var order: [String] = []
        for t in timings {
            let key = t.stage + (t.uid.map { "/\($0)" } ?? "")
            if latest[key] == nil { order.append(key) }
            latest[key] = t
        }
        var seconds: [String: Double] = [:]
        var stages: [String] = []
        for k in order {
            let t = latest[k]!
            if seconds[t.stage] == nil { stages.append(t.stage) }
            seconds[t.stage, default: 0] += t.seconds
        }
        out.append(MetricFamily("distil_epoch_stage_duration_seconds", .gauge,
                                help: "Wall seconds of each stage's latest run in the last epoch (kl: summed over models; a cached stage takes about 0).",
                                samples: stages.map { .init(name: "distil_epoch_stage_duration_seconds", labels: ["stage": $0], value: seconds[$0]!) }))

        out.append(MetricFamily("distil_epoch_models_committed", .gauge, help: "Commitments fetched for in the last epoch.", value: Double(manifests.count)))
        out.append(MetricFamily("distil_epoch_models_fetched", .gauge, help: "Models fetched (manifest outcome ok) in the last epoch.",
                                value: Double(manifests.filter { $0.outcome == .ok }.count)))
        var rejected: [String: Int] = [:]
        for c in checks where !c.ok { rejected[c.reason.rawValue, default: 0] += 1 }
        out.append(MetricFamily("distil_epoch_models_rejected", .gauge, help: "Models whose pre-check failed in the last epoch, by reason code.",
                                samples: rejected.keys.sorted().map { .init(name: "distil_epoch_models_rejected", labels: ["reason": $0], value: Double(rejected[$0]!)) }))
        out.append(MetricFamily("distil_epoch_models_scored", .gauge, help: "Models scored (KL over the teacher stream) in the last epoch.",
                                value: Double(verdict?.models.count ?? 0)))
        // Scoring failures (dl-kl could not score the model): by whose fault, 0 included so an alert
        // on the miner's or on ours needs no absent-series rule.
        if let v = verdict {
            let unscored = v.unscored ?? []
            out.append(MetricFamily("distil_epoch_models_unscored", .gauge,
                                    help: "Models dl-kl could not score in the last epoch, by whose fault (miner: rejected as UNSCORABLE; ours: RETRY).",
                                    samples: ScoringFault.allCases.map { f in
                                        .init(name: "distil_epoch_models_unscored", labels: ["fault": f.rawValue],
                                              value: Double(unscored.filter { $0.fault == f }.count))
                                    }))
        }
        if let k = verdict?.king_after {
            out.append(MetricFamily("distil_king_uid", .gauge, help: "uid of the king after the last epoch.", value: Double(k.uid)))
            let scored = verdict?.models.first { $0.uid == k.uid }?.score.mean_kl
            let remembered = (try? JudgeIO.readState(exists("state.json") ? path("state.json") : nil))?.scored(k.model.key)?.score.mean_kl
            if let kl = scored ?? remembered {
                out.append(MetricFamily("distil_king_mean_kl_nats", .gauge, help: "The king's mean KL(teacher || student) in nats, in the last epoch it was scored.", value: kl))
            }
        }
        // Teacher tokens: the continuation positions every scored model was scored on (one model's records).
        if let v = verdict, let m = v.models.first {
            let tokens = m.per_prompt.reduce(0) { $0 + $1.n_tokens }
            out.append(MetricFamily("distil_epoch_prompts_scored", .gauge, help: "Prompts scored in the last epoch (empty continuations dropped).", value: Double(v.prompts.count)))
            out.append(MetricFamily("distil_teacher_tokens", .gauge, help: "Continuation tokens the teacher generated (and scored) in the last epoch.", value: Double(tokens)))
            if let t = latest["teacher"], !t.cached, t.seconds > 0 {
                out.append(MetricFamily("distil_teacher_tokens_per_second", .gauge, help: "Teacher continuation tokens per wall second of the teacher stage.",
                                        value: Double(tokens) / t.seconds))
            }
        }
        let bytes = manifests.filter { $0.outcome == .ok }.reduce(Int64(0)) { $0 + $1.files.reduce(Int64(0)) { $0 + $1.size } }
        out.append(MetricFamily("distil_epoch_fetched_bytes", .gauge,
                                help: "Bytes of the fetched models' files in the last epoch (what a cold cache downloads; cached files count too).",
                                value: Double(bytes)))
        // What the fetch actually transferred (absent when the epoch's fetch wrote no statistics).
        if let t = transferred {
            out.append(MetricFamily("distil_epoch_downloaded_bytes", .gauge,
                                    help: "Body bytes received from the Hub by the last epoch's fetch (0 when every file was cached).",
                                    value: Double(t.bytes_received)))
            out.append(MetricFamily("distil_epoch_hub_requests", .gauge,
                                    help: "HTTP requests the last epoch's fetch sent to the Hub (retries included).",
                                    value: Double(t.requests)))
        }
        return out
    }

    /// The families an epoch run sets: when a run writes no epoch (a validator run that was not due),
    /// the last epoch's figures are carried over from the file it replaces.
    static let epochPrefixes = ["distil_epoch_", "distil_king_", "distil_teacher_"]

    /// What `pipelines/validator.sh` adds: its stages' outcomes and its own exit status.
    public struct ValidatorRun: Sendable {
        public var exitStatus: Int
        /// (stage, "ok" | "failed" | "refused" | "skipped"), in the order they ran.
        public var stages: [(String, String)]
        public init(exitStatus: Int, stages: [(String, String)]) { self.exitStatus = exitStatus; self.stages = stages }
    }

    public static func validatorFamilies(_ run: ValidatorRun, previous: [MetricFamily], now: Double) -> [MetricFamily] {
        var out: [MetricFamily] = [
            MetricFamily("distil_validator_exit_status", .gauge, help: "Exit status of the last pipelines/validator.sh run (0: ok or not due).",
                         value: Double(run.exitStatus)),
            MetricFamily("distil_validator_last_run_timestamp_seconds", .gauge, help: "When the last validator run ended (Unix time).", value: now.rounded()),
            MetricFamily("distil_validator_stage_success", .gauge, help: "1 if the stage succeeded in the last validator run, 0 if it failed or was refused (skipped stages absent).",
                         samples: run.stages.filter { $0.1 != "skipped" }.map {
                             .init(name: "distil_validator_stage_success", labels: ["stage": $0.0], value: $0.1 == "ok" ? 1 : 0)
                         }),
        ]
        out.append(counter("distil_validator_runs_total", help: "Validator runs by result (not-due runs count as success).",
                           previous: previous, success: run.exitStatus == 0))
        return out
    }

    /// A `result`-labelled run counter, carried over from the previous file and incremented once.
    static func counter(_ name: String, help: String, previous: [MetricFamily], success: Bool) -> MetricFamily {
        var runs = previous.first { $0.name == name } ?? MetricFamily(name, .counter, help: help)
        runs.help = help
        runs.kind = .counter
        for r in ["success", "failure"] where runs.value(["result": r]) == nil {
            runs.samples.append(MetricFamily.Sample(name: name, labels: ["result": r], value: 0))
        }
        if let i = runs.samples.firstIndex(where: { $0.labels == ["result": success ? "success" : "failure"] }) { runs.samples[i].value += 1 }
        runs.samples.sort { ($0.labels["result"] ?? "") < ($1.labels["result"] ?? "") }
        return runs
    }

    /// Writes the families to `path` atomically (temporary file in the same folder, then rename), as
    /// node_exporter's textfile collector requires; counters are carried over from the file replaced.
    /// `epoch` nil: no epoch ran (the previous file's epoch figures stand); `validator`: a validator run's.
    public static func write(epoch dir: String?, exitStatus: Int?, validator: ValidatorRun? = nil, to path: String,
                             now: Double = Date().timeIntervalSince1970) throws {
        var previous: [MetricFamily] = []
        if FileManager.default.fileExists(atPath: path) {
            do {
                previous = try Prometheus.parse(String(decoding: try readFile(path, limit: 16 << 20), as: UTF8.self), name: path)
            } catch let e as DistilError {
                Log.warn("\(e.message): its counters start again from 0")
            }
        }
        var families: [MetricFamily]
        if let dir {
            families = try collect(epoch: dir, exitStatus: exitStatus, previous: previous, now: now)
        } else {
            families = previous.filter { f in epochPrefixes.contains { f.name.hasPrefix($0) } }
        }
        if let validator { families += validatorFamilies(validator, previous: previous, now: now) }
        try writeFileAtomically(path, Array(Prometheus.render(families).utf8))
    }
}

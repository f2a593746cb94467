import DistilFormats
import DistilScore
import Foundation

/// Everything one epoch's report is drawn from, read with the project's own record types (the
/// judge's verdict and state, dl-check's verdicts, dl-kl's records, dl-prompts' prompts).
public struct ReportInput {
    /// The epoch's verdict (required: the report is of a judged epoch).
    public var verdict: Verdict
    /// Every model's pre-check verdict (all of them, ok or not).
    public var checks: [CheckVerdict]
    /// The integrity re-check of the scored models, when that stage ran.
    public var recheck: [CheckVerdict]
    /// dl-kl's per-prompt records of every scored model (percentiles and top-1 agreement come from
    /// these; the verdict holds only means and standard deviations).
    public var records: [KLRecord]
    /// The epoch's prompts (source and text), when at hand.
    public var prompts: [PromptRecord]
    /// The judge's state after this epoch.
    public var state: JudgeState?
    /// The verdicts of this epoch and the earlier ones in the same working directory, by block: the
    /// crown's history epoch by epoch (the state alone keeps only each model's last epoch).
    public var history: [Verdict]
    /// The files read, shown at the foot of the page.
    public var sources: [String]

    public init(verdict: Verdict, checks: [CheckVerdict] = [], recheck: [CheckVerdict] = [], records: [KLRecord] = [],
                prompts: [PromptRecord] = [], state: JudgeState? = nil, history: [Verdict] = [], sources: [String] = []) {
        self.verdict = verdict; self.checks = checks; self.recheck = recheck; self.records = records
        self.prompts = prompts; self.state = state; self.history = history; self.sources = sources
    }

    /// Reads an epoch folder as `pipelines/epoch.sh` leaves it (docs/FORMATS.md, "Pipeline working
    /// directory"): verdict.json is required; checks, re-check, KL records, prompts and state are
    /// read when present; the sibling epoch-N folders' verdicts up to this block make the history.
    public static func load(epoch dir: String) throws -> ReportInput {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DistilError.input(dir, "no such epoch folder")
        }
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        func present(_ name: String) -> String? { fm.fileExists(atPath: path(name)) ? path(name) : nil }
        guard let verdictPath = present("verdict.json") else {
            throw DistilError.input(dir, "has no verdict.json: the epoch was not judged (yet)")
        }
        let kls = ((try? fm.contentsOfDirectory(atPath: path("kl"))) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
            .map { path("kl/" + $0) }
        return try load(verdict: verdictPath, checks: present("checks.jsonl"), recheck: present("recheck.jsonl"), kl: kls,
                        prompts: present("prompts.jsonl"), state: present("state.json"),
                        historyRoot: (dir as NSString).deletingLastPathComponent)
    }

    /// Reads the inputs named one by one. `historyRoot`: a working directory whose epoch-N/verdict.json
    /// files (up to this verdict's block) give the crown's history.
    public static func load(verdict: String, checks: String?, recheck: String?, kl: [String], prompts: String?,
                            state: String?, historyRoot: String? = nil) throws -> ReportInput {
        let v = try decodeJSONFile(Verdict.self, path: verdict)
        var input = ReportInput(verdict: v, sources: [verdict])
        if let checks { input.checks = try JudgeIO.readChecks(checks); input.sources.append(checks) }
        if let recheck { input.recheck = try JudgeIO.readChecks(recheck); input.sources.append(recheck) }
        if !kl.isEmpty { input.records = try JudgeIO.readKL(kl).map(\.record); input.sources += kl }
        if let prompts { input.prompts = try JSONLReader<PromptRecord>(path: prompts).readAll(); input.sources.append(prompts) }
        if let state {
            guard FileManager.default.fileExists(atPath: state) else { throw DistilError.input(state, "no such file") }
            input.state = try JudgeIO.readState(state); input.sources.append(state)
        }
        input.history = try historyVerdicts(root: historyRoot, upTo: v)
        return input
    }

    /// epoch-N/verdict.json under `root` for every N up to the verdict's block, then the verdict itself.
    static func historyVerdicts(root: String?, upTo v: Verdict) throws -> [Verdict] {
        guard let root, let block = v.block else { return [v] }
        var out: [Verdict] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            guard name.hasPrefix("epoch-"), let n = Int(name.dropFirst(6)), n < block else { continue }
            let p = (root as NSString).appendingPathComponent(name + "/verdict.json")
            guard FileManager.default.fileExists(atPath: p) else { continue }
            out.append(try decodeJSONFile(Verdict.self, path: p))
        }
        return out.sorted { ($0.block ?? 0) < ($1.block ?? 0) } + [v]
    }
}

import DistilFormats
import Foundation

/// dl-judge's subcommands as one call each: read the files, decide, write atomically.
public enum JudgeRun {
    /// Judges the KL records in `kl` (none or "-": stdin) against the checks (and the re-check, if
    /// any) and the state at `state`; writes the verdict to `out` (nil: stdout) and, unless
    /// `updateState` is false, the new state over `state`. Returns the verdict (for the summary).
    public static func judge(checks: String, recheck: String?, state: String?, kl: [String], options: JudgeOptions,
                             out: String?, updateState: Bool) throws -> Verdict {
        let checked = try JudgeIO.readChecks(checks)
        let (records, failures) = try JudgeIO.readKLLines(kl)
        let before = try JudgeIO.readState(state)
        let rechecked = try recheck.map { try JudgeIO.readChecks($0) }
        Log.debug("\(checked.count) checks, \(records.count) KL records, \(failures.count) scoring failures, \(rechecked.map { "\($0.count) re-checks" } ?? "no re-check"), "
            + "king before: \(before.king.map { "uid \($0.uid) \($0.repo)" } ?? "none")")
        let (verdict, after) = try Judge.judge(checks: checked, records: records, failures: failures, state: before,
                                              recheck: rechecked, options: options)
        if let b = options.block, let tb = verdict.teacher?.block, b != tb {
            Log.warn("--block \(b) differs from the teacher stream's block \(tb)")
        }
        // The verdict and the new state commit together or not at all: both are written and synced
        // before either is renamed into place, so a full disk (or any write error) places neither.
        // The verdict is renamed first: a process killed between the two renames leaves the state
        // as before, and judging again gives the same verdict and then the state.
        let verdictFile = try FileWriter(path: out)
        let stateFile = try state.flatMap { updateState ? try FileWriter(path: $0) : nil }
        try verdictFile.write(try JudgeIO.encode(verdict))
        try stateFile?.write(try JudgeIO.encode(after))
        try verdictFile.sync()
        try stateFile?.sync()
        try verdictFile.close()
        try stateFile?.close()
        return verdict
    }

    /// `dl-judge plan`: the check verdicts of the models to score, as JSON lines to stdout.
    public static func plan(checks: String, state: String?, options: JudgeOptions = JudgeOptions()) throws {
        let before = try JudgeIO.readState(state)
        try Judge.samePolicy(before, options)
        let plan = Judge.plan(checks: try JudgeIO.readChecks(checks), state: before)
        let w = JSONLWriter(try FileWriter(path: nil))
        for c in plan { try w.write(c) }
        try w.close()
        if plan.isEmpty {
            Log.info("no new challenger: nothing to score this epoch")
        } else {
            Log.info("\(plan.count) model\(plan.count == 1 ? "" : "s") to score: uids \(plan.map { String($0.uid) }.joined(separator: ", "))")
        }
    }

    /// `dl-judge show`: the state as a table, or its canonical JSON.
    public static func show(state: String, json: Bool) throws {
        guard FileManager.default.fileExists(atPath: state) else { throw DistilError.input(state, "no such file") }
        let s = try JudgeIO.readState(state)
        let w = try FileWriter(path: nil)
        try w.write(json ? try JudgeIO.encode(s) : Array(JudgeIO.describe(s).utf8))
        try w.close()
    }
}

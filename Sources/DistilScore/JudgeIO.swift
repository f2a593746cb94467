import DistilFormats
import Foundation

/// Reading the judge's inputs and rendering its outputs for people.
public enum JudgeIO {
    /// Check verdicts (JSON lines, "-" = stdin).
    public static func readChecks(_ path: String) throws -> [CheckVerdict] {
        try JSONLReader<CheckVerdict>(path: path).readAll()
    }

    /// KL records from every file in order ("-" or no paths = stdin), each with its file:line (a
    /// scoring-failure line is not one: see `readKLLines`).
    public static func readKL(_ paths: [String]) throws -> [SourcedKL] { try readKLLines(paths).records }

    /// dl-kl's output lines from every file in order ("-" or no paths = stdin): the KL records and
    /// the scoring failures, each with its file:line.
    public static func readKLLines(_ paths: [String]) throws -> (records: [SourcedKL], failures: [SourcedFailure]) {
        var records: [SourcedKL] = [], failures: [SourcedFailure] = []
        for p in paths.isEmpty ? ["-"] : paths {
            let r = try JSONLReader<KLLine>(path: p)
            while let line = try r.next() {
                let place = "\(r.name):\(r.lineNumber)"
                switch line {
                case .record(let rec): records.append(SourcedKL(rec, place: place))
                case .failure(let f): failures.append(SourcedFailure(f, place: place))
                }
            }
        }
        return (records, failures)
    }

    /// The state at `path`; a missing file (first epoch) is the empty state.
    public static func readState(_ path: String?) throws -> JudgeState {
        guard let path, FileManager.default.fileExists(atPath: path) else { return JudgeState() }
        return try decodeJSONFile(JudgeState.self, path: path)
    }

    /// Canonical bytes of a verdict or state: sorted keys, pretty-printed, "\n" at the end.
    public static func encode<T: Encodable>(_ v: T) throws -> [UInt8] {
        try encodeJSON(v, pretty: true) + [0x0A]
    }

    /// The short table dl-judge prints on stderr.
    public static func summary(_ v: Verdict) -> String {
        var lines: [String] = []
        let header = row("uid", "model", "mean KL ± 95% CI", "n", "verdict")
        lines.append(header)
        for m in v.models {
            let s = m.score
            let ci = String(format: "%.6f ± %.6f", s.mean_kl, (s.ci_high - s.ci_low) / 2)
            var what = m.outcome.rawValue.replacingOccurrences(of: "_", with: " ")
            if let c = m.vs_king, let rel = c.relative {
                what += String(format: " (%+.2f%% vs king", rel * 100)
                if let p = c.p_value { what += String(format: ", p=%.3g", p) }
                what += ")"
            }
            if !m.flags.isEmpty { what += " [" + m.flags.joined(separator: ",") + "]" }
            lines.append(row(String(m.uid), m.repo, ci, String(s.n_prompts), what))
        }
        for u in v.unscored ?? [] {
            lines.append(row(String(u.uid), u.repo, "-", "0", "\(u.outcome.rawValue.replacingOccurrences(of: "_", with: " ")) "
                + "[\(u.reason.rawValue): not scored, \(u.fault == .miner ? "the checkpoint's fault" : "ours or transient")]"))
        }
        if v.models.isEmpty && (v.unscored ?? []).isEmpty { lines.append("(no KL records this epoch)") }
        let w = v.winner.map { u in "uid \(u)" + (v.king_after.map { " (\($0.repo))" } ?? "") + " gets weight 1.0" } ?? "nobody gets weight"
        lines.append("winner: \(w)")
        lines.append(v.reason)
        return lines.joined(separator: "\n") + "\n"
    }

    static func row(_ uid: String, _ model: String, _ kl: String, _ n: String, _ verdict: String) -> String {
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let n = s.count
            if n >= w { return s }
            return left ? String(repeating: " ", count: w - n) + s : s + String(repeating: " ", count: w - n)
        }
        return "\(pad(uid, 5, left: true))  \(pad(model, 32))  \(pad(kl, 22))  \(pad(n, 4, left: true))  \(verdict)"
    }

    /// A human view of the state (dl-judge show).
    public static func describe(_ s: JudgeState) -> String {
        var out = "state version \(s.version)\n"
        if let k = s.king {
            out += "king: uid \(k.uid) \(k.repo)@\(k.commit ?? k.revision ?? "-") (hotkey \(k.hotkey), committed at block \(k.block)"
            out += k.crowned_block.map { ", crowned at block \($0))\n" } ?? ")\n"
        } else {
            out += "king: none\n"
        }
        out += "\(s.models.count) scored model\(s.models.count == 1 ? "" : "s"):\n"
        out += row("uid", "model", "mean KL ± 95% CI", "n", "outcome (scored at block)") + "\n"
        for m in s.models {
            let ci = String(format: "%.6f ± %.6f", m.score.mean_kl, (m.score.ci_high - m.score.ci_low) / 2)
            var what = m.outcome.rawValue + (m.scored_block.map { " (\($0))" } ?? "")
            if !m.flags.isEmpty { what += " [" + m.flags.joined(separator: ",") + "]" }
            out += row(String(m.uid), m.repo, ci, String(m.score.n_prompts), what) + "\n"
        }
        return out
    }
}

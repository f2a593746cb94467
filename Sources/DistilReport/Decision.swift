import DistilFormats
import DistilScore

/// The judge's decision about one model, in one line (pipelines/miner-check.sh prints it): whether it
/// would take the crown, by how much relative to the king, and how sure the paired test is.
public enum Decision {
    /// (takes the crown, the line). Throws when the verdict did not score `uid`.
    public static func describe(_ v: Verdict, uid: Int) throws -> (takes: Bool, line: String) {
        guard let m = v.models.first(where: { $0.uid == uid }) else {
            throw DistilError("uid \(uid) was not scored in this verdict (scored: \(v.models.map { String($0.uid) }.joined(separator: ", ")))")
        }
        let takes = v.winner == uid && m.outcome == .newKing
        // Under the default policy the rule is the epsilon margin; under a policy file (a paired test, say)
        // the judge's own reason says what was missing.
        let need = v.policy_sha256 == nil
            ? "more than \(Markup.percent(v.epsilon, digits: 0)) below the king's mean KL is needed" : v.reason
        var by = ""
        if let c = m.vs_king, let rel = c.relative {
            let king = v.models.first { $0.uid != uid && ($0.outcome == .king || $0.outcome == .dethroned) }?.score.mean_kl
            by = (rel < 0 ? "\(Markup.percent(-rel)) below" : rel > 0 ? "\(Markup.percent(rel)) above" : "0.00%, level with") + " the king's mean KL"
                + (king.map { " (\(Markup.num(m.score.mean_kl)) vs \(Markup.num($0)))" } ?? "") + ", p = \(Markup.p(c.p_value))"
        }
        let plain = { (s: String) in s.replacingOccurrences(of: "−", with: "-") }
        if takes {
            return (true, plain(by.isEmpty ? "would take the crown: mean KL \(Markup.num(m.score.mean_kl)) (no king to beat)" : "would take the crown, by \(by)"))
        }
        if !m.flags.isEmpty {
            let words = m.flags.map(Renderer.flagWords).joined(separator: "; ")
            return (false, plain("would not take the crown: flagged \(m.flags.joined(separator: ",")) (\(words))" + (by.isEmpty ? "" : "; \(by)")))
        }
        if m.outcome == .pending { return (false, "would not be judged this epoch: " + v.reason) }
        return (false, plain(by.isEmpty ? "would not take the crown: \(v.reason)" : "would not take the crown, by \(by); \(need)"))
    }
}

import DistilFormats
import DistilScore
import Foundation

/// One epoch as a self-contained HTML page: inline CSS and SVG, nothing fetched (a Content-Security-
/// Policy forbids it), no script (the per-prompt table's orderings are pre-rendered and chosen by
/// `:target`), light and dark schemes, a print style. The markup is XHTML-compatible, so a strict
/// XML parser reads it (the tests do). Every number on the page is computed from the inputs.
public enum EpochReport {
    public static func render(_ input: ReportInput) -> String {
        let r = Renderer(input)
        return r.page()
    }
}

/// A scored model with what the page needs of it.
struct Row {
    var verdict: ModelVerdict
    var records: [String: KLRecord]
    var isKingBefore: Bool
    var holdsCrown: Bool
    var uid: Int { verdict.uid }
    var label: String { "uid \(verdict.uid) · \(Renderer.short(verdict.repo))" }
}

struct Renderer {
    let input: ReportInput
    let v: Verdict
    /// Scored models, lowest mean KL first.
    let rows: [Row]
    let king: Row?
    let promptByID: [String: PromptRecord]

    init(_ input: ReportInput) {
        self.input = input
        v = input.verdict
        let v = input.verdict
        var byUID: [Int: [String: KLRecord]] = [:]
        for r in input.records {
            let uid = r.uid ?? v.models.first { $0.repo == r.model }?.uid
            if let uid { byUID[uid, default: [:]][r.prompt_id] = r }
        }
        let kb = v.king_before
        rows = v.models.map { m in
            let wasKing = kb.map { $0.hotkey == (m.hotkey ?? "") && $0.repo == m.repo && ($0.commit ?? $0.revision) == (m.commit ?? m.revision) } ?? false
            return Row(verdict: m, records: byUID[m.uid] ?? [:], isKingBefore: wasKing, holdsCrown: m.uid == v.winner)
        }.sorted { ($0.verdict.score.mean_kl, $0.uid) < ($1.verdict.score.mean_kl, $1.uid) }
        king = rows.first { $0.isKingBefore }
        var p: [String: PromptRecord] = [:]
        for x in input.prompts { p[x.id] = x }
        promptByID = p
    }

    /// A dictionary keeping the first of repeated keys: the judge never writes a uid or a prompt twice,
    /// but a verdict edited by hand must not crash the page.
    func firstByKey<K: Hashable, V>(_ pairs: [(K, V)]) -> [K: V] { Dictionary(pairs, uniquingKeysWith: { a, _ in a }) }

    static func short(_ repo: String, max: Int = 30) -> String {
        repo.count <= max ? repo : "…" + String(repo.suffix(max - 1))
    }

    // MARK: page

    func page() -> String {
        let block = v.block.map(String.init) ?? "?"
        var h = """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
        <head>
        <meta charset="utf-8"/>
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="color-scheme" content="light dark"/>
        <meta name="referrer" content="no-referrer"/>
        <title>distil — epoch at block \(Markup.esc(block))</title>
        <style>\(Self.css)</style>
        </head>
        <body>

        """
        h += header()
        h += section("leaderboard", "Leaderboard", leaderboard())
        h += section("pairs", "King against each challenger, prompt by prompt", pairs())
        h += section("distribution", "Distribution", distribution())
        h += section("prompts", "Per prompt", promptTable())
        h += section("history", "History of the crown", history())
        h += section("checks", "Pre-checks", checks())
        h += footer()
        h += "</body>\n</html>\n"
        return h
    }

    func section(_ id: String, _ title: String, _ body: String) -> String {
        "<section id=\"\(id)\">\n<h2>\(Markup.esc(title))</h2>\n\(body)</section>\n"
    }

    func header() -> String {
        var h = "<header>\n<h1>Epoch at block \(Markup.esc(v.block.map(String.init) ?? "?"))</h1>\n"
        if let t = v.teacher {
            h += "<p class=\"meta\">teacher <code>\(Markup.esc(t.repo))</code>"
            if let rev = t.revision { h += " at <code>\(Markup.esc(rev))</code>" }
            if let hash = t.block_hash { h += " · block hash <code>\(Markup.esc(String(hash.prefix(16))))…</code>" }
            h += " · \(v.prompts.count) prompt\(v.prompts.count == 1 ? "" : "s") scored"
            if !v.dropped_prompts.isEmpty { h += ", \(v.dropped_prompts.count) dropped (empty continuation)" }
            h += " · ε = \(Markup.percent(v.epsilon, digits: 2))</p>\n"
        }
        h += "<p class=\"verdict\"><strong>\(Markup.esc(outcomeSentence()))</strong></p>\n"
        h += "<p class=\"reason\">The judge's reason: <q>\(Markup.esc(v.reason))</q></p>\n"
        h += "<nav><a href=\"#leaderboard\">leaderboard</a> · <a href=\"#pairs\">king vs challengers</a> · "
            + "<a href=\"#distribution\">distribution</a> · <a href=\"#prompts\">per prompt</a> · "
            + "<a href=\"#history\">history</a> · <a href=\"#checks\">pre-checks</a></nav>\n</header>\n"
        return h
    }

    /// The verdict in words, from its numbers.
    func outcomeSentence() -> String {
        guard let w = v.winner else { return "Nobody gets weight this epoch." }
        let who = v.king_after.map { "uid \(w) (\($0.repo))" } ?? "uid \(w)"
        guard let wr = rows.first(where: { $0.uid == w }) else {
            return "\(who) keeps the crown and gets weight 1.0; no model was scored this epoch."
        }
        let mean = wr.verdict.score.mean_kl
        if wr.isKingBefore {
            if let best = rows.first(where: { !$0.isKingBefore && $0.verdict.eligible }), let vk = best.verdict.vs_king, let rel = vk.relative {
                return "\(who) keeps the crown with mean KL \(Markup.num(mean)): the best challenger, uid \(best.uid), is "
                    + "\(relWords(rel)) the king's (p = \(Markup.p(vk.p_value))), not the \(Markup.percent(v.epsilon, digits: 0)) below it a challenger needs."
            }
            return "\(who) keeps the crown with mean KL \(Markup.num(mean))."
        }
        if let vk = wr.verdict.vs_king, let rel = vk.relative {
            return "\(who) takes the crown: its mean KL \(Markup.num(mean)) is \(relWords(rel)) the king's "
                + "(paired over \(vk.n) prompts, p = \(Markup.p(vk.p_value))); a challenger needs more than \(Markup.percent(v.epsilon, digits: 0)) below."
        }
        return "\(who) gets the crown with the lowest mean KL, \(Markup.num(mean)) (no king to beat)."
    }

    func relWords(_ rel: Double) -> String {
        rel < 0 ? "\(Markup.percent(-rel)) below" : rel > 0 ? "\(Markup.percent(rel)) above" : "equal to"
    }

    func footer() -> String {
        var h = "<footer>\n<p>Made by <code>dl-judge report</code> (\(Markup.esc(v.tool))) from:</p>\n<ul>\n"
        for s in input.sources { h += "<li><code>\(Markup.esc(s))</code></li>\n" }
        return h + "</ul>\n</footer>\n"
    }

    // MARK: leaderboard

    func leaderboard() -> String {
        guard !rows.isEmpty else {
            return "<p>No model was scored this epoch (no new challenger): no teacher or student compute was spent.</p>\n"
        }
        let left = 250.0, right = 860.0, top = 40.0, rowH = 34.0
        let height = top + rowH * Double(rows.count) + 50
        let kingMean = king?.verdict.score.mean_kl
        let bar = kingMean.map { (1 - v.epsilon) * $0 }
        let xs = rows.flatMap { [$0.verdict.score.ci_low, $0.verdict.score.ci_high, $0.verdict.score.mean_kl] } + [kingMean, bar].compactMap { $0 }
        let sx = Scale.linear(xs, from: left, to: right)
        let bottom = top + rowH * Double(rows.count)
        var desc = rows.map { "uid \($0.uid): mean KL \(Markup.num($0.verdict.score.mean_kl)), 95% CI \(Markup.num($0.verdict.score.ci_low)) to \(Markup.num($0.verdict.score.ci_high))" }.joined(separator: "; ")
        if let kingMean, let bar { desc += ". King's mean \(Markup.num(kingMean)); dethrone threshold \(Markup.num(bar))." }
        var f = Figure(width: 900, height: height, title: "Mean KL per model with 95% confidence intervals (lower is better)", desc: desc)
        f.xAxis(sx, y: bottom + 6, top: top - 10, label: "mean KL(teacher ‖ student) over prompts, nats")
        if let kingMean, let bar {
            f.line(sx(kingMean), top - 14, sx(kingMean), bottom, "ref king-line")
            f.line(sx(bar), top - 26, sx(bar), bottom, "ref threshold")
            f.text(sx(kingMean) + 4, top - 16, "king's mean \(Markup.num(kingMean))", "ref-label")
            f.text(sx(bar) - 4, top - 28, "dethrone threshold (1 − \(Markup.num(v.epsilon))) × king = \(Markup.num(bar))", "ref-label", anchor: "end")
        }
        var labels: [(String, Double)] = []
        for (i, r) in rows.enumerated() {
            let y = top + rowH * (Double(i) + 0.5)
            let s = r.verdict.score
            let cls = r.isKingBefore ? "m-king" : (r.verdict.eligible ? "m-chal" : "m-out")
            labels.append((r.label, y))
            f.line(sx(s.ci_low), y, sx(s.ci_high), y, "whisker \(cls)")
            f.line(sx(s.ci_low), y - 6, sx(s.ci_low), y + 6, "whisker \(cls)")
            f.line(sx(s.ci_high), y - 6, sx(s.ci_high), y + 6, "whisker \(cls)")
            f.dot(sx(s.mean_kl), y, 6, "mark \(cls)", tip: "uid \(r.uid): \(Markup.num(s.mean_kl)) [\(Markup.num(s.ci_low)), \(Markup.num(s.ci_high))]")
            var tag = r.isKingBefore ? "king" : ""
            if r.holdsCrown && !r.isKingBefore { tag = "new king" }
            if r.isKingBefore && !r.holdsCrown { tag = "dethroned king" }
            if !r.verdict.eligible { tag = "no weight: " + r.verdict.flags.joined(separator: ", ") }
            if !tag.isEmpty { f.text(sx(s.ci_high) + 10, y + 4, tag, "tag \(r.holdsCrown ? "crown" : "")") }
        }
        f.categoryAxis(labels, x: left, label: "model")
        var h = "<figure>\(f.render(id: "fig-leaderboard"))<figcaption>Dots: mean KL over the \(v.prompts.count) prompts; "
            + "whiskers: its 95% confidence interval (Student t). "
        h += kingMean != nil ? "The solid line is the king's mean; a challenger takes the crown only with a mean left of the dashed line, (1 − ε) × the king's mean.</figcaption></figure>\n"
            : "There was no king before this epoch: the lowest mean wins outright.</figcaption></figure>\n"
        h += "<table class=\"num\">\n<thead><tr><th>uid</th><th>model</th><th>mean KL</th><th>95% CI</th><th>prompts</th><th>vs king</th><th>outcome</th></tr></thead>\n<tbody>\n"
        for r in rows {
            let s = r.verdict.score
            var vs = "—"
            if let c = r.verdict.vs_king, let rel = c.relative { vs = "\(Markup.percent(rel, signed: true)) (p = \(Markup.p(c.p_value)))" }
            var outcome = Self.outcomeWords(r.verdict.outcome)
            if !r.verdict.flags.isEmpty { outcome += " — " + r.verdict.flags.map(Self.flagWords).joined(separator: "; ") }
            h += "<tr class=\"\(r.holdsCrown ? "crown" : "")\"><td>\(r.uid)</td><td class=\"repo\">\(Markup.esc(r.verdict.repo))</td><td>\(Markup.num(s.mean_kl))</td>"
                + "<td>[\(Markup.num(s.ci_low)), \(Markup.num(s.ci_high))]</td><td>\(s.n_prompts)</td><td>\(vs)</td><td class=\"text\">\(Markup.esc(outcome))</td></tr>\n"
        }
        return h + "</tbody>\n</table>\n"
    }

    // MARK: king vs challenger

    func pairs() -> String {
        guard let king else {
            return rows.isEmpty ? "<p>No model was scored this epoch.</p>\n"
                : "<p>There was no king before this epoch, so there is no pairing: the lowest mean won outright.</p>\n"
        }
        let challengers = rows.filter { !$0.isKingBefore && $0.verdict.vs_king != nil }
        guard !challengers.isEmpty else { return "<p>The king was scored alone this epoch.</p>\n" }
        var h = ""
        let kingKL = firstByKey(king.verdict.per_prompt.map { ($0.prompt_id, $0.kl_mean) })
        for c in challengers {
            let vk = c.verdict.vs_king!
            let diffs: [(String, Double)] = c.verdict.per_prompt.compactMap { p in kingKL[p.prompt_id].map { (p.prompt_id, p.kl_mean - $0) } }
            let need = -v.epsilon * king.verdict.score.mean_kl
            let left = 70.0, right = 880.0, top = 20.0, bottom = 250.0
            let sy = Scale.linear(diffs.map(\.1) + [vk.ci_low, vk.ci_high, need], from: bottom, to: top)
            let step = (right - left) / Double(max(diffs.count, 1))
            let title = "uid \(c.uid) minus the king (uid \(king.uid)), KL per prompt: mean difference \(Markup.num(vk.mean_diff)), "
                + "95% CI [\(Markup.num(vk.ci_low)), \(Markup.num(vk.ci_high))], one-sided paired t-test p = \(Markup.p(vk.p_value))"
            let better = diffs.filter { $0.1 < 0 }.count
            var f = Figure(width: 900, height: 300, title: title,
                           desc: "Lower on \(better) of \(diffs.count) prompts. " + diffs.map { "\($0.0): \(Markup.num($0.1))" }.joined(separator: "; "))
            f.yAxis(sy, x: left, right: right, label: "KL difference, nats")
            f.rect(left, sy(vk.ci_high), right - left, sy(vk.ci_low) - sy(vk.ci_high), "ci-band",
                   tip: "95% CI of the mean difference [\(Markup.num(vk.ci_low)), \(Markup.num(vk.ci_high))]")
            f.line(left, sy(0), right, sy(0), "zero")
            f.line(left, sy(vk.mean_diff), right, sy(vk.mean_diff), "ref mean-line")
            f.line(left, sy(need), right, sy(need), "ref threshold")
            f.text(right - 4, sy(need) - 4, "needed: −ε × king's mean = \(Markup.num(need))", "ref-label", anchor: "end")
            f.text(left + 4, sy(vk.mean_diff) - 4, "mean \(Markup.num(vk.mean_diff))", "ref-label")
            for (i, d) in diffs.enumerated() {
                let x = left + step * (Double(i) + 0.5)
                f.line(x, sy(0), x, sy(d.1), "stem \(d.1 < 0 ? "good" : "bad")")
                f.dot(x, sy(d.1), 4, "mark \(d.1 < 0 ? "good" : "bad")", tip: "\(d.0): \(Markup.num(d.1))")
            }
            f.text((left + right) / 2, bottom + 30, "prompts, by id (\(diffs.first?.0 ?? "") … \(diffs.last?.0 ?? ""))", "axis-label x-label", anchor: "middle")
            h += "<figure>\(f.render(id: Markup.id("fig-pair", String(c.uid))))<figcaption>uid \(c.uid) (\(Markup.esc(c.verdict.repo))) against the king, "
                + "prompt by prompt: below zero the challenger is closer to the teacher. It is lower on \(better) of \(diffs.count) prompts; "
                + "mean difference \(Markup.num(vk.mean_diff)) nats (\(vk.relative.map { Markup.percent($0, signed: true) } ?? "n/a") relative), "
                + "95% CI [\(Markup.num(vk.ci_low)), \(Markup.num(vk.ci_high))], t = \(Markup.num(vk.t, digits: 3)) with \(max(vk.n - 1, 0)) degrees of freedom, "
                + "one-sided p = \(Markup.p(vk.p_value)).</figcaption></figure>\n"
        }
        return h
    }

    // MARK: distribution

    func distribution() -> String {
        guard !rows.isEmpty else { return "<p>No model was scored this epoch.</p>\n" }
        var h = ""
        // Per-prompt spread.
        let left = 250.0, right = 860.0, top = 20.0, rowH = 46.0
        let bottom = top + rowH * Double(rows.count)
        let all = rows.flatMap { $0.verdict.per_prompt.map(\.kl_mean) }
        let sx = Scale.linear(all, from: left, to: right)
        var f = Figure(width: 900, height: bottom + 50, title: "Spread of the per-prompt mean KL for each model",
                       desc: rows.map { r in
                           let s = r.verdict.per_prompt.map(\.kl_mean).sorted()
                           return "uid \(r.uid): min \(Markup.num(s.first ?? .nan)), median \(Markup.num(quantile(s, 0.5))), max \(Markup.num(s.last ?? .nan))"
                       }.joined(separator: "; "))
        f.xAxis(sx, y: bottom + 6, top: top, label: "per-prompt mean KL, nats")
        var labels: [(String, Double)] = []
        for (i, r) in rows.enumerated() {
            let y = top + rowH * (Double(i) + 0.5)
            labels.append((r.label, y))
            let s = r.verdict.per_prompt.map(\.kl_mean).sorted()
            guard !s.isEmpty else { continue }
            let q1 = quantile(s, 0.25), q2 = quantile(s, 0.5), q3 = quantile(s, 0.75)
            let cls = r.isKingBefore ? "m-king" : "m-chal"
            f.line(sx(s.first!), y, sx(s.last!), y, "whisker \(cls)")
            f.rect(sx(q1), y - 10, sx(q3) - sx(q1), 20, "box \(cls)", tip: "uid \(r.uid): quartiles \(Markup.num(q1)), \(Markup.num(q2)), \(Markup.num(q3))")
            f.line(sx(q2), y - 10, sx(q2), y + 10, "median")
            for (j, p) in r.verdict.per_prompt.enumerated() {
                // A fixed vertical offset per prompt, so dots of equal value stay visible and the page is deterministic.
                let jitter = Double((j * 7) % 9 - 4) * 3
                f.dot(sx(p.kl_mean), y + jitter, 2.5, "mark small \(cls)", tip: "\(p.prompt_id): \(Markup.num(p.kl_mean))")
            }
        }
        f.categoryAxis(labels, x: left, label: "model")
        h += "<figure>\(f.render(id: "fig-spread"))<figcaption>Each dot is one prompt's mean KL; the box spans the middle half of the prompts, its bar is the median, the line runs from the lowest to the highest.</figcaption></figure>\n"

        // Per-position percentiles (from the KL records).
        let stats: [(String, KeyPath<KLRecord, Double?>)] = [("p50", \.kl_p50), ("p90", \.kl_p90), ("p99", \.kl_p99), ("max", \.kl_max)]
        let withRecords = rows.filter { !$0.records.isEmpty }
        if withRecords.isEmpty {
            h += "<p>The KL records were not given: the per-position percentiles and top-1 agreement are not shown.</p>\n"
            return h
        }
        struct P { var median: Double; var worst: Double }
        func summary(_ r: Row, _ k: KeyPath<KLRecord, Double?>) -> P? {
            let xs = v.prompts.compactMap { r.records[$0]?[keyPath: k] }.sorted()
            guard !xs.isEmpty else { return nil }
            return P(median: quantile(xs, 0.5), worst: xs.last!)
        }
        let values = withRecords.flatMap { r in stats.compactMap { summary(r, $0.1)?.median } }
        let useLog = (values.filter { $0 > 0 }.min().map { (values.max() ?? 0) / $0 > 50 } ?? false)
        let rowH2 = 60.0, bottom2 = top + rowH2 * Double(withRecords.count)
        let sx2 = useLog ? Scale.logarithmic(values, from: left, to: right) : Scale.linear(values, from: left, to: right)
        var g = Figure(width: 900, height: bottom2 + 50, title: "Per-position KL percentiles, median over prompts",
                       desc: withRecords.map { r in "uid \(r.uid): " + stats.map { s in "\(s.0) \(summary(r, s.1).map { Markup.num($0.median) } ?? "n/a")" }.joined(separator: ", ") }.joined(separator: "; "))
        g.xAxis(sx2, y: bottom2 + 6, top: top, label: "KL at one position, nats\(useLog ? " (log scale)" : "")")
        var labels2: [(String, Double)] = []
        for (i, r) in withRecords.enumerated() {
            let y = top + rowH2 * (Double(i) + 0.5)
            labels2.append((r.label, y))
            let pts = stats.compactMap { s in summary(r, s.1).map { (s.0, $0.median) } }
            g.path(pts.map { (sx2($0.1), y) }, "spine")
            for (j, p) in pts.enumerated() {
                g.dot(sx2(p.1), y, 5, "mark q\(j) \(r.isKingBefore ? "m-king" : "m-chal")", tip: "uid \(r.uid) \(p.0): \(Markup.num(p.1))")
                g.text(sx2(p.1), y - 10 - Double(j % 2) * 10, p.0, "tick", anchor: "middle")
            }
        }
        g.categoryAxis(labels2, x: left, label: "model")
        h += "<figure>\(g.render(id: "fig-percentiles"))<figcaption>dl-kl records, per prompt, the percentiles of KL over the continuation's positions; "
            + "shown is each percentile's median over the prompts (max: the median of each prompt's largest).</figcaption></figure>\n"
        h += "<table class=\"num\">\n<thead><tr><th>uid</th><th>model</th>" + stats.map { "<th>\($0.0) (median · worst prompt)</th>" }.joined()
            + "<th>top-1 agreement</th></tr></thead>\n<tbody>\n"
        for r in withRecords {
            h += "<tr><td>\(r.uid)</td><td class=\"repo\">\(Markup.esc(r.verdict.repo))</td>"
            for s in stats { h += "<td>" + (summary(r, s.1).map { "\(Markup.num($0.median)) · \(Markup.num($0.worst))" } ?? "n/a") + "</td>" }
            h += "<td>\(top1(r).map { Markup.percent($0, digits: 1) } ?? "n/a")</td></tr>\n"
        }
        h += "</tbody>\n</table>\n"

        // Top-1 agreement.
        let rowH3 = 30.0, bottom3 = top + rowH3 * Double(withRecords.count)
        let sx3 = Scale(lo: 0, hi: 1, from: left, to: right)
        var t = Figure(width: 900, height: bottom3 + 50, title: "Top-1 agreement with the teacher, over all scored positions",
                       desc: withRecords.map { "uid \($0.uid): \(top1($0).map { Markup.percent($0, digits: 1) } ?? "n/a")" }.joined(separator: "; "))
        t.xAxis(sx3, y: bottom3 + 6, top: top, label: "positions where the student's most likely token is the teacher's", format: { Markup.percent($0, digits: 0) })
        var labels3: [(String, Double)] = []
        for (i, r) in withRecords.enumerated() {
            let y = top + rowH3 * (Double(i) + 0.5)
            labels3.append((r.label, y))
            if let a = top1(r) {
                t.rect(left, y - 9, sx3(a) - left, 18, "bar \(r.isKingBefore ? "m-king" : "m-chal")", tip: "uid \(r.uid): \(Markup.percent(a, digits: 1))")
                t.text(sx3(a) + 6, y + 4, Markup.percent(a, digits: 1), "tick")
            }
        }
        t.categoryAxis(labels3, x: left, label: "model")
        h += "<figure>\(t.render(id: "fig-top1"))<figcaption>Top-1 agreement: the share of all scored positions (every prompt's, weighted by its length) where the student's most likely next token is the teacher's.</figcaption></figure>\n"
        return h
    }

    /// Token-weighted top-1 agreement over the scored prompts.
    func top1(_ r: Row) -> Double? {
        var agree = 0.0, n = 0
        for p in v.prompts {
            guard let rec = r.records[p], let a = rec.top1_agree else { continue }
            agree += a * Double(rec.n_tokens); n += rec.n_tokens
        }
        return n > 0 ? agree / Double(n) : nil
    }

    // MARK: per-prompt table

    func promptTable() -> String {
        let ids = v.prompts + v.dropped_prompts
        guard !ids.isEmpty, !rows.isEmpty else { return "<p>No prompt was scored this epoch.</p>\n" }
        let byUID = firstByKey(rows.map { ($0.uid, firstByKey($0.verdict.per_prompt.map { ($0.prompt_id, $0) })) })
        func kl(_ uid: Int, _ p: String) -> Double? { byUID[uid]?[p]?.kl_mean ?? rows.first { $0.uid == uid }?.records[p]?.kl_mean }
        // Orderings: by id (the default, drawn last so `:target ~` can hide it), by each model's KL
        // (highest first: the hardest prompts), by each challenger's difference to the king.
        var orderings: [(id: String, label: String, ids: [String])] = []
        for r in rows {
            orderings.append((Markup.id("by-kl", String(r.uid)), "uid \(r.uid)'s KL, highest first",
                              ids.sorted { (kl(r.uid, $0) ?? -1, $1) > (kl(r.uid, $1) ?? -1, $0) }))
        }
        if let king {
            for r in rows where !r.isKingBefore {
                func d(_ p: String) -> Double { (kl(r.uid, p) ?? 0) - (kl(king.uid, p) ?? 0) }
                orderings.append((Markup.id("by-diff", String(r.uid)), "uid \(r.uid) − king, most in the challenger's favour first",
                                  ids.sorted { (d($0), $0) < (d($1), $1) }))
            }
        }
        orderings.append(("by-id", "prompt id", ids))
        var h = "<p class=\"sorts\">Order by: " + orderings.reversed().map { "<a href=\"#\($0.id)\">\(Markup.esc($0.label))</a>" }.joined(separator: " · ")
            + " (each ordering is its own table; the links work without JavaScript).</p>\n<div class=\"orderings\">\n"
        for (i, o) in orderings.enumerated() {
            let isDefault = i == orderings.count - 1
            h += "<div class=\"ordering\(isDefault ? " default" : "")\" id=\"\(o.id)\">\n<table class=\"num prompts\">\n<caption>Per prompt, ordered by \(Markup.esc(o.label))</caption>\n"
            h += "<thead><tr><th><a href=\"#by-id\">prompt</a></th><th>source</th><th>first words</th><th>tokens</th>"
            for r in rows {
                let link = Markup.id("by-kl", String(r.uid))
                h += "<th><a href=\"#\(link)\">uid \(r.uid)\(r.isKingBefore ? " (king)" : "")</a><br/>KL mean ± std</th>"
            }
            if let king {
                for r in rows where !r.isKingBefore { h += "<th><a href=\"#\(Markup.id("by-diff", String(r.uid)))\">uid \(r.uid) − uid \(king.uid)</a></th>" }
            }
            h += "</tr></thead>\n<tbody>\n"
            for p in o.ids {
                let pr = promptByID[p]
                let src = pr?.source.map { "\($0.shard):\($0.row)" + ($0.row_group.map { " (row group \($0))" } ?? "") } ?? "—"
                let dropped = v.dropped_prompts.contains(p)
                let tokens = rows.first?.records[p]?.n_tokens ?? rows.first?.verdict.per_prompt.first { $0.prompt_id == p }?.n_tokens
                h += "<tr\(dropped ? " class=\"dropped\"" : "")><td>\(Markup.esc(p))</td><td class=\"repo\">\(Markup.esc(src))</td>"
                    + "<td class=\"text\">\(Markup.esc(pr.map { Markup.firstWords($0.text) } ?? "—"))</td><td>\(tokens.map(String.init) ?? "—")\(dropped ? " (dropped)" : "")</td>"
                for r in rows {
                    if let rec = r.records[p] {
                        h += "<td>\(Markup.num(rec.kl_mean)) ± \(Markup.num(rec.kl_std))</td>"
                    } else if let s = byUID[r.uid]?[p] {
                        h += "<td>\(Markup.num(s.kl_mean)) ± \(Markup.num(s.kl_std))</td>"
                    } else {
                        h += "<td>—</td>"
                    }
                }
                if let king {
                    for r in rows where !r.isKingBefore {
                        if let a = kl(r.uid, p), let b = kl(king.uid, p), !dropped {
                            h += "<td class=\"\(a < b ? "good" : "bad")\">\(Markup.num(a - b))</td>"
                        } else {
                            h += "<td>—</td>"
                        }
                    }
                }
                h += "</tr>\n"
            }
            h += "</tbody>\n</table>\n</div>\n"
        }
        return h + "</div>\n"
    }

    // MARK: history

    /// One reign: who held the crown, from which epoch block, until which, with which KL.
    struct Reign { var uid: Int; var repo: String; var from: Int?; var until: Int?; var meanKL: Double?; var n: Int? }

    func reigns() -> [Reign] {
        var out: [Reign] = []
        func same(_ a: KingRecord, _ b: KingRecord) -> Bool { a.model.key == b.model.key }
        // Epoch by epoch from the verdicts at hand.
        for e in input.history {
            guard let k = e.king_after else {
                if let last = out.indices.last, out[last].until == nil { out[last].until = e.block }
                continue
            }
            let score = e.models.first { $0.uid == k.uid && $0.repo == k.repo }?.score
            if let last = out.last, let prev = e.king_before, same(prev, k), last.uid == k.uid || last.repo == k.repo {
                if let s = score { out[out.count - 1].meanKL = s.mean_kl; out[out.count - 1].n = s.n_prompts }
                continue
            }
            if let last = out.indices.last, out[last].until == nil { out[last].until = e.block }
            out.append(Reign(uid: k.uid, repo: k.repo, from: k.crowned_block ?? e.block, until: nil, meanKL: score?.mean_kl, n: score?.n_prompts))
        }
        // Crown holders the state remembers that no verdict at hand shows (earlier epochs).
        if let st = input.state {
            for m in st.models where m.outcome == .dethroned || m.outcome == .king {
                if out.contains(where: { $0.repo == m.repo && $0.uid == m.uid }) {
                    if let i = out.firstIndex(where: { $0.repo == m.repo && $0.uid == m.uid }), out[i].meanKL == nil {
                        out[i].meanKL = m.score.mean_kl; out[i].n = m.score.n_prompts
                    }
                    continue
                }
                let isKing = st.king.map { $0.model.key == m.model.key } ?? false
                out.insert(Reign(uid: m.uid, repo: m.repo, from: isKing ? st.king?.crowned_block : nil,
                                 until: isKing ? nil : m.scored_block, meanKL: m.score.mean_kl, n: m.score.n_prompts), at: 0)
            }
        }
        return out
    }

    func history() -> String {
        let rs = reigns()
        guard !rs.isEmpty else { return "<p>No model has held the crown yet.</p>\n" }
        var h = ""
        // The king's mean KL epoch by epoch (from the verdicts at hand).
        var pts: [(block: Int, uid: Int, kl: Double)] = []
        var lastKL: [Int: Double] = [:]
        for e in input.history {
            guard let b = e.block, let k = e.king_after else { continue }
            if let s = e.models.first(where: { $0.uid == k.uid && $0.repo == k.repo })?.score { lastKL[k.uid] = s.mean_kl }
            if let kl = lastKL[k.uid] ?? rs.last(where: { $0.uid == k.uid })?.meanKL { pts.append((b, k.uid, kl)) }
        }
        if !pts.isEmpty {
            let left = 80.0, right = 860.0, top = 30.0, bottom = 230.0
            var sx = Scale.linear(pts.map { Double($0.block) }, from: left + 20, to: right - 20, includeZero: false)
            if pts.count == 1 { sx = Scale.linear([Double(pts[0].block) - 1, Double(pts[0].block) + 1], from: left + 20, to: right - 20, includeZero: false) }
            let sy = Scale.linear(pts.map(\.kl), from: bottom, to: top)
            var f = Figure(width: 900, height: 290, title: "The king's mean KL after each epoch",
                           desc: pts.map { "block \($0.block): uid \($0.uid), \(Markup.num($0.kl))" }.joined(separator: "; "))
            f.xAxis(sx, y: bottom, top: top, label: "epoch block", format: { String(format: "%.0f", $0) })
            f.yAxis(sy, x: left, right: right, label: "king's mean KL, nats")
            var steps: [(Double, Double)] = []
            for (i, p) in pts.enumerated() {
                if i > 0 { steps.append((sx(Double(p.block)), sy(pts[i - 1].kl))) }
                steps.append((sx(Double(p.block)), sy(p.kl)))
            }
            f.path(steps, "history-line")
            for (i, p) in pts.enumerated() {
                let changed = i == 0 || pts[i - 1].uid != p.uid
                f.dot(sx(Double(p.block)), sy(p.kl), changed ? 6 : 4, "mark \(changed ? "m-crown" : "m-king")", tip: "block \(p.block): uid \(p.uid), mean KL \(Markup.num(p.kl))")
                if changed { f.text(sx(Double(p.block)) + 8, sy(p.kl) - 8, "uid \(p.uid)", "tick") }
            }
            h += "<figure>\(f.render(id: "fig-history"))<figcaption>After each epoch in this working directory: the crown holder's mean KL (on that epoch's prompts, or the last epoch it was scored in); a larger dot marks a new king.</figcaption></figure>\n"
        }
        h += "<table class=\"num\">\n<thead><tr><th>uid</th><th>model</th><th>crowned at block</th><th>until block</th><th>mean KL</th><th>prompts</th></tr></thead>\n<tbody>\n"
        for r in rs {
            h += "<tr><td>\(r.uid)</td><td class=\"repo\">\(Markup.esc(r.repo))</td><td>\(r.from.map(String.init) ?? "earlier")</td>"
                + "<td>\(r.until.map(String.init) ?? "holds it")</td><td>\(r.meanKL.map { Markup.num($0) } ?? "—")</td><td>\(r.n.map(String.init) ?? "—")</td></tr>\n"
        }
        h += "</tbody>\n</table>\n"
        if let st = input.state {
            h += "<p>The judge's state records \(st.models.count) scored model\(st.models.count == 1 ? "" : "s")"
                + (st.king.map { "; the king is uid \($0.uid) (\(Markup.esc($0.repo)))" + ($0.crowned_block.map { ", crowned at block \($0)" } ?? "") } ?? "; no king")
                + ".</p>\n"
        }
        return h
    }

    // MARK: pre-checks

    func checks() -> String {
        guard !input.checks.isEmpty else { return "<p>The check verdicts were not given.</p>\n" }
        let rechecked = Dictionary(input.recheck.map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        let unscored = Dictionary((input.verdict.unscored ?? []).map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        let ok = input.checks.filter(\.ok).count
        var h = "<p>\(input.checks.count) model\(input.checks.count == 1 ? "" : "s") checked: \(ok) passed, \(input.checks.count - ok) rejected before any compute.</p>\n"
        h += "<table>\n<thead><tr><th>uid</th><th>model</th><th>outcome</th><th>reason</th><th>in words</th><th>detail</th>"
            + (input.recheck.isEmpty ? "" : "<th>re-check before the weights</th>")
            + (unscored.isEmpty ? "" : "<th>scoring</th>") + "</tr></thead>\n<tbody>\n"
        for c in input.checks.sorted(by: { $0.uid < $1.uid }) {
            h += "<tr class=\"\(c.ok ? "pass" : "fail")\"><td class=\"n\">\(c.uid)</td><td class=\"repo\">\(Markup.esc(c.repo))</td>"
                + "<td>\(c.ok ? "passed" : "rejected")</td><td><code>\(Markup.esc(c.reason.rawValue))</code></td>"
                + "<td>\(Markup.esc(Self.reasonWords(c.reason)))</td><td class=\"text\">\(Markup.esc(c.message))</td>"
            if !input.recheck.isEmpty {
                h += "<td>" + (rechecked[c.uid].map { "<code>\(Markup.esc($0.reason.rawValue))</code> \(Markup.esc($0.ok ? "unchanged since the check" : Self.reasonWords($0.reason)))" } ?? "—") + "</td>"
            }
            // A model dl-kl could not score: why, in words, and whose fault.
            if !unscored.isEmpty {
                h += "<td>" + (unscored[c.uid].map { u in
                    "<code>\(Markup.esc(u.reason.rawValue))</code> " + Markup.esc(u.fault == .miner ? Self.reasonWords(.unscorable)
                        : "could not be scored for a reason of ours or a transient one: scored again next epoch")
                        + ": <span class=\"text\">\(Markup.esc(u.message))</span>"
                } ?? "—") + "</td>"
            }
            h += "</tr>\n"
        }
        return h + "</tbody>\n</table>\n"
    }

    // MARK: words

    static func reasonWords(_ code: ReasonCode) -> String {
        switch code {
        case .ok: return "passed every pre-check"
        case .params: return "more parameters than allowed, or tensors its config does not explain"
        case .vocab: return "its vocabulary size is not the teacher's"
        case .tokenizer: return "its tokenizer does not encode as the teacher's"
        case .quantized: return "quantized weights, or a weight type that is not allowed"
        case .format: return "malformed or inconsistent weight files"
        case .customCode: return "it ships code to execute, which is never run"
        case .architecture: return "an architecture the engine does not run"
        case .copy: return "the same weights as an earlier commitment"
        case .nanWeights: return "weights that are NaN or infinite"
        case .shape: return "tensor shapes that do not match its config"
        case .chatTemplate: return "its chat template is not the teacher's"
        case .duplicateHotkey: return "the hotkey already committed another model"
        case .removed: return "the repo is gone or private"
        case .changed: return "the repo changed since it was committed"
        case .retry: return "a transient failure: tried again next epoch, never a rejection"
        case .fetch: return "it could not be fetched"
        case .unscorable: return "passed the checks, but its checkpoint could not be scored (the engine refused it, or its output was not finite): rejected"
        }
    }

    /// A reason as a flag spells it (DISQUALIFIED:<code>).
    static func reasonWords(_ raw: String) -> String { ReasonCode(rawValue: raw).map(reasonWords) ?? "reason code \(raw)" }

    static func flagWords(_ flag: String) -> String {
        if flag.hasPrefix("DISQUALIFIED:") { return "disqualified (\(reasonWords(String(flag.dropFirst(13)))))" }
        if flag.hasPrefix("COPY_OF:") { return "a copy of uid \(flag.dropFirst(8))'s scores" }
        switch flag {
        case "RECHECK_RETRY": return "its re-check failed transiently: judged next epoch"
        case Judge.unscorableFlag: return reasonWords(.unscorable)
        case "NOT_IN_CHECKS": return "not in the check verdicts"
        case "STALE": return "the records are of another model than the uid's check"
        case "TEACHER_IN_DISGUISE": return "mean KL at zero: the teacher itself"
        default: return flag
        }
    }

    static func outcomeWords(_ o: ModelOutcome) -> String {
        switch o {
        case .king: return "kept the crown"
        case .newKing: return "took the crown"
        case .dethroned: return "lost the crown"
        case .lost: return "did not beat the king"
        case .noWeight: return "cannot get weight"
        case .pending: return "not judged this epoch"
        }
    }

    // MARK: style

    static let css = """

    :root { color-scheme: light dark; --bg: #ffffff; --fg: #1d2230; --muted: #5d6575; --grid: #e3e6ec; --axis: #7b8393;
      --king: #b7791f; --chal: #2b6cb0; --out: #9aa1ad; --good: #2f855a; --bad: #c53030; --band: rgba(43, 108, 176, 0.14);
      --crown: #d69e2e; --rowalt: #f6f7f9; --link: #2b6cb0; }
    @media (prefers-color-scheme: dark) {
      :root { --bg: #15181e; --fg: #e3e6ec; --muted: #a0a7b4; --grid: #2b303a; --axis: #8a92a0;
        --king: #f6ad55; --chal: #63b3ed; --out: #6b7280; --good: #68d391; --bad: #fc8181; --band: rgba(99, 179, 237, 0.18);
        --crown: #f6e05e; --rowalt: #1c2028; --link: #90cdf4; }
    }
    body { background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
      max-width: 940px; margin: 0 auto; padding: 16px 20px 40px; }
    h1 { font-size: 1.6em; margin: 0.2em 0; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid var(--grid); }
    a { color: var(--link); } code { font-size: 0.92em; } .meta, figcaption, footer, .sorts { color: var(--muted); font-size: 0.9em; }
    .verdict { font-size: 1.1em; } q { font-style: italic; }
    figure { margin: 1em 0; } svg.chart { max-width: 100%; height: auto; display: block; }
    svg text { fill: var(--fg); font-size: 12px; font-family: inherit; } svg .tick { fill: var(--muted); font-size: 11px; }
    svg .axis-label { font-size: 12px; fill: var(--fg); } svg .ref-label { fill: var(--muted); font-size: 11px; }
    svg .axis { stroke: var(--axis); } svg .grid { stroke: var(--grid); } svg .zero { stroke: var(--axis); stroke-width: 1.2; }
    svg .whisker { stroke-width: 2; } svg .m-king { stroke: var(--king); fill: var(--king); } svg .m-chal { stroke: var(--chal); fill: var(--chal); }
    svg .m-out { stroke: var(--out); fill: var(--out); } svg .m-crown { fill: var(--crown); stroke: var(--fg); }
    svg .box { fill-opacity: 0.25; } svg .median { stroke: var(--fg); stroke-width: 2; } svg .small { fill-opacity: 0.75; stroke: none; }
    svg .ref { stroke-width: 1.5; } svg .king-line { stroke: var(--king); } svg .threshold { stroke: var(--bad); stroke-dasharray: 6 4; }
    svg .mean-line { stroke: var(--chal); stroke-dasharray: 2 3; } svg .ci-band { fill: var(--band); }
    svg .good { stroke: var(--good); fill: var(--good); } svg .bad { stroke: var(--bad); fill: var(--bad); } svg .stem { stroke-width: 1.5; }
    svg .spine { stroke: var(--grid); stroke-width: 3; fill: none; } svg .history-line { stroke: var(--king); stroke-width: 2; fill: none; }
    svg .tag { fill: var(--muted); } svg .tag.crown { fill: var(--king); font-weight: bold; } svg .bar { fill-opacity: 0.8; }
    svg .q0 { fill-opacity: 0.35; } svg .q1 { fill-opacity: 0.55; } svg .q2 { fill-opacity: 0.75; }
    table { border-collapse: collapse; width: 100%; margin: 0.8em 0; font-size: 0.88em; }
    th, td { padding: 3px 6px; border-bottom: 1px solid var(--grid); vertical-align: top; text-align: left; }
    table.num td { font-variant-numeric: tabular-nums; } tbody tr:nth-child(even) { background: var(--rowalt); }
    td.repo { word-break: break-all; } td.text { color: var(--muted); } td.good { color: var(--good); } td.bad { color: var(--bad); }
    tr.crown td { font-weight: bold; } tr.fail td { color: var(--bad); } tr.dropped td { color: var(--muted); font-style: italic; }
    caption { text-align: left; color: var(--muted); padding: 2px 0; }
    .ordering { display: none; } .ordering.default { display: block; } .ordering:target { display: block; }
    .ordering:target ~ .ordering.default { display: none; }
    @media print {
      :root { --bg: #ffffff; --fg: #000000; --muted: #333333; --grid: #cccccc; --rowalt: #ffffff; color-scheme: light; }
      body { max-width: none; padding: 0; font-size: 11px; } nav, .sorts { display: none; }
      .ordering, .ordering:target { display: none; } .ordering.default { display: block; }
      figure, tr { break-inside: avoid; } h2 { break-after: avoid; } a { color: inherit; text-decoration: none; }
    }

    """
}

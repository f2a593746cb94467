import DistilFormats
@testable import DistilReport
import DistilScore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// The report's page, read back by a strict XML parser: well-formed, every figure titled and its axes
/// labelled, every input string escaped, every number from the inputs.
final class ReportTests: XCTestCase {
    /// The demo's three epochs (pipelines/demo.sh), small artifacts only, paths made relative.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    func epoch(_ b: Int) -> String { Self.fixtures + "/epoch-\(b)" }

    /// What the strict parse saw: every svg with its title, desc and text classes, and the ids.
    final class PageReader: NSObject, XMLParserDelegate {
        struct SVG { var title = ""; var desc = ""; var classes: [String] = []; var firstChild: String? }
        var svgs: [SVG] = []
        var ids: [String] = []
        var elements: [String] = []
        var stack: [String] = []
        var text = ""
        var inSVG: Int?
        var collecting: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements.append(name)
            if let id = attributes["id"] { ids.append(id) }
            if name == "svg" { svgs.append(SVG()); inSVG = stack.count }
            else if let d = inSVG, stack.count == d + 1, svgs[svgs.count - 1].firstChild == nil { svgs[svgs.count - 1].firstChild = name }
            if inSVG != nil, name == "title" || name == "desc", stack.last == "svg" { collecting = name; text = "" }
            if inSVG != nil, name == "text" { svgs[svgs.count - 1].classes.append(attributes["class"] ?? "") }
            stack.append(name)
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { if collecting != nil { text += string } }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
            if name == collecting {
                if name == "title" { svgs[svgs.count - 1].title = text } else { svgs[svgs.count - 1].desc = text }
                collecting = nil
            }
            if name == "svg" { inSVG = nil }
        }
    }

    func parse(_ html: String, file: StaticString = #filePath, line: UInt = #line) throws -> PageReader {
        let p = XMLParser(data: Data(html.utf8))
        let r = PageReader()
        p.delegate = r
        let ok = p.parse()
        XCTAssertTrue(ok, "not well-formed XML: \(String(describing: p.parserError)) at line \(p.lineNumber)", file: file, line: line)
        return r
    }

    func testDemoEpochPageIsWellFormedWithTitledLabelledFigures() throws {
        let html = EpochReport.render(try ReportInput.load(epoch: epoch(200)))
        let page = try parse(html)
        for id in ["leaderboard", "pairs", "distribution", "prompts", "history", "checks"] {
            XCTAssertTrue(page.ids.contains(id), "section \(id) missing")
        }
        // Leaderboard, one pair, spread, percentiles, top-1, history.
        XCTAssertEqual(page.svgs.count, 6)
        for s in page.svgs {
            XCTAssertEqual(s.firstChild, "title", "an svg's first child must be its title")
            XCTAssertFalse(s.title.isEmpty)
            XCTAssertFalse(s.desc.isEmpty, s.title)
            XCTAssertTrue(s.classes.contains { $0.contains("axis-label") && $0.contains("x-label") }, "no x-axis label: \(s.title)")
            XCTAssertTrue(s.classes.contains { $0.contains("axis-label") && $0.contains("y-label") }, "no y-axis label: \(s.title)")
        }
        // Self-contained: no script, no external reference, a CSP that forbids fetching.
        XCTAssertFalse(page.elements.contains("script"))
        XCTAssertFalse(page.elements.contains("link"))
        XCTAssertFalse(html.contains("http://") && !html.contains("http://www.w3.org/"), "an external URL")
        XCTAssertFalse(html.contains("https://"))
        XCTAssertTrue(html.contains("Content-Security-Policy\" content=\"default-src 'none'"))
        XCTAssertTrue(html.contains("@media (prefers-color-scheme: dark)"))
        XCTAssertTrue(html.contains("@media print"))
        // The verdict in words, from its numbers: the challenger takes the crown.
        XCTAssertTrue(html.contains("uid 2 (demo/challenger) takes the crown"), html)
        XCTAssertTrue(html.contains(Markup.esc("uid 2 takes the crown: mean KL 0.499428 < (1 - 0.01) x king's 1.82201 = 1.80379")))
        // Every prompt in every ordering (by id, by each model's KL, by the challenger's difference).
        for o in ["by-id", "by-kl-1", "by-kl-2", "by-diff-2"] { XCTAssertTrue(page.ids.contains(o), o) }
        // The prompt's source and first words come from prompts.jsonl.
        XCTAssertTrue(html.contains("corpus.jsonl.zst:278"))
        XCTAssertTrue(html.contains("Translate a sequence of arguments into a command line string, using the …"))
        // The history: king uid 1 crowned at 120, dethroned at 200 by uid 2.
        XCTAssertTrue(html.contains("<tr><td>1</td><td class=\"repo\">demo/king</td><td>120</td><td>200</td>"), html)
    }

    func testEpochWithoutComputeAndFirstEpoch() throws {
        for b in [120, 260] {
            let html = EpochReport.render(try ReportInput.load(epoch: epoch(b)))
            let page = try parse(html)
            for s in page.svgs { XCTAssertEqual(s.firstChild, "title") }
            if b == 260 {
                XCTAssertTrue(html.contains("No model was scored this epoch"))
                XCTAssertTrue(html.contains("keeps the crown"), html)
            } else {
                XCTAssertTrue(html.contains("no king to beat"), html)
            }
        }
    }

    /// Model repos, hotkeys, reasons and prompt texts are attacker-controlled: whatever they hold, the
    /// page stays well-formed and holds no element they name.
    func testHostileStringsAreEscaped() throws {
        var input = try ReportInput.load(epoch: epoch(200))
        let evil = "x\"/><script>alert('1')</script><img src=\"https://evil.example/a.png\"/>&amp;\u{01}\u{FFFF}]]>"
        input.verdict.models[1].repo = evil
        input.verdict.king_after?.repo = evil
        input.verdict.reason = evil
        input.checks[1].repo = evil
        input.checks[1].message = evil
        // (A check's reason is a closed vocabulary, ReasonCode: a checks file naming another is refused when read.)
        input.prompts[0].text = evil
        input.prompts[0].source?.shard = evil
        input.verdict.prompts[0] = evil
        input.verdict.models[1].per_prompt[0].prompt_id = evil
        input.verdict.models[0].per_prompt[0].prompt_id = evil
        let html = EpochReport.render(input)
        let page = try parse(html)
        XCTAssertFalse(page.elements.contains("script"))
        XCTAssertFalse(page.elements.contains("img"))
        XCTAssertFalse(html.contains("<script"))
        XCTAssertTrue(html.contains("&lt;script&gt;"))
    }

    /// A verdict edited by hand (a uid twice, a prompt twice, no records, no prompts) still gives a page.
    func testOddInputsDoNotCrash() throws {
        var input = try ReportInput.load(epoch: epoch(200))
        input.verdict.models.append(input.verdict.models[0])
        input.verdict.models[1].per_prompt.append(input.verdict.models[1].per_prompt[0])
        input.verdict.prompts.append(input.verdict.prompts[0])
        _ = try parse(EpochReport.render(input))
        input.records = []; input.prompts = []; input.checks = []; input.state = nil; input.history = []
        let html = EpochReport.render(input)
        _ = try parse(html)
        XCTAssertTrue(html.contains("The KL records were not given"))
    }

    /// Every number comes from the inputs: one KL record changed, the epoch judged again, and the page
    /// shows the new figures and none of the old.
    func testChangingAKLRecordChangesThePage() throws {
        let e = epoch(200)
        let checks = try JudgeIO.readChecks(e + "/checks.jsonl")
        var records = try JudgeIO.readKL([e + "/kl/1.jsonl", e + "/kl/2.jsonl"])
        let state = try JudgeIO.readState(e + "/state-before.json")
        func page(_ recs: [SourcedKL]) throws -> (String, Verdict) {
            let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(epsilon: 0.01, block: 200))
            var input = try ReportInput.load(epoch: e)
            input.verdict = v; input.state = after; input.records = recs.map(\.record)
            input.history = Array(input.history.dropLast()) + [v]
            return (EpochReport.render(input), v)
        }
        let (before, v0) = try page(records)
        XCTAssertEqual(before, EpochReport.render(try ReportInput.load(epoch: e)), "the committed verdict is the judge's")
        // The challenger's first prompt gets a KL of 3.14159 and a p99 of 27.1828.
        let i = records.firstIndex { $0.record.uid == 2 }!
        let old = records[i].record
        records[i].record.kl_mean = 3.14159
        records[i].record.kl_p99 = 27.1828
        let (after, v1) = try page(records)
        XCTAssertNotEqual(before, after)
        XCTAssertTrue(after.contains("3.142 ± \(Markup.num(old.kl_std))"), "the per-prompt table")
        XCTAssertFalse(after.contains("\(Markup.num(old.kl_mean)) ± \(Markup.num(old.kl_std))"))
        let m0 = v0.models.first { $0.uid == 2 }!.score, m1 = v1.models.first { $0.uid == 2 }!.score
        XCTAssertNotEqual(m0.mean_kl, m1.mean_kl)
        XCTAssertTrue(before.contains(Markup.num(m0.mean_kl)) && !after.contains(">\(Markup.num(m0.mean_kl))<"), "the leaderboard's old mean")
        XCTAssertTrue(after.contains(">\(Markup.num(m1.mean_kl))<"), "the leaderboard's new mean")
        XCTAssertTrue(after.contains(Markup.p(v1.models.first { $0.uid == 2 }!.vs_king!.p_value)), "the paired test's new p")
    }

    func testMarkupHelpers() {
        XCTAssertEqual(Markup.esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;")
        XCTAssertEqual(Markup.esc("\u{0}\u{7}ok"), "\u{FFFD}\u{FFFD}ok")
        XCTAssertEqual(Markup.id("by-kl", "a b/<c>"), "by-kl-a-b--c-")
        XCTAssertEqual(Markup.num(-0.0), "0")
        XCTAssertEqual(Markup.num(0.000123456), "0.0001235")
        XCTAssertEqual(Markup.firstWords("one  two\nthree", 2), "one two …")
        XCTAssertEqual(Scale.niceStep(0.37), 0.5)
        XCTAssertEqual(Scale.linear([0.2, 1.7], from: 0, to: 100).ticks, [0, 0.5, 1, 1.5, 2])
        XCTAssertEqual(Scale.logarithmic([0.02, 3], from: 0, to: 100).ticks, [0.01, 0.1, 1, 10])
        XCTAssertEqual(quantile([1, 2, 3, 4], 0.5), 2.5)
    }
}

/// dl-judge decide's line (pipelines/miner-check.sh prints it) from real verdicts.
final class DecisionTests: XCTestCase {
    func testTakesLosesAndFlagged() throws {
        let e = ReportTests.fixtures + "/epoch-200"
        let v = try decodeJSONFile(Verdict.self, path: e + "/verdict.json")
        let (takes, line) = try Decision.describe(v, uid: 2)
        XCTAssertTrue(takes)
        XCTAssertEqual(line, "would take the crown, by 72.59% below the king's mean KL (0.4994 vs 1.822), p = 1.26e-06")
        XCTAssertThrowsError(try Decision.describe(v, uid: 7))

        // A challenger 0.5% better than the king on average, better on some prompts and worse on others
        // (not proportional to the king's, which the judge would call a copy): not enough under epsilon = 1%.
        let checks = try JudgeIO.readChecks(e + "/checks.jsonl")
        var records = try JudgeIO.readKL([e + "/kl/1.jsonl", e + "/kl/2.jsonl"])
        let king = Dictionary(uniqueKeysWithValues: records.filter { $0.record.uid == 1 }.map { ($0.record.prompt_id, $0.record.kl_mean) })
        let factors = [0.95, 1.04, 0.99, 1.0]
        let mine = records.indices.filter { records[$0].record.uid == 2 }
        let raw = mine.enumerated().map { j, i in king[records[i].record.prompt_id]! * factors[j % 4] }
        let scale = 0.995 * king.values.reduce(0, +) / raw.reduce(0, +)
        for (j, i) in mine.enumerated() { records[i].record.kl_mean = raw[j] * scale }
        let state = try JudgeIO.readState(e + "/state-before.json")
        let (close, _) = try Judge.judge(checks: checks, records: records, state: state)
        let (t2, l2) = try Decision.describe(close, uid: 2)
        XCTAssertFalse(t2)
        XCTAssertTrue(l2.hasPrefix("would not take the crown, by 0.50% below the king's mean KL"), l2)
        XCTAssertTrue(l2.hasSuffix("; more than 1% below the king's mean KL is needed"), l2)

        // The king's own records under another uid: the judge flags the copy.
        var copies = records.filter { $0.record.uid == 1 }
        let c2 = checks.first { $0.uid == 2 }!
        for i in copies.indices {
            copies[i].record.uid = 2; copies[i].record.model = c2.repo; copies[i].record.hotkey = c2.hotkey; copies[i].record.revision = c2.revision
        }
        let (copy, _) = try Judge.judge(checks: checks, records: records.filter { $0.record.uid == 1 } + copies, state: state)
        let (t3, l3) = try Decision.describe(copy, uid: 2)
        XCTAssertFalse(t3)
        XCTAssertTrue(l3.hasPrefix("would not take the crown: flagged COPY_OF:1"), l3)
    }
}

import DistilFormats
import DistilTokenizer
import Foundation
import XCTest

/// The tokenizer against Hugging Face tokenizers and tiktoken (scripts/dev/tokenizer_cases.py made
/// the cases; every case is one where both references agree).
final class TokenizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    struct Case: Decodable { var text: String; var ids: [Int] }

    static let qwen: Tokenizer = {
        let bytes = try! openInput(fixtures + "/qwen3.5-tokenizer.json.zst").readAll(limit: 256 << 20)
        return try! Tokenizer(json: bytes, name: "qwen3.5-tokenizer.json")
    }()

    func runCases(_ tok: Tokenizer, _ file: String, atLeast: Int) throws {
        let cases = try JSONLReader<Case>(path: Self.fixtures + "/" + file).readAll()
        XCTAssertGreaterThanOrEqual(cases.count, atLeast)
        var failures = 0
        for c in cases {
            let got = tok.encode(c.text)
            if got != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(file): \(c.text.debugDescription): got \(got), want \(c.ids)") }
            }
            // Decoding gives the (NFC-normalized) text back.
            if failures == 0 { XCTAssertEqual(tok.decode(got), String(decoding: c.text._nfcCodeUnits, as: UTF8.self), c.text.debugDescription) }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) cases differ")
        print("\(file): \(cases.count - failures)/\(cases.count) cases encode exactly as the references")
    }

    func testQwen35EncodesExactlyAsTokenizersAndTiktoken() throws {
        XCTAssertEqual(Self.qwen.vocabSize, 248_077)
        try runCases(Self.qwen, "qwen3.5.cases.jsonl.zst", atLeast: 10_000)
    }

    func testDemoTokenizer() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let tok = try Tokenizer.load(path: repo.appendingPathComponent("demo").path)
        try runCases(tok, "demo.cases.jsonl.zst", atLeast: 3000)
    }

    func testIdentityDistinguishesTokenizersWithTheSameVocabSize() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let json = try readFile(repo.appendingPathComponent("demo/tokenizer.json").path)
        let a = try Tokenizer(json: json, name: "a"), b = try Tokenizer(json: json, name: "b")
        XCTAssertEqual(a.identity, b.identity)
        // Swap two merges: same vocabulary, same size, different tokenizer.
        var o = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
        var model = o["model"] as! [String: Any]
        var merges = model["merges"] as! [Any]
        merges.swapAt(0, 1)
        model["merges"] = merges
        o["model"] = model
        let c = try Tokenizer(json: Array(try JSONSerialization.data(withJSONObject: o)), name: "c")
        XCTAssertEqual(c.vocabSize, a.vocabSize)
        XCTAssertNotEqual(c.identity.semanticHash, a.identity.semanticHash)
    }

    func testHostileTokenizerJSONIsAClearError() {
        let bad: [(String, String)] = [
            ("not json", "invalid JSON at byte 0"),
            ("[1,2]", "not a JSON object"),
            (String(repeating: "[", count: 100_000), "nested deeper than 64"),
            (#"{"model":{"type":"BPE","vocab":{"a":"x"}}}"#, "unsupported pre_tokenizer"),
            (#"{"normalizer":{"type":"NFKC"}}"#, "unsupported normalizer NFKC"),
            (#"{"pre_tokenizer":{"type":"Whitespace"}}"#, "unsupported pre_tokenizer"),
            (#"{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]}}"#, "unsupported Split pattern"),
        ]
        for (json, want) in bad {
            XCTAssertThrowsError(try Tokenizer(json: Array(json.utf8), name: "t.json")) { e in
                XCTAssertTrue("\(e)".contains(want), "\(e)")
            }
        }
        XCTAssertThrowsError(try Tokenizer(json: [0xFF, 0xFE, 0x7B], name: "t.json"))
    }
}

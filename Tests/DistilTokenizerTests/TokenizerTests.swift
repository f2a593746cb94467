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
        let tok = try Tokenizer.load(path: Self.repo + "/demo")
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

    /// The identity is a stored fact (dl-check compares it across runs and machines): the loader
    /// must not change it. These values were computed by the first implementation.
    func testIdentityIsStable() throws {
        XCTAssertEqual(Self.qwen.identity.semanticHash, "35bf8387c09ac7945ad80bb37c4f4e5e5128a132a9f5bd2fa3486f2446ca4f2e")
        XCTAssertEqual(Self.qwen.identity.referenceHash, "b43f044bc9acf4cc24d05fc33804298ec53eea57ee88ef75a363b8fffe1e0c93")
        let demo = try Tokenizer.load(path: Self.repo + "/demo")
        XCTAssertEqual(demo.identity.semanticHash, "ede0145c2596b5256279a7caa8c9e8f89114250e7ce5d63ddb1651a75420e65a")
        XCTAssertEqual(demo.identity.referenceHash, "d961f7708142ffb66b49e0929a8e414d1d8aadb693c6bc0920d6252825f7e0fd")
    }

    func testTokenAndIDLookups() {
        let t = Self.qwen
        XCTAssertEqual(t.id(of: "<|im_end|>"), 248_046)
        XCTAssertEqual(t.id(of: "<|endoftext|>"), 248_044)
        XCTAssertEqual(t.token(of: 248_046), "<|im_end|>")
        XCTAssertEqual(t.id(of: "Ġthe"), t.encode(" the").first)
        XCTAssertNil(t.id(of: "no such token \u{1F600}"))
        XCTAssertNil(t.token(of: -1))
        XCTAssertNil(t.token(of: 10_000_000))
        for id in stride(from: 0, to: t.vocabSize, by: 97) {   // every token round-trips
            guard let s = t.token(of: id) else { XCTFail("no token for \(id)"); continue }
            XCTAssertEqual(t.id(of: s), id, s)
        }
    }

    func testEdgeTexts() {
        let t = Self.qwen
        XCTAssertEqual(t.encode(""), [])
        XCTAssertEqual(t.encode("<|im_end|><|im_end|>"), [248_046, 248_046])
        XCTAssertEqual(t.encode("a<|im_end|>"), t.encode("a") + [248_046])
        XCTAssertFalse(t.encode("<|im_end").contains(248_046))   // an incomplete special token is text
        XCTAssertEqual(t.decode(t.encode("<|im_end")), "<|im_end")
        // NFC applies to the text between added tokens; a combining mark after one stays separate.
        XCTAssertEqual(t.encode("e\u{301}"), t.encode("\u{E9}"))
        XCTAssertEqual(t.decode(t.encode("<|im_end|>\u{301}x")), "<|im_end|>\u{301}x")
        // Long pieces (heap BPE) round-trip and are stable.
        for text in [String(repeating: " ", count: 5000) + "x", String(repeating: "ab", count: 3000), String(repeating: "=", count: 999) + "\n"] {
            let ids = t.encode(text)
            XCTAssertEqual(t.decode(ids), text)
            XCTAssertEqual(t.encode(text), ids)
        }
        XCTAssertEqual(t.decode([-5, 99_999_999]), "")
        XCTAssertEqual(t.decode(t.encode("\u{FF}")), "\u{FF}")
    }

    func testConcurrentEncodingGivesTheSameIDs() throws {
        let cases = try JSONLReader<Case>(path: Self.fixtures + "/qwen3.5.cases.jsonl.zst").readAll()
        let t = Self.qwen
        let texts = cases.prefix(2000).map(\.text)
        let serial = texts.map { t.encode($0) }
        var parallel = [[Int]](repeating: [], count: texts.count)
        parallel.withUnsafeMutableBufferPointer { out in
            let o = out
            DispatchQueue.concurrentPerform(iterations: 4) { w in
                for k in stride(from: w, to: texts.count, by: 4) { o[k] = t.encode(texts[k]) }
            }
        }
        XCTAssertEqual(serial, parallel)
        // One big text (the cache of a long call) gives what the pieces give one by one.
        let joined = texts.joined(separator: "\n\n")
        XCTAssertEqual(t.decode(t.encode(joined)), String(decoding: joined._nfcCodeUnits, as: UTF8.self))
    }

    static var repo: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The demo tokenizer.json as a mutable object.
    func demoObject() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(readFile(Self.repo + "/demo/tokenizer.json"))) as! [String: Any]
    }

    func load(_ o: [String: Any]) throws -> Tokenizer {
        try Tokenizer(json: Array(try JSONSerialization.data(withJSONObject: o)), name: "t.json")
    }

    func expectError(_ json: [UInt8], _ want: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Tokenizer(json: json, name: "t.json"), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(want), "\(e) lacks '\(want)'", file: file, line: line)
            XCTAssertTrue("\(e)".hasPrefix("t.json: "), "\(e)", file: file, line: line)
        }
    }

    func testHostileTokenizerJSONIsAClearError() throws {
        let bad: [(String, String)] = [
            ("not json", "invalid JSON at byte 0"),
            ("[1,2]", "not a JSON object"),
            (String(repeating: "[", count: 100_000), "nested deeper than 64"),
            (String(repeating: "{\"a\":", count: 100_000), "nested deeper than 64"),
            (#"{"model":{"type":"BPE","vocab":{"a":"x"}}}"#, "vocab entry 'a' has a string"),
            (#"{"model":{"type":"BPE","vocab":{"a":1}}}"#, "unsupported pre_tokenizer"),
            (#"{"normalizer":{"type":"NFKC"}}"#, "unsupported normalizer NFKC"),
            (#"{"pre_tokenizer":{"type":"Whitespace"}}"#, "unsupported pre_tokenizer"),
            (#"{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]}}"#, "unsupported Split pattern"),
            (#"{"model":{"vocab":{}},"model":{}}"#, "duplicate key 'model'"),
            (#"{"model":{"vocab":{},"vocab":{}}}"#, "duplicate key 'vocab'"),
            (#"{"model":{"vocab":{"a":1,"b":"2"}}}"#, "vocab entry 'b' has a string, expected an integer id"),
            (#"{"model":{"vocab":{"a":1.5}}}"#, "vocab entry 'a' has a number"),
            (#"{"model":{"vocab":{"a":-1}}}"#, "vocab entry 'a' has id -1"),
            (#"{"model":{"vocab":{"a":99999999999}}}"#, "vocab entry 'a' has id 99999999999"),
            (#"{"model":{"vocab":{"a":1,"b":1}}}"#, "vocab id 1 is assigned twice"),
            (#"{"model":{"vocab":{"a":1,"a":2}}}"#, "vocab key 'a' appears twice"),
            (#"{"model":{"vocab":{"a":1,"b":2},"merges":["ab"]}}"#, "merge 0 'ab' is not 'a b'"),
            (#"{"model":{"vocab":{"a":1,"b":2},"merges":["a b"]}}"#, "merge 0 ('a' 'b') uses tokens missing from the vocab"),
            (#"{"model":{"vocab":{"a":1,"b":2,"ab":3},"merges":[["a","b"],[1,2]]}}"#, "merge 1 is neither 'a b' nor a pair of strings"),
            (#"{"model":{"vocab":{"a":1,"b":2,"ab":3},"merges":[["a","b","c"]]}}"#, "merge 0 is neither 'a b' nor a pair of strings"),
            (#"{"model":{"vocab":{"a":1},"merges":[7]}}"#, "merge 0 is neither 'a b' nor a pair of strings"),
            (#"{"model":{"vocab":{"a":1},"merges":[}}"#, "invalid JSON"),
            (#"{"model":{"vocab":{"a\ud800":1}}}"#, "lone surrogate"),
            (#"{"model":{"vocab":{"a\u00"#, "invalid JSON"),
        ]
        for (json, want) in bad { expectError(Array(json.utf8), want) }
        // A vocab or merges of the wrong type is named, not taken for an empty one.
        var w = try demoObject()
        var m = w["model"] as! [String: Any]
        m["merges"] = true
        w["model"] = m
        expectError(Array(try JSONSerialization.data(withJSONObject: w)), "BPE model has no merges list")
        m["vocab"] = true
        w["model"] = m
        expectError(Array(try JSONSerialization.data(withJSONObject: w)), "BPE model has no vocab object")
        expectError([0xFF, 0xFE, 0x7B], "invalid JSON")
        expectError(Array(#"{"model":{"vocab":{"a"#.utf8) + [0xC3, 0x28] + Array(#"":1}}}"#.utf8), "invalid UTF-8")
        expectError(Array(#"{"model":{"vocab":{"a":1},"merges":["a"#.utf8) + [0xE2, 0x82] + Array(#" b"]}}"#.utf8), "invalid UTF-8")

        // Components that would be approximated are refused by name.
        var o = try demoObject()
        var model = o["model"] as! [String: Any]
        model["dropout"] = 0.1
        o["model"] = model
        expectError(Array(try JSONSerialization.data(withJSONObject: o)), "unsupported BPE dropout")
        o = try demoObject()
        model = o["model"] as! [String: Any]
        model["continuing_subword_prefix"] = "##"
        o["model"] = model
        expectError(Array(try JSONSerialization.data(withJSONObject: o)), "unsupported BPE continuing_subword_prefix ##")
        o = try demoObject()
        var added = o["added_tokens"] as! [[String: Any]]
        added[0]["lstrip"] = true
        o["added_tokens"] = added
        expectError(Array(try JSONSerialization.data(withJSONObject: o)), "unsupported added token option lstrip on '<|endoftext|>'")
        o = try demoObject()
        model = o["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Any]
        vocab.removeValue(forKey: "Ā")   // byte 0's symbol
        model["vocab"] = vocab
        model["merges"] = []
        o["model"] = model
        expectError(Array(try JSONSerialization.data(withJSONObject: o)), "vocab lacks the byte-level symbol for byte 0")
    }

    /// Every prefix and many corrupted copies of a real tokenizer.json load or fail with an
    /// error; none crashes.
    func testTruncatedAndCorruptedFilesNeverCrash() throws {
        let json = try readFile(Self.repo + "/demo/tokenizer.json")
        var failures = 0
        for cut in stride(from: 0, to: json.count, by: 37) {
            do { _ = try Tokenizer(json: Array(json[..<cut]), name: "t.json"); XCTFail("prefix \(cut) loaded") } catch { failures += 1 }
        }
        var rng = TokenizerInternalsTests.Rand(s: 11)
        let specials: [UInt8] = Array("{}[]\",:0 \\u".utf8) + [0xFF, 0xC3, 0x00]
        for _ in 0..<400 {
            var b = json
            for _ in 0..<(1 + rng.below(3)) { b[rng.below(b.count)] = specials[rng.below(specials.count)] }
            if let t = try? Tokenizer(json: b, name: "t.json") { _ = t.encode("hello <|im_end|> wörld 123") }
        }
        XCTAssertGreaterThan(failures, 500)
    }

    /// Key order inside "model" does not matter (merges may come before the vocabulary).
    func testMergesBeforeVocabLoadTheSame() throws {
        let o = try demoObject()
        let model = o["model"] as! [String: Any]
        let vocab = String(decoding: try JSONSerialization.data(withJSONObject: model["vocab"]!), as: UTF8.self)
        let merges = String(decoding: try JSONSerialization.data(withJSONObject: model["merges"]!), as: UTF8.self)
        let rest = String(decoding: try JSONSerialization.data(withJSONObject: o.filter { $0.key != "model" }), as: UTF8.self)
        let text = rest.dropLast() + #","model":{"type":"BPE","merges":"# + merges + #","vocab":"# + vocab + "}}"
        let a = try Tokenizer.load(path: Self.repo + "/demo")
        let b = try Tokenizer(json: Array(text.utf8), name: "reordered")
        XCTAssertEqual(a.identity, b.identity)
    }
}

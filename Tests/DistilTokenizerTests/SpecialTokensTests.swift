import DistilFormats
import DistilTokenizer
import Foundation
import XCTest

/// EOS, BOS and PAD ids from a model directory's config files.
final class SpecialTokensTests: XCTestCase {
    static let demo = try! Tokenizer.load(path: TokenizerTests.repo + "/demo")

    /// A temporary model directory holding `files` (name → JSON text).
    func directory(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "distil-special-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    func expectError(_ files: [String: String], _ want: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try directory(files)
        XCTAssertThrowsError(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(want), "\(e) lacks '\(want)'", file: file, line: line)
        }
    }

    /// Config files in the shape Qwen3.5 ships (generation_config lists <|im_end|> and <|endoftext|>).
    func testQwenShapedConfigs() throws {
        let dir = TokenizerTests.fixtures + "/special/qwen3.5-shape"
        let s = try ModelDirectory(dir).specialTokenIDs(tokenizer: TokenizerTests.qwen)
        XCTAssertEqual(s, SpecialTokenIDs(eos: [248_046, 248_044], bos: 248_044, pad: 248_044, eosSource: "generation_config.json"))
        // Without generation_config.json the tokenizer_config's strings decide.
        let only = try directory(["tokenizer_config.json": try String(contentsOfFile: dir + "/tokenizer_config.json", encoding: .utf8)])
        let t = try ModelDirectory(only).specialTokenIDs(tokenizer: TokenizerTests.qwen)
        XCTAssertEqual(t, SpecialTokenIDs(eos: [248_046], bos: nil, pad: 248_044, eosSource: "tokenizer_config.json"))
    }

    func testDemoModel() throws {
        let s = try ModelDirectory(TokenizerTests.repo + "/demo/teacher").specialTokenIDs(tokenizer: Self.demo)
        XCTAssertEqual(s, SpecialTokenIDs(eos: [509], bos: 509, pad: 509, eosSource: "generation_config.json"))
    }

    func testFallbackOrder() throws {
        // config.json, then its text_config, then tokenizer_config.json.
        var dir = try directory(["config.json": #"{"eos_token_id": 511}"#, "tokenizer_config.json": #"{"eos_token": "<|endoftext|>"}"#])
        XCTAssertEqual(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo).eos, [511])
        XCTAssertEqual(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo).eosSource, "config.json")
        dir = try directory(["config.json": #"{"text_config": {"eos_token_id": [511, 510, 511]}}"#])
        XCTAssertEqual(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo).eos, [511, 510])
        dir = try directory(["generation_config.json": #"{"eos_token_id": null}"#,
                             "tokenizer_config.json": #"{"eos_token": {"content": "<|im_end|>", "special": true}, "bos_token": "<|im_start|>"}"#])
        XCTAssertEqual(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo),
                       SpecialTokenIDs(eos: [511], bos: 510, pad: nil, eosSource: "tokenizer_config.json"))
        // A vocabulary token (not an added one) by its byte-level spelling.
        dir = try directory(["tokenizer_config.json": #"{"eos_token": "Ġt"}"#])
        XCTAssertEqual(try ModelDirectory(dir).specialTokenIDs(tokenizer: Self.demo).eos, [Self.demo.id(of: "Ġt")!])
    }

    func testWrongTypesAndUnknownTokensAreClearErrors() throws {
        try expectError([:], "no EOS token")
        try expectError(["generation_config.json": #"{"eos_token_id": "509"}"#],
                        "generation_config.json: eos_token_id is a string, expected an integer or a list of integers")
        try expectError(["generation_config.json": #"{"eos_token_id": [509, true]}"#], "eos_token_id is a boolean")
        try expectError(["generation_config.json": #"{"eos_token_id": []}"#], "eos_token_id is an empty list")
        try expectError(["generation_config.json": #"{"eos_token_id": 1.5}"#], "eos_token_id is a number")
        try expectError(["generation_config.json": #"{"eos_token_id": 600}"#], "eos_token_id 600 is not a token of the tokenizer (vocab size 512)")
        try expectError(["generation_config.json": #"{"eos_token_id": -1}"#], "eos_token_id -1 is not a token")
        try expectError(["generation_config.json": #"{"eos_token_id": 509, "pad_token_id": [509]}"#], "pad_token_id is an array, expected an integer")
        try expectError(["generation_config.json": #"{"eos_token_id": 509"#], "generation_config.json: invalid JSON")
        try expectError(["generation_config.json": "[509]"], "generation_config.json: not a JSON object")
        try expectError(["config.json": #"{"text_config": 5}"#], "config.json: text_config is a number, expected an object")
        try expectError(["tokenizer_config.json": #"{"eos_token": "<|nope|>"}"#], "tokenizer_config.json: eos_token '<|nope|>' is not a token of the tokenizer")
        try expectError(["tokenizer_config.json": #"{"eos_token": 509}"#], "eos_token is a number, expected a string or an object")
        try expectError(["tokenizer_config.json": #"{"eos_token": "<|im_end|>", "added_tokens_decoder": {"509": {"content": "<|im_end|>"}}}"#],
                        "added_tokens_decoder maps 509 to '<|im_end|>' but the tokenizer has '<|endoftext|>'")
        try expectError(["tokenizer_config.json": #"{"eos_token": "<|im_end|>", "added_tokens_decoder": {"x": {}}}"#],
                        "added_tokens_decoder key 'x' is not a token id")
        try expectError(["tokenizer_config.json": #"{"eos_token": "<|x|>", "added_tokens_decoder": {"700": {"content": "<|x|>"}}}"#],
                        "is id 700 in added_tokens_decoder, which is not a token of the tokenizer")
        let big = "{\"eos_token_id\": [" + Array(repeating: "509", count: 2000).joined(separator: ",") + "]}"
        try expectError(["generation_config.json": big], "more than 1024")
    }
}

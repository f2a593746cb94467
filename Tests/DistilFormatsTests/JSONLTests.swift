import DistilFormats
import Foundation
import XCTest

final class JSONLTests: XCTestCase {
    func testRoundTripKeepsLineSeparatorsInsideStrings() throws {
        // U+2028, U+2029, U+0085, "\r" and a vertical tab are data, never record ends.
        let text = "a\u{2028}b\u{2029}c\u{85}d\re\u{0B}f\u{0C}g"
        let m = MemoryWriter()
        let w = JSONLWriter(m)
        try w.write(PromptRecord(id: "1-00", text: text))
        try w.write(PromptRecord(id: "1-01", text: "second"))
        let r = JSONLReader<PromptRecord>(MemoryReader(m.bytes))
        let all = try r.readAll()
        XCTAssertEqual(all.map(\.text), [text, "second"])
        XCTAssertEqual(m.bytes.filter { $0 == 0x0A }.count, 2)
    }

    func testRawLineSeparatorBytesDoNotSplit() throws {
        // A writer that emits U+2028 unescaped (legal JSON) must still give one record.
        let line = "{\"id\":\"x\",\"text\":\"one\u{2028}two\u{85}three\"}\n"
        let r = JSONLReader<PromptRecord>(MemoryReader(Array(line.utf8)))
        let all = try r.readAll()
        XCTAssertEqual(all.count, 1)
        XCTAssertEqual(all[0].text, "one\u{2028}two\u{85}three")
    }

    func testMissingFieldNamesLineAndField() throws {
        let data = "{\"uid\":1,\"hotkey\":\"h\",\"block\":5,\"repo\":\"a/b\"}\n\n{\"uid\":2,\"hotkey\":\"h2\",\"repo\":\"c/d\"}\n"
        let r = JSONLReader<Commitment>(MemoryReader(Array(data.utf8), name: "commitments.jsonl"))
        XCTAssertNotNil(try r.next())
        XCTAssertThrowsError(try r.next()) { e in
            XCTAssertEqual((e as? DistilError)?.message, "commitments.jsonl:3: missing field 'block'")
        }
    }

    func testBadJSONAndWrongType() throws {
        let bad = JSONLReader<Commitment>(MemoryReader(Array("{\"uid\":1,\n".utf8), name: "c.jsonl"))
        XCTAssertThrowsError(try bad.next()) { e in
            XCTAssertTrue((e as? DistilError)!.message.hasPrefix("c.jsonl:1: invalid JSON"), "\(e)")
        }
        let typed = JSONLReader<Commitment>(MemoryReader(Array("{\"uid\":\"one\",\"hotkey\":\"h\",\"block\":1,\"repo\":\"r\"}".utf8), name: "c.jsonl"))
        XCTAssertThrowsError(try typed.next()) { e in
            XCTAssertEqual((e as? DistilError)?.message, "c.jsonl:1: field 'uid': expected an integer")
        }
    }

    /// Values that parse but are not what the field may hold are refused by the field, not as
    /// "invalid JSON": a negative uid or block, an integer beyond 64 bits, a fraction for an
    /// integer, a file name that leaves the model folder; bytes that are not UTF-8 are named as such.
    func testOutOfRangeValuesNameTheField() throws {
        func message(_ line: String, _ type: (some Decodable).Type = Commitment.self) -> String {
            do { _ = try decodeJSONLine(type, Data(line.utf8), where: "c.jsonl:1"); return "accepted" } catch {
                return (error as? DistilError)?.message ?? "\(error)"
            }
        }
        let ok = "\"hotkey\":\"h\",\"repo\":\"a/b\""
        XCTAssertEqual(message("{\"uid\":-1,\"block\":5,\(ok)}"), "c.jsonl:1: field 'uid': -1 is not a uid (0...65535)")
        XCTAssertEqual(message("{\"uid\":65536,\"block\":5,\(ok)}"), "c.jsonl:1: field 'uid': 65536 is not a uid (0...65535)")
        XCTAssertEqual(message("{\"uid\":1,\"block\":-1,\(ok)}"), "c.jsonl:1: field 'block': -1 is negative")
        XCTAssertEqual(message("{\"uid\":18446744073709551616,\"block\":5,\(ok)}"),
                       "c.jsonl:1: field 'uid': 18446744073709551616 is out of the field's range")
        XCTAssertEqual(message("{\"uid\":1.5,\"block\":5,\(ok)}"), "c.jsonl:1: field 'uid': expected an integer, got 1.5")
        XCTAssertEqual(message("{\"uid\":1,\"block\":5e30,\(ok)}").hasPrefix("c.jsonl:1: field 'block': "), true)
        XCTAssertEqual(message("{\"uid\":1,\"block\":5,\"hotkey\":\"h\",\"repo\":\"\"}"), "c.jsonl:1: field 'repo': empty")
        XCTAssertEqual(message("{\"id\":\"x\",\"text\":\"t\",\"tokens\":[1,2.5]}", PromptRecord.self),
                       "c.jsonl:1: field 'tokens[1]': expected an integer, got 2.5")
        XCTAssertEqual(message("{\"uid\":1,\"block\":5,\"hotkey\":\"h\",\"repo\":\"a/b\",\"files\":[{\"name\":\"./x\",\"size\":1}],\"outcome\":\"ok\",\"tool\":\"t\"}", Manifest.self),
                       "c.jsonl:1: field 'files[0].name': unsafe file name './x' (would leave the snapshot folder)")
        XCTAssertEqual(message("{\"uid\":1,\"block\":5,\"hotkey\":\"h\",\"repo\":\"/m/a\",\"commit\":\"local\",\"path\":\"/m/b\",\"files\":[],\"outcome\":\"ok\",\"tool\":\"t\"}", Manifest.self),
                       "c.jsonl:1: field 'path': '/m/b' is not the committed directory '/m/a'")
        // Invalid UTF-8 inside a string, an overlong encoding, an encoded surrogate.
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80]] {
            let line = Array("{\"uid\":1,\"block\":5,\"hotkey\":\"h".utf8) + bad + Array("\",\"repo\":\"a/b\"}".utf8)
            XCTAssertThrowsError(try decodeJSONLine(Commitment.self, Data(line), where: "c.jsonl:1")) { e in
                XCTAssertEqual((e as? DistilError)?.message, "c.jsonl:1: not valid UTF-8 (byte 30)")
            }
        }
    }

    func testUnknownFieldsIgnoredAndOutputCanonical() throws {
        let line = "{\"zzz\":[1,2],\"uid\":3,\"hotkey\":\"h\",\"block\":9,\"repo\":\"x/y\",\"revision\":\"abc\"}"
        let c = try JSONLReader<Commitment>(MemoryReader(Array(line.utf8))).next()!
        XCTAssertEqual(c, Commitment(uid: 3, hotkey: "h", block: 9, repo: "x/y", revision: "abc"))
        XCTAssertEqual(String(decoding: try encodeJSON(c), as: UTF8.self),
                       "{\"block\":9,\"hotkey\":\"h\",\"repo\":\"x/y\",\"revision\":\"abc\",\"uid\":3}")
    }

    func testZstdJSONLIsSniffed() throws {
        let d = tempDir()
        let path = d + "/c.jsonl.zst"
        let raw = Array("{\"uid\":1,\"hotkey\":\"h\",\"block\":5,\"repo\":\"a/b\"}\n".utf8)
        try writeFileAtomically(path, try Zstd.compress(raw))
        let all = try JSONLReader<Commitment>(path: path).readAll()
        XCTAssertEqual(all.count, 1)
    }

    /// Every committed JSON-lines sample decodes as its record type.
    func testCommittedSamplesDecode() throws {
        XCTAssertEqual(try JSONLReader<Commitment>(path: samplePath("commitments.jsonl")).readAll().count, 3)
        XCTAssertEqual(try JSONLReader<Manifest>(path: samplePath("manifests.jsonl")).readAll().count, 3)
        let meta = try JSONLReader<Manifest>(path: samplePath("manifests-metadata-only.jsonl")).readAll()
        XCTAssertEqual(meta.count, 1)
        XCTAssertEqual(meta[0].metadata_only, true)
        XCTAssertEqual(meta[0].headers_path, "/var/lib/distil/headers/models--alice--distil-king/" + String(repeating: "a", count: 40))
        XCTAssertEqual(try encodeJSON(meta[0]) + [0x0A], try readFile(samplePath("manifests-metadata-only.jsonl")))
        // dl-fetch --stats: totals are the models' sums, and dl-fetch's encoding gives the bytes back.
        let stats = try decodeJSONFile(FetchStats.self, path: samplePath("fetch-stats.json"))
        XCTAssertEqual(stats.models.map(\.uid), [1, 2])
        XCTAssertEqual(stats, FetchStats(models: stats.models))
        XCTAssertEqual(try encodeJSON(stats) + [0x0A], try readFile(samplePath("fetch-stats.json")))
        XCTAssertEqual(try JSONLReader<CheckVerdict>(path: samplePath("checks.jsonl")).readAll().count, 3)
        let prompts = try JSONLReader<PromptRecord>(path: samplePath("prompts.jsonl")).readAll()
        XCTAssertEqual(prompts.count, 2)
        XCTAssertNotNil(prompts[1].tokens)
        let kl = try JSONLReader<KLRecord>(path: samplePath("kl.jsonl")).readAll()
        XCTAssertEqual(kl.count, 4)
        // dl-kl's output lines: KL records, or a model's one scoring-failure line (it has `fault`).
        XCTAssertEqual(try JSONLReader<KLLine>(path: samplePath("kl.jsonl")).readAll(), kl.map(KLLine.record))
        let failed = try JSONLReader<KLLine>(path: samplePath("kl-failed.jsonl")).readAll()
        guard failed.count == 1, case .failure(let f) = failed[0] else { return XCTFail("kl-failed.jsonl: \(failed)") }
        XCTAssertEqual([f.fault], [.miner])
        XCTAssertEqual(f.uid, 3)
        XCTAssertEqual(f.weights_sha256, "c4000cccbdf55da32db735610b411e37d0577f59a9125e78062c7f6dda51c139")
        XCTAssertEqual(f.teacher, kl[0].teacher)
        XCTAssertEqual(try encodeJSON(f) + [0x0A], try readFile(samplePath("kl-failed.jsonl")), "canonical bytes")
        for (line, problem) in [(#"{"fault":"theirs","message":"m","model":"x","tool":"t"}"#, "fault"),
                                (#"{"fault":"ours","message":"m","model":"x","tool":"t","uid":-1}"#, "field 'uid': -1 is not a uid"),
                                (#"{"fault":"ours","model":"x","tool":"t"}"#, "missing field 'message'")] {
            XCTAssertThrowsError(try JSONLReader<KLLine>(MemoryReader(Array(line.utf8), name: "f.jsonl")).next(), line) { e in
                XCTAssertTrue("\(e)".contains(problem), "\(e)")
            }
        }
        // Re-encoding a sample gives its bytes back (canonical output).
        let bytes = try readFile(samplePath("commitments.jsonl"))
        let m = MemoryWriter()
        let w = JSONLWriter(m)
        for c in try JSONLReader<Commitment>(path: samplePath("commitments.jsonl")).readAll() { try w.write(c) }
        XCTAssertEqual(m.bytes, bytes)
    }
}

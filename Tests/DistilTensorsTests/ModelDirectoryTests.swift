import DistilFormats
import DistilTensors
import Foundation
import XCTest

/// The one model-directory reader: its files, its JSON within the bound, a shard's header, metadata-only
/// headers kept apart.
final class ModelDirectoryTests: XCTestCase {
    func testFilesJSONAndHeadersOfADirectory() throws {
        let dir = NSTemporaryDirectory() + "distil-modeldir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = Array(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        var st = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        st += [UInt8](repeating: 0, count: 8)
        try writeFileAtomically(dir + "/model.safetensors", st)
        try writeFileAtomically(dir + "/config.json", Array(#"{"vocab_size": 7}"#.utf8))
        try writeFileAtomically(dir + "/sub/notes.json", Array("[1, 2]".utf8))
        try writeFileAtomically(dir + "/.hidden", Array("x".utf8))
        let d = ModelDirectory(dir)
        XCTAssertEqual(try d.files(), ["config.json", "model.safetensors", "sub/notes.json"])
        XCTAssertEqual(try d.jsonObject("config.json")["vocab_size"] as? Int, 7)
        XCTAssertThrowsError(try d.jsonObject("sub/notes.json")) { e in
            XCTAssertEqual((e as? DistilError)?.message, dir + "/sub/notes.json: not a JSON object")
        }
        XCTAssertNil(try d.jsonBytes("generation_config.json"))
        XCTAssertEqual(try d.jsonBytes("config.json"), Array(#"{"vocab_size": 7}"#.utf8))
        XCTAssertEqual(try d.weightShards(), ["model.safetensors"])
        XCTAssertEqual(try d.header("model.safetensors").tensors.map(\.name), ["t"])
        XCTAssertEqual(d.tokenizerFile, dir + "/tokenizer.json")
        // A metadata-only fetch: the header alone in another folder, bounded by the real file's size.
        try FileManager.default.createDirectory(atPath: dir + "/headers", withIntermediateDirectories: true)
        try writeFileAtomically(dir + "/headers/model.safetensors", Array(st.prefix(8 + json.count)))
        XCTAssertEqual(try d.header("model.safetensors", headersDir: dir + "/headers", listedSize: Int64(st.count)).tensors.count, 1)
        XCTAssertThrowsError(try d.header("model.safetensors", headersDir: dir + "/headers", listedSize: 20))
        // The shard index decides the weight files; it may name only files of this directory.
        try writeFileAtomically(dir + "/model.safetensors.index.json", Array(#"{"weight_map": {"t": "b.safetensors", "u": "a.safetensors"}}"#.utf8))
        XCTAssertEqual(try d.weightShards(), ["a.safetensors", "b.safetensors"])
        try writeFileAtomically(dir + "/model.safetensors.index.json", Array(#"{"weight_map": {"t": "../x.safetensors"}}"#.utf8))
        XCTAssertThrowsError(try d.weightShards()) { e in
            XCTAssertEqual((e as? DistilError)?.message, dir + "/model.safetensors.index.json: weight_map names a file outside the model directory: ../x.safetensors")
        }
        try writeFileAtomically(dir + "/model.safetensors.index.json", Array("[]".utf8))
        XCTAssertThrowsError(try d.weightShards()) { e in
            XCTAssertEqual((e as? DistilError)?.message, dir + "/model.safetensors.index.json: no weight_map object")
        }
        // A symlink out of the directory is refused.
        try FileManager.default.createSymbolicLink(atPath: dir + "/escape", withDestinationPath: "/etc/hostname")
        XCTAssertThrowsError(try d.files())
    }
}

/// The one header read: whatever reads the bytes (a file, a mapping, ranged Hub requests), the
/// length is bounded before the rest is asked for, and a small header costs one read.
final class HeaderBytesTests: XCTestCase {
    func testReadsTheAnnouncedBytesAndBoundsTheLengthFirst() throws {
        let json = Array(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        let file = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json + [0, 0, 0, 0]
        var asked: [Range<Int>] = []
        func reader(_ offset: Int, _ count: Int) throws -> [UInt8] {
            asked.append(offset..<(offset + count))
            return Array(file[offset..<min(file.count, offset + count)])
        }
        XCTAssertEqual(try SafetensorsHeader.headerBytes(name: "m", fileSize: Int64(file.count), read: reader), Array(file.prefix(8 + json.count)))
        XCTAssertEqual(asked, [0..<8, 8..<(8 + json.count)])
        asked = []
        XCTAssertEqual(try SafetensorsHeader.headerBytes(name: "m", fileSize: Int64(file.count), firstRead: file.count, read: reader), Array(file.prefix(8 + json.count)))
        XCTAssertEqual(asked, [0..<file.count], "a first read that holds the header is the only one")
        // A length beyond the file is refused before anything past the 8 bytes is read.
        asked = []
        var lying = file
        lying.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 20).littleEndian) { Array($0) })
        XCTAssertThrowsError(try SafetensorsHeader.headerBytes(name: "m", fileSize: Int64(file.count)) { o, c in asked.append(o..<(o + c)); return Array(lying[o..<(o + c)]) }) { e in
            XCTAssertEqual((e as? DistilError)?.message, "m: safetensors header length 1048576 is out of bounds: it exceeds the file (\(file.count) bytes)")
        }
        XCTAssertEqual(asked, [0..<8])
    }
}

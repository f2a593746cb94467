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
            XCTAssertEqual((e as? DistilError)?.message, "notes.json is not a JSON object")
        }
        XCTAssertEqual(try d.header("model.safetensors").tensors.map(\.name), ["t"])
        XCTAssertEqual(d.tokenizerFile, dir + "/tokenizer.json")
        // A metadata-only fetch: the header alone in another folder, bounded by the real file's size.
        try FileManager.default.createDirectory(atPath: dir + "/headers", withIntermediateDirectories: true)
        try writeFileAtomically(dir + "/headers/model.safetensors", Array(st.prefix(8 + json.count)))
        XCTAssertEqual(try d.header("model.safetensors", headersDir: dir + "/headers", listedSize: Int64(st.count)).tensors.count, 1)
        XCTAssertThrowsError(try d.header("model.safetensors", headersDir: dir + "/headers", listedSize: 20))
        // A symlink out of the directory is refused.
        try FileManager.default.createSymbolicLink(atPath: dir + "/escape", withDestinationPath: "/etc/hostname")
        XCTAssertThrowsError(try d.files())
    }
}

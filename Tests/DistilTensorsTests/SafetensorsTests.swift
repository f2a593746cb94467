import DistilFormats
import DistilTensors
import Foundation
import XCTest

/// Safetensors headers from bytes: valid ones parse, hostile ones are one clear error each.
final class SafetensorsTests: XCTestCase {
    func file(_ json: String, data: Int, headerLength: UInt64? = nil) -> [UInt8] {
        var h = Array(json.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + [UInt8](repeating: 0, count: data)
    }

    func parse(_ bytes: [UInt8]) throws -> SafetensorsHeader {
        try SafetensorsHeader.parse(bytes, name: "m.safetensors", fileSize: Int64(bytes.count))
    }

    func expectError(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try parse(bytes), line: line) { e in
            XCTAssertTrue("\(e)".hasPrefix("m.safetensors: "), "\(e)", line: line)
            XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
        }
    }

    func testValidHeader() throws {
        let h = try parse(file(#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"q":{"dtype":"F8_E4M3","shape":[0],"data_offsets":[32,32]}}"#, data: 32))
        XCTAssertEqual(h.tensors.map(\.name), ["a", "b", "q"])
        XCTAssertEqual(h.tensors[1].shape, [2, 3])
        XCTAssertEqual(h.tensors[2].dtype, "F8_E4M3", "unknown dtypes are kept by name")
        XCTAssertEqual(h.metadata["format"], "pt")
    }

    func testHostileHeaders() {
        expectError(file("{}", data: 0, headerLength: 1 << 63), "header length 9223372036854775808 is out of bounds")
        expectError(file("{}", data: 0, headerLength: 4096), "exceeds the file")
        expectError(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), "overlaps")
        expectError(file(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: 8), "ends at byte 16")
        expectError(file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8), "8 bytes for 3 F32 elements")
        expectError(file(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: 4), "bad dimension")
        expectError(file(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: 4), "bad dimension")
        expectError(file(#"{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}"#, data: 4), "overflows")
        expectError(file(#"[1,2,3]"#, data: 0), "not a JSON object")
        expectError(file(#"{"a":{"dtype":"F32"}}"#, data: 0), "needs dtype, shape and two data_offsets")
        expectError([1, 2, 3], "shorter than 8 bytes")
        // One tensor named twice (JSONSerialization would keep one entry silently), also when the
        // second spelling is escaped; "__metadata__" twice too. Equal names in nested objects are fine.
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "names 'a' twice")
        expectError(file(#"{"w\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"wé":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 4), "names 'wé' twice")
        expectError(file(#"{"__metadata__":{"x":"1"},"__metadata__":{"x":"2"}}"#, data: 0), "names '__metadata__' twice")
        XCTAssertNoThrow(try parse(file(#"{"__metadata__":{"dtype":"a","shape":"b"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 4)))
    }

    /// A FIFO in place of a weights file is refused at once (open() would otherwise wait for a writer).
    func testFIFOWeightsFileIsRefused() throws {
        let d = NSTemporaryDirectory() + "st-fifo-\(getpid())"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: d) }
        XCTAssertEqual(mkfifo(d + "/model.safetensors", 0o644), 0)
        XCTAssertThrowsError(try WeightStore(directory: d)) { e in XCTAssertTrue("\(e)".contains("is not a regular file"), "\(e)") }
    }

    func testWeightIdentitySurvivesResharding() throws {
        let d1 = NSTemporaryDirectory() + "st-\(getpid())-1", d2 = NSTemporaryDirectory() + "st-\(getpid())-2"
        for d in [d1, d2] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        defer { for d in [d1, d2] { try? FileManager.default.removeItem(atPath: d) } }
        func tensorFile(_ entries: [(String, [Float])]) -> [UInt8] {
            var json: [String] = [], data: [UInt8] = [], off = 0
            for (n, v) in entries {
                json.append("\"\(n)\":{\"dtype\":\"F32\",\"shape\":[\(v.count)],\"data_offsets\":[\(off),\(off + 4 * v.count)]}")
                for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                off += 4 * v.count
            }
            var h = Array("{\(json.joined(separator: ","))}".utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var out = [UInt8]()
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
            return out + h + data
        }
        try writeFileAtomically(d1 + "/model.safetensors", tensorFile([("x", [1, 2]), ("y", [3])]))
        try writeFileAtomically(d2 + "/a.safetensors", tensorFile([("y", [3])]))
        try writeFileAtomically(d2 + "/b.safetensors", tensorFile([("x", [1, 2])]))
        try writeFileAtomically(d2 + "/model.safetensors.index.json", Array(#"{"weight_map":{"x":"b.safetensors","y":"a.safetensors"}}"#.utf8))
        let one = try WeightStore(directory: d1), two = try WeightStore(directory: d2)
        XCTAssertEqual(one.identity(), two.identity())
        XCTAssertEqual(try two.float32("x", shape: [2]), [1, 2])
        XCTAssertThrowsError(try two.float32("x", shape: [3])) { e in XCTAssertTrue("\(e)".contains("the config implies [3]"), "\(e)") }
        try writeFileAtomically(d2 + "/model.safetensors.index.json", Array(#"{"weight_map":{"x":"../b.safetensors"}}"#.utf8))
        XCTAssertThrowsError(try WeightStore(directory: d2)) { e in XCTAssertTrue("\(e)".contains("outside the model directory"), "\(e)") }
    }
}

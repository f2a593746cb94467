import DistilCorpus
import DistilFormats
import Foundation
import XCTest

/// Fixtures written by scripts/dev/make_parquet_fixtures.py (pyarrow).
enum ParquetFixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/parquet").path

    static func path(_ name: String) -> String { "\(dir)/\(name).parquet" }

    /// Names of the readable shards (those with an expectation file).
    static func readable() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasSuffix(".expected.jsonl.zst") }
            .map { String($0.dropLast(".expected.jsonl.zst".count)) }
            .sorted()
    }

    /// pyarrow's values: one dictionary (column -> value) per row.
    static func expected(_ name: String) throws -> [[String: Expected]] {
        let bytes = try Zstd.decompress(try readFile("\(dir)/\(name).expected.jsonl.zst"), name: name)
        var rows: [[String: Expected]] = []
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            rows.append(try JSONDecoder().decode([String: Expected].self, from: Data(line)))
        }
        return rows
    }

    static func bytes(_ name: String) throws -> [UInt8] { try readFile(path(name)) }
}

/// One expected value as pyarrow's to_pylist() gives it, read back from JSON.
enum Expected: Decodable, Equatable {
    case null, string(String), int(Int64), double(Double), other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        self = .other
    }

    func matches(_ v: ParquetValue) -> Bool {
        switch (self, v) {
        case (.null, .null): return true
        case (.string(let a), .string(let b)): return Array(a.utf8) == Array(b.utf8)
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)): return Double(a) == b   // a double that JSON printed as an integer
        default: return false
        }
    }
}

/// An in-memory RandomAccessSource (fuzzing, damaged copies).
final class MemorySource: RandomAccessSource {
    let name: String
    let bytes: [UInt8]
    var size: Int64 { Int64(bytes.count) }
    init(_ bytes: [UInt8], name: String) { self.bytes = bytes; self.name = name }
    func read(offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, Int64(count) <= size - offset else {
            throw DistilError.input(name, "read of \(count) bytes at offset \(offset) is outside the file (\(size) bytes)")
        }
        return Array(bytes[Int(offset)..<(Int(offset) + count)])
    }
}

/// Wraps a source and records every read (offset, count).
final class CountingSource: RandomAccessSource {
    let inner: RandomAccessSource
    private(set) var reads: [(offset: Int64, count: Int)] = []
    var name: String { inner.name }
    var size: Int64 { inner.size }
    var bytesRead: Int { reads.reduce(0) { $0 + $1.count } }
    init(_ inner: RandomAccessSource) { self.inner = inner }
    func read(offset: Int64, count: Int) throws -> [UInt8] {
        reads.append((offset, count))
        return try inner.read(offset: offset, count: count)
    }
}

/// Every value of every column of a file, read through `ParquetFile`.
func readAllColumns(_ file: ParquetFile, columns: [String]) throws -> [[String: ParquetValue]] {
    var rows = [[String: ParquetValue]](repeating: [:], count: file.rowCount)
    for name in columns {
        let info = try file.column(named: name)
        for g in 0..<file.rowGroupCount {
            let data = try file.read(column: info, rowGroup: g)
            XCTAssertEqual(data.count, file.rowGroupRows[g])
            for i in 0..<data.count { rows[file.rowGroupStarts[g] + i][name] = data.value(i) }
        }
    }
    return rows
}

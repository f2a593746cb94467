import DistilFormats
import Foundation

/// dl-prompts cat: every row's value of one column, as {"COLUMN": value} lines in file order.
public enum ColumnDump {
    /// One output line: {"COLUMN": value}.
    public struct Line: Encodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        public let key: String
        public let value: ParquetValue
        public init(key: String, value: ParquetValue) { self.key = key; self.value = value }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(value, forKey: Key(stringValue: key))
        }
    }

    /// Parquet shards can name any flat BYTE_ARRAY, INT32, INT64, FLOAT or DOUBLE column; JSONL
    /// shards only "text".
    public static func run(shards: [String], column: String, into w: JSONLWriter) throws {
        for s in try Corpus.shards(shards) {
            if let p = s as? ParquetShard {
                try p.forEachValue(column: column) { _, data, i in try w.write(Line(key: column, value: data.value(i))) }
            } else {
                guard column == "text" else { throw DistilError.input(s.name, "--column \(column): JSONL shards are read for \"text\" only") }
                try s.forEachText { _, t in try w.write(Line(key: column, value: t.map(ParquetValue.string) ?? .null)) }
            }
        }
    }
}

import DistilFormats
import DistilTokenizer
import Foundation

/// dl-teacher inspect: a teacher stream as JSON lines, the header then one line per prompt with the
/// teacher's best tokens at each continuation position.
public enum TeacherInspect {
    /// One prompt of the stream, for people and jq.
    public struct Line: Codable, Equatable {
        public var id: String
        public var prompt_tokens: [Int]
        public var continuation_tokens: [Int]
        public var continuation_text: String?
        public var finish: String
        /// Per position: [[token id, log-prob], ...] best first.
        public var top: [[[Double]]]
    }

    /// The `k` (at least 1) best token ids of a row, best first; equal values by lower id, so the
    /// listing is the same on every machine. Log-probs are rounded to 4 decimals for reading.
    public static func top(_ row: [Float], k: Int) -> [[Double]] {
        let best = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(max(1, k))
        return best.map { [Double($0), (Double(row[$0]) * 1e4).rounded() / 1e4] }
    }

    /// Writes the header and every prompt of `stream` to `out`.
    public static func run(stream: String, tokenizer: Tokenizer?, top k: Int, into out: JSONLWriter) throws {
        let r = try TeacherStreamReader(path: stream)
        try out.write(r.header)
        let v = r.header.vocab_size
        var row = [Float](repeating: 0, count: v)
        while let p = try r.nextPrompt() {
            var tops: [[[Double]]] = []
            while try row.withUnsafeMutableBufferPointer({ try r.readRows(into: $0.baseAddress!, maxRows: 1) }) == 1 {
                tops.append(top(row, k: k))
            }
            try out.write(Line(id: p.id, prompt_tokens: p.prompt_tokens, continuation_tokens: p.continuation_tokens,
                               continuation_text: tokenizer?.decode(p.continuation_tokens), finish: p.finish, top: tops))
        }
    }
}

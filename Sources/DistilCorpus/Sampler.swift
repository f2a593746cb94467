import DistilFormats
import Foundation

/// How prompts are drawn (docs/FORMATS.md, "Prompt sampling").
public struct SamplingOptions: Sendable {
    public var count = 40
    /// Texts shorter than this (in Unicode scalars, after cleaning) are skipped.
    public var minChars = 200
    /// Longer texts are cut at the last whitespace at or before this many scalars.
    public var maxChars = 2000
    /// Attempts allowed per prompt before giving up.
    public var attemptsPerPrompt = 50
    public init() {}
}

/// Draws prompts deterministically from a block hash: the same corpus, block and hash give
/// byte-identical prompts on any machine.
///
/// rng = DistilRNG(domain: "prompts", seed: "HASH/BLOCK"); each draw picks a shard with
/// nextInt(below: shards) and then a row with nextInt(below: rows of that shard). A row already
/// drawn, a text shorter than minChars after cleaning, or a mostly-binary text is skipped (the
/// draw is spent; the next draw follows). Cleaning removes NUL and control characters other than
/// "\n" and "\t" (and U+FFFD replacement characters). Prompt k gets the id "BLOCK-KK".
///
/// The draw is the same for every shard format. For a parquet shard the row count comes from
/// the footer (no data read), `row` is the row's index within the whole shard (0-based, over
/// all row groups in file order, like a JSONL line number) and `row_group` names the row group
/// holding it; only that row group's text column chunk is read.
public struct PromptSampler {
    public let shards: [CorpusShard]
    public let options: SamplingOptions

    public init(shards: [CorpusShard], options: SamplingOptions) {
        self.shards = shards
        self.options = options
    }

    public func sample(block: Int, seed: String, blockHash: String?) throws -> [PromptRecord] {
        guard !shards.isEmpty else { throw DistilError.input("corpus", "no shards") }
        var rng = DistilRNG(domain: "prompts", seed: seed)
        var counts: [Int?] = Array(repeating: nil, count: shards.count)
        var seen = Set<[Int]>()
        var out: [PromptRecord] = []
        var attempts = 0
        let maxAttempts = options.count * options.attemptsPerPrompt
        while out.count < options.count {
            attempts += 1
            if attempts > maxAttempts {
                throw DistilError.input(shards.map(\.name).joined(separator: ","),
                                        "only \(out.count) usable texts in \(maxAttempts) draws (need \(options.count) of at least \(options.minChars) characters)")
            }
            let s = rng.nextInt(below: shards.count)
            if counts[s] == nil { counts[s] = try shards[s].rowCount() }
            let rows = counts[s]!
            guard rows > 0 else { continue }
            let row = rng.nextInt(below: rows)
            guard seen.insert([s, row]).inserted else { continue }
            guard let raw = try shards[s].text(row: row), let text = PromptSampler.clean(raw, options: options) else { continue }
            let k = out.count
            out.append(PromptRecord(id: "\(block)-\(k < 10 ? "0" : "")\(k)", text: text,
                                    source: PromptSource(shard: shards[s].name, rowGroup: try shards[s].rowGroup(ofRow: row), row: row),
                                    block: block,
                                    blockHash: blockHash.map(DistilRNG.normalizeHex)))
        }
        return out
    }

    /// Cleans a text; nil when it is unusable (too short, or mostly binary).
    public static func clean(_ raw: String, options: SamplingOptions) -> String? {
        var scalars: [Unicode.Scalar] = []
        var dropped = 0
        for s in raw.unicodeScalars {
            let v = s.value
            let control = (v < 0x20 && v != 0x0A && v != 0x09) || v == 0x7F || (v >= 0x80 && v < 0xA0) || v == 0xFFFD
            if control { dropped += 1 } else { scalars.append(s) }
        }
        // Mostly binary: more than 10% of the scalars were control characters.
        if dropped * 10 > scalars.count + dropped { return nil }
        if scalars.count > options.maxChars {
            var cut = options.maxChars
            while cut > 0 && !scalars[cut].properties.isWhitespace { cut -= 1 }
            if cut == 0 { cut = options.maxChars }
            scalars.removeSubrange(cut...)
        }
        // Trailing whitespace of a cut or a document is dropped (the teacher continues from the last word).
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        guard scalars.count >= options.minChars else { return nil }
        return String(String.UnicodeScalarView(scalars))
    }
}

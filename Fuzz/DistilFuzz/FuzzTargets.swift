import DistilCheck
import DistilCorpus
import DistilFormats
import DistilHub
import DistilModel
import DistilScore
import DistilTensors
import DistilTokenizer
import Foundation

/// One parser of untrusted bytes, as the fuzzer (Fuzz/fuzz-distil) and the corpus replay test
/// (Tests/DistilFuzzTests) call it: any input may be refused with a thrown error; a trap, a crash
/// or a sanitizer report is a bug.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What it parses (docs/RELIABILITY.md lists the same).
    public let covers: String
    let body: @Sendable (UnsafeRawBufferPointer) throws -> Void

    /// Runs the parser on `bytes`; errors it throws are the expected outcome for bad input.
    public func run(_ bytes: UnsafeRawBufferPointer) {
        do { try body(bytes) } catch {}
    }

    public func run(_ bytes: [UInt8]) { bytes.withUnsafeBytes { run($0) } }

    /// The parser's own outcome (tests: a valid input must get through the whole path).
    public func outcome(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try body($0) } }
}

public enum FuzzTargets {
    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "safetensors-header", covers: "SafetensorsHeader.parse: length, JSON, entries, offsets, duplicate keys") { b in
            _ = try SafetensorsHeader.parse(Array(b), name: "fuzz.safetensors", fileSize: Int64(b.count))
        },
        FuzzTarget(name: "model-config", covers: "config.json: ModelConfig.parse, then ExpectedTensors (dl-check's tensor list)") { b in
            guard let top = try? JSONSerialization.jsonObject(with: Data(b)) as? [String: Any] else { return }
            let c = try ModelConfig.parse(top, path: "config.json")
            _ = try ExpectedTensors(config: c, names: [])
        },
        FuzzTarget(name: "engine-config", covers: "config.json through the engine's load path: parse, then (when it implies at most 300k parameters) weights written for it, LanguageModel.load and a forward pass") { b in
            guard let top = try? JSONSerialization.jsonObject(with: Data(b)) as? [String: Any] else { return }
            let c = try ModelConfig.parse(top, path: "config.json")
            let expected = try ExpectedTensors(config: c, names: [])
            guard expected.parameters <= 300_000, expected.count <= 2_000 else { return }
            let dir = try Scratch.directory(files: ["config.json": Array(b), "model.safetensors": Scratch.safetensors(expected)])
            let lm = try LanguageModel.load(directory: dir, threads: 1)
            let tokens = (0..<5).map { $0 * 7 % c.vocabSize }
            try lm.forward(tokens: tokens, logitsFrom: 2, chunkRows: 2) { _, _, _ in }
        },
        FuzzTarget(name: "generation-config", covers: "generation_config.json and config.json special ids (ModelDirectory.specialTokenIDs)") { b in
            let dir = try Scratch.directory(files: ["generation_config.json": Array(b)])
            _ = try ModelDirectory(dir).specialTokenIDs(tokenizer: Scratch.tokenizer())
        },
        FuzzTarget(name: "tokenizer-json", covers: "tokenizer.json: JSONValue, BPE model, pre-tokenizer regex, added tokens; then an encode") { b in
            let t = try Tokenizer(json: Array(b), name: "tokenizer.json")
            _ = t.encode("Hello, world! 123 \u{00e9}\u{4e2d}\n<|im_end|>")
        },
        FuzzTarget(name: "tokenizer-config", covers: "tokenizer_config.json: added_tokens_decoder, special ids, chat_template (dl-check's comparison form)") { b in
            let dir = try Scratch.directory(files: ["tokenizer_config.json": Array(b)])
            _ = try? ModelDirectory(dir).specialTokenIDs(tokenizer: Scratch.tokenizer())
            if let t = Checker.chatTemplate(directory: dir) { _ = Checker.normalizeTemplate(t) }
        },
        FuzzTarget(name: "parquet", covers: "a parquet file: footer (Thrift), schema, row groups, page headers, PLAIN/dictionary/RLE, snappy and zstd pages, CRCs") { b in
            let f = try ParquetFile(source: MemorySource(Array(b)), limits: Scratch.parquetLimits)
            for g in 0..<f.rowGroupRows.count {
                for c in f.columns where !c.isGroup {
                    let d = try f.read(column: c, rowGroup: g)
                    for i in 0..<min(d.count, 64) { _ = d.value(i) }
                }
            }
        },
        FuzzTarget(name: "snappy", covers: "Snappy.decompress (a raw block; output size from its own header, at most 1 MiB)") { b in
            let (n, _) = try Snappy.declaredLength(b)
            guard n <= 1 << 20 else { return }
            var out = [UInt8](repeating: 0, count: n)
            try out.withUnsafeMutableBytes { try Snappy.decompress(b, into: $0) }
        },
        FuzzTarget(name: "jsonl", covers: "every JSON-lines record type (first byte picks it): commitment, manifest, check verdict, prompt, KL record, judge state, registry") { b in
            guard let first = b.first else { return }
            let rest = MemoryReader(Array(b.dropFirst()), name: "fuzz.jsonl")
            switch first % 7 {
            case 0: _ = try JSONLReader<Commitment>(rest).readAll()
            case 1: _ = try JSONLReader<Manifest>(rest).readAll()
            case 2: _ = try JSONLReader<CheckVerdict>(rest).readAll()
            case 3: _ = try JSONLReader<PromptRecord>(rest).readAll()
            case 4: _ = try JSONLReader<KLRecord>(rest).readAll()
            case 5: _ = try decodeJSONLine(JudgeState.self, Data(b.dropFirst()), where: "state.json")
            default: _ = try decodeJSONLine(Registry.self, Data(b.dropFirst()), where: "registry.json")
            }
        },
        FuzzTarget(name: "teacher-stream", covers: "the teacher stream (raw records, or zstd-framed when it starts with the zstd magic): records, CRCs, rows, mass check, trailer") { b in
            let raw = MemoryReader(Array(b), name: "fuzz.dlt")
            let input: ByteReader = Array(b.prefix(4)) == zstdMagic ? ZstdReader(raw) : raw
            let r = try TeacherStreamReader(input)
            var buf = [Float](repeating: 0, count: r.header.vocab_size * 4)
            while try r.nextPrompt() != nil {
                while try buf.withUnsafeMutableBufferPointer({ try r.readRows(into: $0.baseAddress!, maxRows: 4) }) > 0 {}
            }
        },
        FuzzTarget(name: "hub-json", covers: "the Hub's tree listing (HubClient.parseListing) and huggingface_hub's cached trees/<commit>.json") { b in
            guard let first = b.first else { return }
            let body = Array(b.dropFirst())
            let repo = try RepoRef("org/name", revision: "main")
            if first & 1 == 0 {
                _ = try HubClient.parseListing(body, repo: repo)
            } else {
                let root = try Scratch.directory(files: [:])
                let cache = RepoCache(root: root, repo: repo)
                let commit = String(repeating: "a", count: 40)
                try FileManager.default.createDirectory(atPath: (cache.tree(commit) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Scratch.writePlain(cache.tree(commit), body)
                _ = cache.cachedTree(commit)
            }
        },
        FuzzTarget(name: "http-headers", covers: "response headers as received (name: value lines): Retry-After (seconds, HTTP date), RateLimit, RateLimit-Reset, X-RateLimit-Reset, ETag, Content-Range") { b in
            var headers: [String: String] = [:]
            for line in String(decoding: b, as: UTF8.self).split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...])
            }
            let r = HTTPResponse(status: 429, headers: headers, url: "https://huggingface.co/x")
            _ = RetryPolicy.requestedWait(r, now: Date(timeIntervalSince1970: 1_700_000_000))
            _ = HubClient.contentRangeStart(headers["content-range"])
            _ = HubClient.contentRangeTotal(headers["content-range"])
            if let e = headers["etag"] { _ = RepoCache.validate(etag: e.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))) }
        },
    ]
}

/// An in-memory `RandomAccessSource` (the parquet target).
final class MemorySource: RandomAccessSource {
    let bytes: [UInt8]
    let name = "fuzz.parquet"
    var size: Int64 { Int64(bytes.count) }
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= Int64(bytes.count), Int64(count) <= Int64(bytes.count) - offset else {
            throw DistilError.input(name, "read of \(count) bytes at \(offset) outside the \(bytes.count)-byte source")
        }
        return Array(bytes[Int(offset)..<(Int(offset) + count)])
    }
}

/// What the file-based targets share: one scratch folder per process, the demo tokenizer.
enum Scratch {
    nonisolated(unsafe) static var dir: String?
    nonisolated(unsafe) static var cachedTokenizer: Tokenizer?
    static let parquetLimits: ParquetLimits = {
        var l = ParquetLimits()
        l.maxChunkBytes = 16 << 20; l.maxRowsPerRowGroup = 1 << 16; l.threads = 1
        return l
    }()

    /// The scratch folder holding exactly `files` (config names are fixed, so earlier inputs'
    /// files are removed first).
    static func directory(files: [String: [UInt8]]) throws -> String {
        let d = dir ?? {
            let d = NSTemporaryDirectory() + "distil-fuzz-\(getpid())"
            try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            dir = d
            atexit { if let d = Scratch.dir { try? FileManager.default.removeItem(atPath: d) } }
            return d
        }()
        for n in ["generation_config.json", "tokenizer_config.json", "config.json", "chat_template.jinja", "model.safetensors"] { unlink(d + "/" + n) }
        // Plain writes: the atomic writer's fsync would cost more than the parse.
        for (n, b) in files { try writePlain(d + "/" + n, b) }
        return d
    }

    /// A safetensors file holding every expected tensor in F32, small deterministic values. The
    /// harness's own cost per input: the values are one precomputed pattern copied per tensor and the
    /// header is written directly (tensor names come from ExpectedTensors: no character needs escaping),
    /// so the fuzzer's time goes to the engine's load and forward pass, not to making its input.
    static func safetensors(_ e: ExpectedTensors) throws -> [UInt8] {
        var header = "{", offset = 0
        e.forEach { name, shape in
            let n = shape.reduce(1, *)
            if header.utf8.count > 1 { header += "," }
            header += "\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + 4 * n)]}"
            offset += 4 * n
        }
        header += "}"
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        out.reserveCapacity(out.count + offset)
        e.forEach { _, shape in
            var left = 4 * shape.reduce(1, *)
            while left > 0 {
                let k = min(left, pattern.count)
                out.append(contentsOf: pattern[0..<k])
                left -= k
            }
        }
        return out
    }

    /// 64 KiB of little-endian F32 values in ±0.05: every tensor starts with these, repeated.
    static let pattern: [UInt8] = (0..<16_384).flatMap { i in
        withUnsafeBytes(of: Float(sin(Double(i) * 0.7) * 0.05).bitPattern.littleEndian) { Array($0) }
    }

    static func writePlain(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DistilError.input(path, "cannot create the scratch file") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw DistilError.input(path, "cannot write the scratch file")
        }
    }

    /// The demo's tokenizer (repository root: the fuzzer and the tests run from there or below).
    static func tokenizer() throws -> Tokenizer {
        if let t = cachedTokenizer { return t }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let t = try Tokenizer.load(path: repo.appendingPathComponent("demo/tokenizer.json").path)
        cachedTokenizer = t
        return t
    }
}

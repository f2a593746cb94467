import DistilKernels
import Foundation

/// The teacher stream (`*.dlt`): what dl-teacher writes and dl-kl reads. See docs/FORMATS.md.
///
/// A zstd stream whose decompressed bytes are the magic `DLTEACH1` followed by records:
///
///     kind    4 bytes ASCII: "HEAD", "PRMT", "ROWS" or "DONE"
///     length  u64 little-endian, the payload's byte count (bounded per kind before allocating)
///     payload
///     crc     u32 little-endian, CRC-32 (zlib's) of kind, length and payload
///
/// HEAD (first, once): JSON `TeacherHeader`. PRMT: JSON `TeacherPrompt`, followed by ROWS records
/// holding exactly `continuation_tokens.count` rows for it, in order. ROWS: u32 first row index
/// within the prompt, u32 row count, then that many rows, each encoded as `value_dtype`
/// "f16+f32top": vocab_size IEEE binary16 natural-log probabilities (the full vocabulary), then
/// u32 n and n pairs (u32 token id, f32 log-prob) giving the exact value of every token whose
/// log-prob exceeds -12 (at most 4096, the most probable; ids strictly increasing). The exact
/// entries carry nearly all of the probability mass, so the KL error of the encoding is ~1e-6
/// relative where plain f16 gives ~1e-3 (docs/FORMATS.md has the measurement). DONE (last, once): JSON
/// `TeacherTrailer` with the counts, so a stream cut at a record boundary is still detected.
public enum TeacherStream {
    public static let magic: [UInt8] = Array("DLTEACH1".utf8)
    public static let format = "distil-teacher/1"
    /// Rows per ROWS record (about 8 MB at vocab 248,320 in f16).
    public static let rowsPerRecord = 16
    /// Tokens with a log-prob above this are also stored exactly (f32).
    public static let exactThreshold: Float = -12
    /// At most this many exact entries per row.
    public static let maxExact = 4096
    /// libzstd worker threads of the writer: compression (~2 bytes per vocabulary entry per row)
    /// off the generating thread.
    public static let compressionWorkers: Int32 = 2
    public static let valueDType = "f16+f32top"
    static let maxJSONRecord = 64 << 20
    /// A row's probabilities (exp of its log-probs, exact entries applied) must sum to 1 within
    /// this: the binary16 rounding of the tail moves the sum by at most ~0.004 (spacing 2^-7 at
    /// |log p| in 8...16, where every value outside the exact entries lies), so a row outside
    /// [0.99, 1.01] was not made from log-probabilities. See docs/FORMATS.md.
    public static let massTolerance = 0.01
}

/// Generation settings recorded in the header.
public struct GenerationSettings: Codable, Equatable, Sendable {
    public var max_new_tokens: Int
    /// 0 means greedy.
    public var temperature: Double
    public var top_p: Double
    /// Seed string for DistilRNG (domain "sample"), or nil when greedy.
    public var seed: String?
    public init(maxNewTokens: Int, temperature: Double, topP: Double, seed: String?) {
        max_new_tokens = maxNewTokens; self.temperature = temperature; top_p = topP; self.seed = seed
    }
}

/// The stream's provenance and shape.
public struct TeacherHeader: Codable, Equatable, Sendable {
    public var format: String
    public var teacher: TeacherRef
    public var tokenizer_sha256: String?
    public var generation: GenerationSettings
    public var vocab_size: Int
    /// "f16+f32top": f16 log-probabilities plus exact f32 values for the probable tokens.
    public var value_dtype: String
    public var n_prompts: Int
    public var tool: String
    public init(teacher: TeacherRef, tokenizerSHA256: String?, generation: GenerationSettings, vocabSize: Int, nPrompts: Int) {
        format = TeacherStream.format; self.teacher = teacher; tokenizer_sha256 = tokenizerSHA256
        self.generation = generation; vocab_size = vocabSize; value_dtype = TeacherStream.valueDType; n_prompts = nPrompts
        tool = DistilVersion.tool
    }
}

/// One prompt of the stream: its tokens and the teacher's continuation.
public struct TeacherPrompt: Codable, Equatable, Sendable {
    public var id: String
    public var prompt_tokens: [Int]
    public var continuation_tokens: [Int]
    /// "eos" or "length".
    public var finish: String
    public init(id: String, promptTokens: [Int], continuationTokens: [Int], finish: String) {
        self.id = id; prompt_tokens = promptTokens; continuation_tokens = continuationTokens; self.finish = finish
    }
}

public struct TeacherTrailer: Codable, Equatable, Sendable {
    public var n_prompts: Int
    public var n_rows: Int
}

// MARK: - Writer

/// Writes a teacher stream. Rows are converted to f16 and grouped into ROWS records.
public final class TeacherStreamWriter {
    let out: ByteWriter
    public let header: TeacherHeader
    var pending: [UInt8] = []
    var pendingRows = 0
    var pendingFirst = 0
    var expectedRows = 0
    var rowsWritten = 0
    var promptsWritten = 0
    var totalRows = 0

    /// `out` receives the compressed stream (wrap a FileWriter; this class adds zstd). Compression
    /// runs on `workers` libzstd threads beside the caller (the engine keeps generating while a
    /// batch's rows are compressed); the bytes are the same for any `workers` ≥ 1 (ZstdWriter).
    public init(_ sink: ByteWriter, header: TeacherHeader, level: Int32 = 3, workers: Int32 = TeacherStream.compressionWorkers) throws {
        out = ZstdWriter(sink, level: level, workers: workers)
        self.header = header
        try out.write(TeacherStream.magic)
        try writeRecord("HEAD", encodeJSON(header))
    }

    func writeRecord(_ kind: String, _ payload: [UInt8]) throws {
        try payload.withUnsafeBytes { try writeRecord(kind, parts: [$0]) }
    }

    func writeRecord(_ kind: String, parts: [UnsafeRawBufferPointer]) throws {
        var head = Array(kind.utf8)
        precondition(head.count == 4)
        let len = UInt64(parts.reduce(0) { $0 + $1.count })
        withUnsafeBytes(of: len.littleEndian) { head.append(contentsOf: $0) }
        var crc = head.withUnsafeBytes { CRC32.update(0, $0) }
        try out.write(head)
        for p in parts { crc = CRC32.update(crc, p); try out.write(p) }
        try withUnsafeBytes(of: crc.littleEndian) { try out.write($0) }
    }

    /// Starts a prompt; exactly `continuation_tokens.count` rows must follow.
    public func beginPrompt(_ p: TeacherPrompt) throws {
        guard rowsWritten == expectedRows else {
            throw DistilError("teacher stream: previous prompt got \(rowsWritten) of \(expectedRows) rows", kind: .runtime)
        }
        try writeRecord("PRMT", encodeJSON(p))
        expectedRows = p.continuation_tokens.count
        rowsWritten = 0
        pendingFirst = 0
        promptsWritten += 1
    }

    /// Appends the next row (normalised log-probs, vocab_size values) of the current prompt.
    public func writeRow(_ logProbs: UnsafePointer<Float>) throws {
        try writeEncodedRow(TeacherStreamWriter.encodeRow(logProbs, vocab: header.vocab_size))
    }

    /// Encodes one row as the stream stores it (f16 values, then the exact entries), so a caller
    /// can hold rows compactly (dl-teacher buffers a batch's rows until each prompt is complete).
    public static func encodeRow(_ logProbs: UnsafePointer<Float>, vocab v: Int) -> [UInt8] {
        var exact: [(Int, Float)] = []
        for i in 0..<v where logProbs[i] > TeacherStream.exactThreshold { exact.append((i, logProbs[i])) }
        if exact.count > TeacherStream.maxExact { exact = mostProbable(exact, TeacherStream.maxExact) }
        var out = [UInt8](repeating: 0, count: v * 2 + 4 + exact.count * 8)
        out.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            for i in 0..<v { p.storeBytes(of: Binary16.bits(logProbs[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            p.storeBytes(of: UInt32(exact.count).littleEndian, toByteOffset: 2 * v, as: UInt32.self)
            for (k, (id, value)) in exact.enumerated() {
                p.storeBytes(of: UInt32(id).littleEndian, toByteOffset: 2 * v + 4 + 8 * k, as: UInt32.self)
                p.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 2 * v + 8 + 8 * k, as: UInt32.self)
            }
        }
        return out
    }

    /// The `count` most probable of `entries` (ids increasing), ties by lower id, in id order: all
    /// values above the count-th largest value τ, then the lowest ids holding τ. The same entries
    /// as sorting by (value desc, id asc) and keeping the first `count`, without the sort: a row of
    /// a flat distribution has ~10^5 entries above the threshold, and sorting them cost ~20 ms a row.
    static func mostProbable(_ entries: [(Int, Float)], _ count: Int) -> [(Int, Float)] {
        var values = entries.map(\.1)
        let tau = largest(&values, rank: count)
        var ties = count - entries.reduce(0) { $0 + ($1.1 > tau ? 1 : 0) }
        var kept: [(Int, Float)] = []
        kept.reserveCapacity(count)
        for e in entries where e.1 > tau || (e.1 == tau && ties > 0) {
            if e.1 == tau { ties -= 1 }
            kept.append(e)
        }
        return kept
    }

    /// The rank-th largest of `v` (rank 1 = the largest; v has no NaN), reordering v: quickselect
    /// with a median-of-three pivot, finishing by a sort if a range shrinks too slowly.
    static func largest(_ v: inout [Float], rank: Int) -> Float {
        var lo = 0, hi = v.count - 1
        let target = rank - 1               // index in descending order
        var rounds = 0
        while lo < hi {
            rounds += 1
            if rounds > 64 {
                v[lo...hi].sort(by: >)
                return v[target]
            }
            let mid = lo + (hi - lo) / 2
            let pivot = max(min(v[lo], v[mid]), min(max(v[lo], v[mid]), v[hi]))
            var i = lo, j = hi
            while i <= j {
                while v[i] > pivot { i += 1 }
                while v[j] < pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return v[target] }
        }
        return v[target]
    }

    /// Appends a row made by `encodeRow`.
    public func writeEncodedRow(_ row: [UInt8]) throws {
        guard rowsWritten + pendingRows < expectedRows else {
            throw DistilError("teacher stream: more rows than continuation tokens", kind: .runtime)
        }
        pending.append(contentsOf: row)
        pendingRows += 1
        if pendingRows == TeacherStream.rowsPerRecord || rowsWritten + pendingRows == expectedRows { try flushRows() }
    }

    func flushRows() throws {
        if pendingRows == 0 { return }
        var prefix = [UInt8]()
        withUnsafeBytes(of: UInt32(pendingFirst).littleEndian) { prefix.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(pendingRows).littleEndian) { prefix.append(contentsOf: $0) }
        try prefix.withUnsafeBytes { pre in
            try pending.withUnsafeBytes { rows in try writeRecord("ROWS", parts: [pre, rows]) }
        }
        rowsWritten += pendingRows
        totalRows += pendingRows
        pendingFirst = rowsWritten
        pendingRows = 0
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the trailer and closes the stream (the file appears only now).
    public func finish() throws {
        try flushRows()
        guard rowsWritten == expectedRows else {
            throw DistilError("teacher stream: last prompt got \(rowsWritten) of \(expectedRows) rows", kind: .runtime)
        }
        try writeRecord("DONE", encodeJSON(TeacherTrailer(n_prompts: promptsWritten, n_rows: totalRows)))
        try out.close()
    }
}

// MARK: - Reader

/// Reads a teacher stream record by record; every record's length is bounded before allocating
/// and its CRC checked before use. Truncation, corruption, a wrong magic, rows that do not match
/// their prompt, and a missing trailer are all errors naming the input.
public final class TeacherStreamReader {
    let input: ByteReader
    public let header: TeacherHeader
    public var name: String { input.name }
    var current: TeacherPrompt?
    var rowsRead = 0
    var promptsRead = 0
    var totalRows = 0
    var done = false
    // The current ROWS record's payload and the byte offset of its next row.
    var rowPayload: [UInt8] = []
    var rowBufRows = 0
    var rowBufNext = 0
    var rowOffset = 0
    var peeked: (String, [UInt8])?
    var massScratch: [Float] = []

    public convenience init(path: String) throws { try self.init(openInput(path)) }

    public init(_ input: ByteReader) throws {
        self.input = input
        var m = [UInt8](repeating: 0, count: 8)
        let ok = try m.withUnsafeMutableBytes { try input.readExactly(into: $0, what: "the magic") }
        guard ok else { throw DistilError.input(input.name, "empty teacher stream") }
        guard m == TeacherStream.magic else {
            throw DistilError.input(input.name, "not a teacher stream (wrong magic; expected DLTEACH1 inside zstd)")
        }
        guard let (kind, payload) = try TeacherStreamReader.readRecord(input, vocab: nil) else {
            throw DistilError.input(input.name, "truncated: no header record")
        }
        guard kind == "HEAD" else { throw DistilError.input(input.name, "first record is \(kind), expected HEAD") }
        let h = try decodeJSONLine(TeacherHeader.self, Data(payload), where: "\(input.name): header")
        guard h.format == TeacherStream.format else {
            throw DistilError.input(input.name, "unsupported format '\(h.format)' (this tool reads \(TeacherStream.format))")
        }
        guard h.value_dtype == TeacherStream.valueDType else { throw DistilError.input(input.name, "unsupported value_dtype '\(h.value_dtype)'") }
        guard h.vocab_size > 0, h.vocab_size <= 4_000_000 else {
            throw DistilError.input(input.name, "implausible vocab_size \(h.vocab_size)")
        }
        header = h
    }

    static func readRecord(_ input: ByteReader, vocab: Int?) throws -> (String, [UInt8])? {
        var head = [UInt8](repeating: 0, count: 12)
        let ok = try head.withUnsafeMutableBytes { try input.readExactly(into: $0, what: "a record header") }
        if !ok { return nil }
        let kind = String(decoding: head[0..<4], as: UTF8.self)
        var len: UInt64 = 0
        for i in 0..<8 { len |= UInt64(head[4 + i]) << (8 * UInt64(i)) }
        let limit: UInt64
        switch kind {
        case "HEAD", "PRMT", "DONE": limit = UInt64(TeacherStream.maxJSONRecord)
        case "ROWS":
            guard let vocab else { throw DistilError.input(input.name, "ROWS record before the header") }
            limit = 8 + UInt64(TeacherStream.rowsPerRecord) * (UInt64(vocab) * 2 + 4 + UInt64(TeacherStream.maxExact) * 8)
        default:
            throw DistilError.input(input.name, "corrupt stream: unknown record kind \(head[0..<4].map { String(format: "%02x", $0) }.joined())")
        }
        guard len <= limit else { throw DistilError.input(input.name, "corrupt stream: \(kind) record of \(len) bytes exceeds its \(limit)-byte bound") }
        var payload = [UInt8](repeating: 0, count: Int(len))
        if len > 0 {
            let got = try payload.withUnsafeMutableBytes { try input.readExactly(into: $0, what: "a \(kind) record") }
            if !got { throw DistilError.input(input.name, "truncated: input ends inside a \(kind) record") }
        }
        var crcBytes = [UInt8](repeating: 0, count: 4)
        let got = try crcBytes.withUnsafeMutableBytes { try input.readExactly(into: $0, what: "a record checksum") }
        if !got { throw DistilError.input(input.name, "truncated: input ends before a \(kind) record's checksum") }
        let stored = UInt32(crcBytes[0]) | UInt32(crcBytes[1]) << 8 | UInt32(crcBytes[2]) << 16 | UInt32(crcBytes[3]) << 24
        var crc = head.withUnsafeBytes { CRC32.update(0, $0) }
        crc = payload.withUnsafeBytes { CRC32.update(crc, $0) }
        guard crc == stored else { throw DistilError.input(input.name, "corrupt stream: \(kind) record checksum mismatch") }
        return (kind, payload)
    }

    func nextRecord() throws -> (String, [UInt8]) {
        if let p = peeked { peeked = nil; return p }
        guard let r = try TeacherStreamReader.readRecord(input, vocab: header.vocab_size) else {
            throw DistilError.input(name, "truncated: the stream ends without its DONE trailer")
        }
        return r
    }

    /// The next prompt, or nil after the trailer (whose counts are verified). Unread rows of the
    /// previous prompt are skipped (still checksummed).
    public func nextPrompt() throws -> TeacherPrompt? {
        if done { return nil }
        if let c = current {
            while rowsRead < c.continuation_tokens.count { _ = try readRawRows(maxRows: c.continuation_tokens.count) }
        }
        let (kind, payload) = try nextRecord()
        switch kind {
        case "PRMT":
            let p = try decodeJSONLine(TeacherPrompt.self, Data(payload), where: "\(name): prompt record \(promptsRead + 1)")
            let v = header.vocab_size
            for t in p.prompt_tokens + p.continuation_tokens where t < 0 || t >= v {
                throw DistilError.input(name, "prompt '\(p.id)': token id \(t) outside the vocabulary (\(v))")
            }
            current = p
            rowsRead = 0
            rowBufRows = 0; rowBufNext = 0
            promptsRead += 1
            return p
        case "DONE":
            let t = try decodeJSONLine(TeacherTrailer.self, Data(payload), where: "\(name): trailer")
            guard t.n_prompts == promptsRead, t.n_rows == totalRows else {
                throw DistilError.input(name, "corrupt stream: trailer counts \(t.n_prompts) prompts/\(t.n_rows) rows, read \(promptsRead)/\(totalRows)")
            }
            guard promptsRead == header.n_prompts else {
                throw DistilError.input(name, "header announces \(header.n_prompts) prompts, stream has \(promptsRead)")
            }
            // DONE ends the stream: anything after it (a second stream appended, stray bytes) means
            // the file is not what one dl-teacher run wrote.
            var extra = [UInt8](repeating: 0, count: 1)
            if try extra.withUnsafeMutableBytes({ try input.read(into: $0) }) > 0 {
                throw DistilError.input(name, "corrupt stream: bytes after the DONE trailer (a second stream appended?)")
            }
            done = true
            current = nil
            return nil
        default:
            throw DistilError.input(name, "corrupt stream: \(kind) record where a prompt or the trailer was expected")
        }
    }

    /// Reads up to `maxRows` of the current prompt's rows as f32 log-probs into `dst`
    /// ([rows x vocab]); returns how many (0 when the prompt's rows are exhausted).
    public func readRows(into dst: UnsafeMutablePointer<Float>, maxRows: Int) throws -> Int {
        let raw = try readRawRows(maxRows: maxRows)
        for r in 0..<raw.count { raw.decode(r, into: dst + r * raw.vocab) }
        return raw.count
    }

    /// Reads up to `maxRows` of the current prompt's rows as stored (checksummed and validated,
    /// not yet converted): decode them with `TeacherRawRows.decode`, on any thread. Empty when the
    /// prompt's rows are exhausted.
    public func readRawRows(maxRows: Int) throws -> TeacherRawRows {
        var out = TeacherRawRows(vocab: header.vocab_size)
        guard let c = current else { return out }
        let v = header.vocab_size
        while out.count < maxRows && rowsRead < c.continuation_tokens.count {
            if rowBufNext == rowBufRows {
                let (kind, payload) = try nextRecord()
                guard kind == "ROWS" else {
                    throw DistilError.input(name, "prompt '\(c.id)': \(kind) record after \(rowsRead) of \(c.continuation_tokens.count) rows")
                }
                guard payload.count >= 8 else { throw DistilError.input(name, "corrupt stream: short ROWS record") }
                let first = Int(readU32(payload, 0)), count = Int(readU32(payload, 4))
                guard first == rowsRead, count > 0, count <= TeacherStream.rowsPerRecord,
                      rowsRead + count <= c.continuation_tokens.count else {
                    throw DistilError.input(name, "corrupt stream: prompt '\(c.id)' ROWS record (first \(first), count \(count)) does not fit its prompt")
                }
                rowPayload = payload
                rowBufRows = count
                rowBufNext = 0
                rowOffset = 8
            }
            // One row: v f16 values, u32 n, n (u32 id, f32 value) pairs with increasing ids.
            let bad = DistilError.input(name, "corrupt stream: prompt '\(c.id)' row \(rowsRead) overruns its ROWS record")
            guard rowOffset + 2 * v + 4 <= rowPayload.count else { throw bad }
            let nExact = Int(readU32(rowPayload, rowOffset + 2 * v))
            guard nExact <= TeacherStream.maxExact, rowOffset + 2 * v + 4 + 8 * nExact <= rowPayload.count else { throw bad }
            try rowPayload.withUnsafeBytes { raw in
                let p = raw.baseAddress! + rowOffset + 2 * v + 4
                var last = -1
                for k in 0..<nExact {
                    let id = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8 * k, as: UInt32.self)))
                    guard id > last, id < v else { throw bad }
                    last = id
                }
            }
            let mass = rowPayload.withUnsafeBytes { raw in
                TeacherStreamReader.probabilityMass(raw.baseAddress! + rowOffset, vocab: v, exact: nExact, scratch: &massScratch)
            }
            guard abs(mass - 1) <= TeacherStream.massTolerance else {
                throw DistilError.input(name, "prompt '\(c.id)' row \(rowsRead): not log-probabilities (the probabilities sum to \(mass), not 1 ± \(TeacherStream.massTolerance))")
            }
            out.rows.append(TeacherRawRows.Row(payload: rowPayload, offset: rowOffset, exact: nExact))
            rowOffset += 2 * v + 4 + 8 * nExact
            if rowBufNext + 1 == rowBufRows && rowOffset != rowPayload.count {
                throw DistilError.input(name, "corrupt stream: prompt '\(c.id)' ROWS record has \(rowPayload.count - rowOffset) trailing bytes")
            }
            rowBufNext += 1
            rowsRead += 1
            totalRows += 1
        }
        return out
    }
}

extension TeacherStreamReader {
    /// Σ exp(log p) over a stored row (binary16 values with the exact entries applied): NaN when
    /// a value is NaN. `scratch` is resized to the vocabulary and reused across rows.
    static func probabilityMass(_ row: UnsafeRawPointer, vocab v: Int, exact: Int, scratch: inout [Float]) -> Double {
        if scratch.count < v + 16 { scratch = [Float](repeating: -.infinity, count: v + 16) }
        return scratch.withUnsafeMutableBufferPointer { buf -> Double in
            let p = buf.baseAddress!
            KLTeacherRow(binary16: row, exact: row + 2 * v + 4, exactCount: exact).decode(into: p, count: v)
            for i in v..<(v + 16) { p[i] = -.infinity }   // the last group's padding adds nothing
            var total = 0.0
            var i = 0
            while i < v {
                let end = min(v, i + 512)
                var sum = SIMD16<Float>(repeating: 0)
                while i < end {
                    let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                    if any(x .!= x) { return .nan }
                    sum += FastExp.exp(x).replacing(with: 0, where: x .< -87)
                    i += 16
                }
                total += Double(sum.sum())
            }
            return total
        }
    }
}

/// Teacher rows as stored in their ROWS records (binary16 log-probs plus the exact f32 entries),
/// already checksummed and validated by the reader; `decode` converts one row and may run on any
/// thread (the payloads are immutable).
public struct TeacherRawRows: @unchecked Sendable {
    struct Row { let payload: [UInt8]; let offset: Int; let exact: Int }
    public let vocab: Int
    var rows: [Row] = []
    public var count: Int { rows.count }

    public init(vocab: Int) { self.vocab = vocab }

    /// The rows `range` of these, in order.
    public func slice(_ range: Range<Int>) -> TeacherRawRows {
        var s = TeacherRawRows(vocab: vocab); s.rows = Array(rows[range]); return s
    }

    /// Appends `other`'s rows (same vocabulary).
    public mutating func append(_ other: TeacherRawRows) { rows += other.rows }

    /// Row `r` as f32 log-probs into `out` (`vocab` floats).
    public func decode(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        withTeacherRow(r) { $0.decode(into: out, count: vocab) }
    }

    /// Row `r` as the KL kernel reads it (its binary16 values and exact pairs as stored, no copy),
    /// valid inside `body`.
    public func withTeacherRow<T>(_ r: Int, _ body: (KLTeacherRow) throws -> T) rethrows -> T {
        let row = rows[r]
        return try row.payload.withUnsafeBytes { raw in
            let p = raw.baseAddress! + row.offset
            return try body(KLTeacherRow(binary16: p, exact: p + 2 * vocab + 4, exactCount: row.exact))
        }
    }
}

@inline(__always) func readU32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
}

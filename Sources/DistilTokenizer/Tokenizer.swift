import DistilFormats
import Foundation

/// The identity dl-check compares: a hash of the tokenizer's semantic content and a hash of the
/// encodings of fixed reference texts. Two tokenizers are the same iff both agree.
public struct TokenizerIdentity: Codable, Equatable, Sendable {
    public var semanticHash: String
    public var referenceHash: String
}

/// A Hugging Face tokenizer.json byte-level BPE, in the shape Qwen2/Qwen3/Qwen3.5 ship:
/// NFC normalizer; Sequence[Split(regex, isolated), ByteLevel(no prefix space, no regex)];
/// BPE with vocab and merges; added tokens matched before everything else; ByteLevel decoder.
/// Any other component is refused with an error naming it, never approximated.
///
/// Immutable once loaded (apart from a lock-protected pool of encoder scratch space): `encode`
/// and `decode` may run on several threads at once.
public final class Tokenizer: @unchecked Sendable {
    let nfc: Bool
    let pre: PreTokenizer
    let ignoreMerges: Bool
    /// Raw token bytes → id, and id → raw token bytes (`arena[entryStart[e]..<entryStart[e+1]]`
    /// for `e = entryOfID[id]`, -1 when the id is not a byte-level vocab entry).
    let tokens: TokenTable
    let arena: [UInt8]
    let entryStart: [Int32]
    let entryOfID: [Int32]
    let otherTokens: [Int: String]
    let otherByString: [String: Int]
    let merges: MergeTable
    let byteIDs: OwnedBuffer<Int32>
    /// Added tokens by first byte, longest first within each list.
    let addedByFirstByte: [[(bytes: [UInt8], id: Int)]]
    let addedFirst: OwnedBuffer<Bool>
    let addedByID: [Int: String]
    let addedByContent: [String: Int]
    public private(set) var identity = TokenizerIdentity(semanticHash: "", referenceHash: "")
    /// One more than the largest id of the vocabulary and the added tokens.
    public let vocabSize: Int

    /// `path`: a tokenizer.json file or a directory with one.
    public static func load(path: String) throws -> Tokenizer {
        let file = TokenizerPath(path).file
        let bytes = try readFile(file, limit: 256 << 20)
        Log.debug("tokenizer \(file): \(bytes.count) bytes")
        return try Tokenizer(json: bytes, name: file)
    }

    /// Reads tokenizer.json from its bytes; `name` is used in every error.
    public init(json bytes: [UInt8], name: String) throws {
        func bad(_ what: String) -> DistilError { DistilError.input(name, what) }
        let f = try TokenizerFile(json: bytes, name: name)
        guard let table = f.table else { throw bad("BPE model has no vocab object") }
        nfc = f.nfc
        pre = PreTokenizer(pattern: f.pattern)
        ignoreMerges = f.ignoreMerges
        tokens = table
        arena = f.arena
        entryStart = f.entryStart
        entryOfID = f.entryOfID
        otherTokens = f.otherTokens
        otherByString = f.otherByString
        // Every byte must have a symbol.
        byteIDs = OwnedBuffer(count: 256, repeating: 0)
        for b in 0..<256 {
            let id = table.lookup([UInt8(b)])
            guard id >= 0 else { throw bad("vocab lacks the byte-level symbol for byte \(b)") }
            byteIDs.p[b] = id
        }
        merges = try MergeTable(pairs: f.mergePairs, merged: f.mergeIDs, byteIDs: byteIDs.p)
        // Added tokens: longest first, so the longest one matching at a position wins.
        var byFirst = [[(bytes: [UInt8], id: Int)]](repeating: [], count: 256)
        var byID: [Int: String] = [:], byContent: [String: Int] = [:]
        for a in f.added {
            byFirst[Int(a.bytes[0])].append((a.bytes, a.id))
            if byID[a.id] == nil { byID[a.id] = a.content }
            if byContent[a.content] == nil { byContent[a.content] = a.id }
        }
        for k in 0..<256 { byFirst[k].sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id } }
        addedByFirstByte = byFirst
        addedFirst = OwnedBuffer(count: 256, repeating: false)
        for k in 0..<256 { addedFirst.p[k] = !byFirst[k].isEmpty }
        addedByID = byID
        addedByContent = byContent
        vocabSize = max(f.entryOfID.count - 1, f.added.map(\.id).max() ?? -1) + 1

        let semantic = Tokenizer.semanticHash(f)
        var r = Hashing.Hasher()
        for text in Tokenizer.referenceTexts { r.update(encode(text).map(String.init).joined(separator: ",")); r.update("\n") }
        identity = TokenizerIdentity(semanticHash: semantic, referenceHash: r.finalizeHex())
    }

    /// SHA-256 of the semantic content, canonically serialized (docs/FORMATS.md, tokenizer
    /// identity): a header with the normalizer, pattern and ignore_merges; "v ID TOKEN" for every
    /// vocabulary entry by id (TOKEN in its byte-level spelling); "m LEFT RIGHT" for every merge in
    /// rank order; "a ID SPECIAL CONTENT" for every added token by id. Streamed into the hasher.
    static func semanticHash(_ f: TokenizerFile) -> String {
        var h = Hashing.Hasher()
        var canon: [UInt8] = Array("distil-tokenizer-identity/1\nnormalizer \(f.nfc ? "NFC" : "none")\npre \(f.pattern.rawValue)\nignore_merges \(f.ignoreMerges)\n".utf8)
        canon.reserveCapacity(1 << 16)
        func flush() { if canon.count >= 1 << 16 { h.update(canon); canon.removeAll(keepingCapacity: true) } }
        for id in 0..<f.entryOfID.count {
            let e = Int(f.entryOfID[id])
            if e >= 0 {
                canon.append(0x76); canon.append(0x20); Tokenizer.appendDecimal(id, to: &canon); canon.append(0x20)
                f.arena.withUnsafeBufferPointer { a in
                    ByteLevel.appendText(UnsafeBufferPointer(rebasing: a[Int(f.entryStart[e])..<Int(f.entryStart[e + 1])]), to: &canon)
                }
                canon.append(0x0A)
            } else if let s = f.otherTokens[id] {
                canon.append(0x76); canon.append(0x20); Tokenizer.appendDecimal(id, to: &canon); canon.append(0x20)
                canon.append(contentsOf: s.utf8)
                canon.append(0x0A)
            }
            flush()
        }
        for pair in f.mergePairs {
            canon.append(0x6D); canon.append(0x20); Tokenizer.appendDecimal(Int(pair >> 32), to: &canon)
            canon.append(0x20); Tokenizer.appendDecimal(Int(pair & 0xFFFF_FFFF), to: &canon); canon.append(0x0A)
            flush()
        }
        for a in f.added.sorted(by: { $0.id != $1.id ? $0.id < $1.id : $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            canon.append(contentsOf: "a \(a.id) \(a.special) ".utf8)
            canon.append(contentsOf: a.bytes)
            canon.append(0x0A)
        }
        h.update(canon)
        return h.finalizeHex()
    }

    @inline(__always) static func appendDecimal(_ v: Int, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: any Int fits
        var n = 0, x = v.magnitude
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[23 - n] = UInt8(0x30 + x % 10); x /= 10; n += 1 } while x > 0
            if v < 0 { out.append(0x2D) }
            out.append(contentsOf: d[(24 - n)...])
        }
    }

    /// Fixed texts whose encodings are part of the identity: code, several scripts, digits,
    /// whitespace runs, contractions, special tokens.
    public static let referenceTexts = [
        "The quick brown fox jumps over the lazy dog. It's 12:45, isn't it? They'll say we'd've known.",
        "def f(x):\n    return x**2  # square\n\n\tif x != 0 {\r\n  y += 1;\n}\n",
        "Ünïcödé naïve café — “quotes” ‘single’ … 中文分词测试 日本語のテキスト 한국어 텍스트 العربية עברית हिन्दी ไทย",
        "1234567890 3.14159 1,000,000 0x1F ٣٤٥ ½ ⅷ",
        "   leading spaces\n\n\n   trailing   \t\t  \u{00A0}nbsp\u{2028}ls\u{2029}ps",
        "emoji 👍🏽 👨‍👩‍👧‍👦 🇩🇪 e\u{301} a\u{308}\u{304}",
        "<|endoftext|>special<|im_start|>user\nhi<|im_end|>",
    ]

    /// The id of a token: an added token's content (as Hugging Face's `convert_tokens_to_ids`
    /// looks there first), else a vocabulary string in its byte-level spelling ("Ġthe").
    public func id(of token: String) -> Int? {
        if let id = addedByContent[token] { return id }
        var raw: [UInt8] = []
        if ByteLevel.decode(Array(token.utf8), into: &raw) == true {
            let id = tokens.lookup(raw)
            return id >= 0 ? Int(id) : nil
        }
        return otherByString[token]
    }

    /// The token of an id: an added token's content, else the vocabulary string (byte-level spelling).
    public func token(of id: Int) -> String? {
        if let a = addedByID[id] { return a }
        guard id >= 0, id < entryOfID.count else { return nil }
        let e = Int(entryOfID[id])
        if e < 0 { return otherTokens[id] }
        return ByteLevel.string(arena[Int(entryStart[e])..<Int(entryStart[e + 1])])
    }

    /// Text → ids. Added tokens in the text are matched first (longest first) and kept whole;
    /// the rest is NFC-normalized, split by the pattern, byte-level mapped and BPE-merged.
    public func encode(_ text: String) -> [Int] {
        var text = text
        return text.withUTF8 { encode(utf8: $0) }
    }

    /// Working memory of one `encode` call: the piece cache and BPE scratch space. Calls take one
    /// from `states` and give it back, so the cache stays warm across the many short texts of a
    /// run, and concurrent calls each work on their own.
    struct EncodeState {
        var cache = PieceCache(slots: 1 << 17)
        var scratch = BPEScratch()
        var ids: [Int32] = []
    }

    final class StatePool: @unchecked Sendable {
        private let lock = NSLock()
        private var free: [EncodeState] = []
        func take() -> EncodeState {
            lock.lock()
            defer { lock.unlock() }
            return free.popLast() ?? EncodeState()
        }
        func put(_ state: EncodeState) {
            lock.lock()
            defer { lock.unlock() }
            if free.count < 8 { free.append(state) }
        }
    }
    let states = StatePool()

    func encode(utf8 buf: UnsafeBufferPointer<UInt8>) -> [Int] {
        var out: [Int] = []
        guard let p = buf.baseAddress, buf.count > 0 else { return out }
        let n = buf.count
        out.reserveCapacity(n / 3 + 16)
        var st = states.take()
        defer { states.put(st) }
        var segStart = 0, i = 0
        let first = addedFirst.p
        while i < n {
            if first[Int(p[i])], case let (len, id)? = addedMatch(p, n, i) {
                encodeOrdinary(p + segStart, i - segStart, &st, &out)
                out.append(id)
                i += len
                segStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(p + segStart, n - segStart, &st, &out)
        return out
    }

    /// The added token starting at p[i] (longest first): its length in bytes and id.
    @inline(__always) func addedMatch(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: Int) -> (Int, Int)? {
        for a in addedByFirstByte[Int(p[i])] where a.bytes.count <= n - i {
            if a.bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, p + i, $0.count) == 0 }) { return (a.bytes.count, a.id) }
        }
        return nil
    }

    /// Text between added tokens: NFC (quick-checked), split, BPE.
    func encodeOrdinary(_ p: UnsafePointer<UInt8>, _ n: Int, _ st: inout EncodeState, _ out: inout [Int]) {
        if n == 0 { return }
        if nfc, let normalized = NFC.normalize(p, n) {
            normalized.withUnsafeBufferPointer { encodePieces($0.baseAddress!, $0.count, &st, &out) }
        } else {
            encodePieces(p, n, &st, &out)
        }
    }

    func encodePieces(_ p: UnsafePointer<UInt8>, _ n: Int, _ st: inout EncodeState, _ out: inout [Int]) {
        let table = UnicodeTables.bmp
        let bytes = byteIDs.p
        let merges = self.merges.probe
        var i = 0
        while i < n {
            let e = pre.pieceEnd(p, n, i, table)
            let q = p + i, len = e - i
            i = e
            if len == 1 { out.append(Int(bytes[Int(q[0])])); continue }
            if ignoreMerges {
                let id = tokens.lookup(q, len)
                if id >= 0 { out.append(Int(id)); continue }
            }
            if len > 256 {   // long pieces are rare and would crowd the cache
                st.ids.removeAll(keepingCapacity: true)
                BPE.encode(q, len, byteIDs: bytes, merges: merges, scratch: &st.scratch, into: &st.ids)
                for id in st.ids { out.append(Int(id)) }
                continue
            }
            let h = st.cache.hash(q, len)
            if st.cache.lookup(q, len, hash: h, into: &out) { continue }
            st.ids.removeAll(keepingCapacity: true)
            BPE.encode(q, len, byteIDs: bytes, merges: merges, scratch: &st.scratch, into: &st.ids)
            st.ids.withUnsafeBufferPointer { st.cache.insert(q, len, hash: h, ids: $0) }
            for id in st.ids { out.append(Int(id)) }
        }
    }

    /// Ids → text: byte-level symbols back to bytes, added tokens as their content; invalid UTF-8
    /// becomes U+FFFD. Ids outside the vocabulary decode to nothing.
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            if let a = addedByID[id] { bytes.append(contentsOf: a.utf8); continue }
            guard id >= 0, id < entryOfID.count else { continue }
            let e = Int(entryOfID[id])
            if e >= 0 {
                bytes.append(contentsOf: arena[Int(entryStart[e])..<Int(entryStart[e + 1])])
            } else if let s = otherTokens[id] {
                for ch in s.unicodeScalars where ch.value < 0x144 && ByteLevel.byteOfChar[Int(ch.value)] >= 0 {
                    bytes.append(UInt8(ByteLevel.byteOfChar[Int(ch.value)]))
                }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

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
public final class Tokenizer {
    let vocab: [String: Int]
    let idToToken: [Int: String]
    /// (left id, right id) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let byteIDs: [Int]              // id of each single byte's symbol
    let added: [(content: [Unicode.Scalar], id: Int, special: Bool)]
    let addedByID: [Int: String]
    let addedFirst: Set<UInt32>
    let nfc: Bool
    let pre: PreTokenizer
    let ignoreMerges: Bool
    public private(set) var identity: TokenizerIdentity
    public let vocabSize: Int
    var cache = PieceCache()

    /// `path`: a tokenizer.json file or a directory with one.
    public static func load(path: String) throws -> Tokenizer {
        var file = path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { file = path + "/tokenizer.json" }
        let bytes = try readFile(file, limit: 256 << 20)
        return try Tokenizer(json: bytes, name: file)
    }

    public init(json bytes: [UInt8], name: String) throws {
        func bad(_ what: String) -> DistilError { DistilError.input(name, what) }
        let root = try JSONValue.parse(bytes, name: name)
        guard root.object != nil else { throw bad("not a JSON object") }
        // Normalizer: NFC or none.
        switch root["normalizer"] {
        case nil, .null?: nfc = false
        case .object?:
            guard root["normalizer"]?["type"]?.string == "NFC" else {
                throw bad("unsupported normalizer \(root["normalizer"]?["type"]?.string ?? "?")")
            }
            nfc = true
        default: throw bad("normalizer is not an object")
        }
        // Pre-tokenizer: Sequence[Split(known regex, Isolated), ByteLevel(add_prefix_space false, use_regex false)].
        guard let p = root["pre_tokenizer"], p["type"]?.string == "Sequence",
              let list = p["pretokenizers"]?.array, list.count == 2 else {
            throw bad("unsupported pre_tokenizer: expected a Sequence of Split and ByteLevel")
        }
        guard list[0]["type"]?.string == "Split", let regex = list[0]["pattern"]?["Regex"]?.string else {
            throw bad("unsupported pre_tokenizer: the first step must be a regex Split")
        }
        guard let known = SplitPattern(regex: regex) else { throw bad("unsupported Split pattern \(regex.prefix(60))") }
        guard (list[0]["behavior"]?.string ?? "").lowercased() == "isolated", list[0]["invert"]?.bool != true else {
            throw bad("unsupported Split behaviour \(list[0]["behavior"]?.string ?? "?")")
        }
        guard list[1]["type"]?.string == "ByteLevel", list[1]["add_prefix_space"]?.bool != true,
              list[1]["use_regex"]?.bool == false else {
            throw bad("unsupported pre_tokenizer step: expected ByteLevel without prefix space and without regex")
        }
        pre = PreTokenizer(pattern: known)
        if let d = root["decoder"], !d.isNull, d["type"]?.string != "ByteLevel" {
            throw bad("unsupported decoder \(d["type"]?.string ?? "?")")
        }
        // Model: BPE.
        guard let model = root["model"], model["type"]?.string == "BPE" else { throw bad("unsupported model: expected BPE") }
        guard let v = model["vocab"]?.object else { throw bad("BPE model has no vocab object") }
        guard v.count <= 4_000_000 else { throw bad("vocab of \(v.count) entries is implausible") }
        var vocab = [String: Int](minimumCapacity: v.count)
        var idToToken = [Int: String](minimumCapacity: v.count)
        for (tok, idValue) in v {
            guard let id = idValue.int, id >= 0, id < 4_000_000 else {
                throw bad("vocab entry '\(tok.prefix(40))' has \(idValue.typeName), expected an integer id in 0..<4000000")
            }
            if idToToken[id] != nil { throw bad("vocab id \(id) is assigned twice") }
            vocab[tok] = id
            idToToken[id] = tok
        }
        ignoreMerges = model["ignore_merges"]?.bool ?? false
        guard let mlist = model["merges"]?.array else { throw bad("BPE model has no merges list") }
        guard mlist.count <= 4_000_000 else { throw bad("\(mlist.count) merges is implausible") }
        var merges = [UInt64: (rank: Int32, id: Int32)](minimumCapacity: mlist.count)
        var mergeText: [UInt8] = []
        mergeText.reserveCapacity(mlist.count * 12)
        for (rank, m) in mlist.enumerated() {
            let l: String, r: String
            if let s = m.string {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw bad("merge \(rank) '\(s.prefix(40))' is not 'a b'") }
                l = String(parts[0]); r = String(parts[1])
            } else if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                l = a; r = b
            } else {
                throw bad("merge \(rank) is neither 'a b' nor a pair of strings")
            }
            guard let li = vocab[l], let ri = vocab[r], let mi = vocab[l + r] else {
                throw bad("merge \(rank) ('\(l.prefix(20))' '\(r.prefix(20))') uses tokens missing from the vocab")
            }
            let key = UInt64(li) << 32 | UInt64(ri)
            if merges[key] == nil { merges[key] = (Int32(rank), Int32(mi)) }
            mergeText.append(contentsOf: "m \(li) \(ri)\n".utf8)
        }
        // Every byte must have a symbol.
        var byteIDs = [Int](repeating: 0, count: 256)
        for b in 0..<256 {
            guard let id = vocab[String(ByteLevel.encode[b])] else { throw bad("vocab lacks the byte-level symbol for byte \(b)") }
            byteIDs[b] = id
        }
        // Added tokens.
        var added: [(content: [Unicode.Scalar], id: Int, special: Bool)] = []
        var addedByID: [Int: String] = [:]
        for a in root["added_tokens"]?.array ?? [] {
            guard let content = a["content"]?.string, let id = a["id"]?.int, id >= 0, id < 4_000_000, !content.isEmpty else {
                throw bad("added token entry lacks content or id")
            }
            added.append((Array(content.unicodeScalars), id, a["special"]?.bool ?? false))
            addedByID[id] = content
        }
        added.sort { $0.content.count > $1.content.count }   // longest match first
        self.vocab = vocab
        self.idToToken = idToToken
        self.merges = merges
        self.byteIDs = byteIDs
        self.added = added
        self.addedByID = addedByID
        addedFirst = Set(added.map { $0.content[0].value })
        vocabSize = max((idToToken.keys.max() ?? -1), (addedByID.keys.max() ?? -1)) + 1

        // Identity: the semantic content, canonically serialized (docs/FORMATS.md, tokenizer identity).
        var canon: [UInt8] = Array("distil-tokenizer-identity/1\nnormalizer \(nfc ? "NFC" : "none")\npre \(known.rawValue)\nignore_merges \(ignoreMerges)\n".utf8)
        canon.reserveCapacity(canon.count + bytes.count / 2)
        for id in idToToken.keys.sorted() {
            canon.append(contentsOf: "v \(id) ".utf8); canon.append(contentsOf: idToToken[id]!.utf8); canon.append(0x0A)
        }
        canon.append(contentsOf: mergeText)
        for a in added.sorted(by: { $0.id < $1.id }) {
            canon.append(contentsOf: "a \(a.id) \(a.special) ".utf8)
            canon.append(contentsOf: String(String.UnicodeScalarView(a.content)).utf8)
            canon.append(0x0A)
        }
        var h = Hashing.Hasher()
        h.update(canon)
        identity = TokenizerIdentity(semanticHash: h.finalizeHex(), referenceHash: "")
        var r = Hashing.Hasher()
        for text in Tokenizer.referenceTexts { r.update(encode(text).map(String.init).joined(separator: ",")); r.update("\n") }
        identity.referenceHash = r.finalizeHex()
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

    public func id(of token: String) -> Int? { vocab[token] ?? addedByID.first { $0.value == token }?.key }
    public func token(of id: Int) -> String? { idToToken[id] ?? addedByID[id] }

    /// Text → ids. Added tokens in the text are matched first (longest first) and kept whole;
    /// the rest is NFC-normalized, split by the pattern, byte-level mapped and BPE-merged.
    public func encode(_ text: String) -> [Int] {
        var out: [Int] = []
        let scalars = Array(text.unicodeScalars)
        var segStart = 0
        var i = 0
        while i < scalars.count {
            if addedFirst.contains(scalars[i].value), let a = addedMatch(scalars, i) {
                encodeOrdinary(scalars[segStart..<i], into: &out)
                out.append(a.id)
                i += a.content.count
                segStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(scalars[segStart..<scalars.count], into: &out)
        return out
    }

    func addedMatch(_ s: [Unicode.Scalar], _ i: Int) -> (content: [Unicode.Scalar], id: Int, special: Bool)? {
        for a in added where a.content.count <= s.count - i && a.content[0] == s[i] {
            var ok = true
            for k in 1..<a.content.count where s[i + k] != a.content[k] { ok = false; break }
            if ok { return a }
        }
        return nil
    }

    func encodeOrdinary(_ seg: ArraySlice<Unicode.Scalar>, into out: inout [Int]) {
        if seg.isEmpty { return }
        var scalars = Array(seg)
        if nfc && scalars.contains(where: { $0.value >= 0x300 }) {
            // The standard library's NFC (Foundation's precomposedStringWithCanonicalMapping on Linux
            // truncates scalars beyond the BMP: U+E0064 U+0323 came back as U+1E0D).
            let s = String(decoding: String(String.UnicodeScalarView(scalars))._nfcCodeUnits, as: UTF8.self)
            scalars = Array(s.unicodeScalars)
        }
        // UTF-8 of the segment with each scalar's byte offset, so pieces are byte slices.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scalars.count + 8)
        var offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (k, sc) in scalars.enumerated() {
            offsets[k] = bytes.count
            let v = sc.value
            if v < 0x80 { bytes.append(UInt8(v)) }
            else if v < 0x800 { bytes.append(UInt8(0xC0 | (v >> 6))); bytes.append(UInt8(0x80 | (v & 0x3F))) }
            else if v < 0x10000 {
                bytes.append(UInt8(0xE0 | (v >> 12))); bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F))); bytes.append(UInt8(0x80 | (v & 0x3F)))
            } else {
                bytes.append(UInt8(0xF0 | (v >> 18))); bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
                bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F))); bytes.append(UInt8(0x80 | (v & 0x3F)))
            }
        }
        offsets[scalars.count] = bytes.count
        bytes.withUnsafeBufferPointer { all in
            for r in pre.split(scalars) {
                let lo = offsets[r.lowerBound], hi = offsets[r.upperBound]
                if hi - lo == 1 { out.append(byteIDs[Int(all[lo])]); continue }
                let piece = UnsafeBufferPointer(rebasing: all[lo..<hi])
                let h = PieceCache.hash(piece)
                if cache.lookup(piece, hash: h, into: &out) { continue }
                let ids = bpe(Array(piece))
                cache.insert(piece, hash: h, ids: ids)
                out.append(contentsOf: ids)
            }
        }
    }

    /// Byte-level BPE of one piece: repeatedly merge the adjacent pair of lowest rank (leftmost on ties).
    func bpe(_ bytes: [UInt8]) -> [Int] {
        if ignoreMerges {
            let s = String(bytes.map { ByteLevel.encode[Int($0)] })
            if let id = vocab[s] { return [id] }
        }
        var syms = bytes.map { byteIDs[Int($0)] }
        while syms.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestID: Int32 = 0
            for k in 0..<(syms.count - 1) {
                if let m = merges[UInt64(syms[k]) << 32 | UInt64(syms[k + 1])], m.rank < bestRank {
                    bestRank = m.rank; bestAt = k; bestID = m.id
                }
            }
            if bestAt < 0 { break }
            syms[bestAt] = Int(bestID)
            syms.remove(at: bestAt + 1)
        }
        return syms
    }

    /// Ids → text: byte-level symbols back to bytes, added tokens as their content; invalid UTF-8
    /// becomes U+FFFD. Ids outside the vocabulary decode to nothing.
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if let a = addedByID[id] { bytes.append(contentsOf: Array(a.utf8)); continue }
            guard let t = idToToken[id] else { continue }
            for ch in t.unicodeScalars { if let b = ByteLevel.decode[ch.value] { bytes.append(b) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// GPT-2's reversible map between bytes and printable Unicode characters.
enum ByteLevel {
    static let encode: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = [Int](repeating: 0, count: 256)
        for b in printable { chars[b] = b }
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            chars[b] = 256 + n
            n += 1
        }
        printable.removeAll()
        return chars.map { Character(Unicode.Scalar(UInt32($0))!) }
    }()

    static let decode: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, c) in encode.enumerated() { d[c.unicodeScalars.first!.value] = UInt8(b) }
        return d
    }()
}

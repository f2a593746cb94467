import DistilFormats

/// Everything the tokenizer keeps from tokenizer.json, read straight from its bytes: the small
/// parts through `JSONValue`, the vocabulary and merges (hundreds of thousands of entries) by
/// purpose-built loops that decode each string into one reused buffer and map the byte-level
/// characters back to bytes on the way, with no tree and no `String` per entry.
struct TokenizerFile {
    var nfc = false
    var pattern = SplitPattern.qwen35
    var ignoreMerges = false

    /// Byte-level vocabulary entries in file order: entry k's raw bytes are
    /// `arena[entryStart[k]..<entryStart[k+1]]`, its id `entryID[k]`.
    var arena: [UInt8] = []
    var entryStart: [Int32] = [0]
    var entryID: [Int32] = []
    /// Vocabulary strings that are not byte-level text (no encoding can produce them).
    var otherTokens: [Int: String] = [:]
    var otherByString: [String: Int] = [:]
    /// id → entry index (-1: absent or in `otherTokens`); count = largest vocab id + 1.
    var entryOfID: [Int32] = []
    var vocabCount = 0

    /// Merges in rank order: left << 32 | right, and the merged id.
    var mergePairs: [UInt64] = []
    var mergeIDs: [Int32] = []

    var added: [AddedToken] = []

    struct AddedToken {
        var content: String
        var bytes: [UInt8]
        var id: Int
        var special: Bool
    }

    static let maxEntries = 4_000_000

    /// Parses and checks tokenizer.json; `name` is used in every error.
    init(json bytes: [UInt8], name: String) throws {
        func bad(_ what: String) -> DistilError { DistilError.input(name, what) }
        // The vocabulary and merges are read where they stand (merges before the vocabulary, as a
        // hand-edited file might have them, are skipped and read afterwards).
        var sawModel = false, sawVocab = false, sawMerges = false, mergesRead = false, mergesAt = -1
        let root: JSONValue = try bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(b: buf, name: name)
            p.skipSpace()
            guard p.i < buf.count, buf[p.i] == UInt8(ascii: "{") else {
                _ = try p.value(depth: 0)   // a JSON error first, if it is not JSON at all
                throw bad("not a JSON object")
            }
            let kv = try p.object(depth: 0) { p, key, depth in
                guard key == "model" else { return nil }
                guard !sawModel else { throw p.fail("duplicate key 'model'") }
                sawModel = true
                guard p.i < buf.count, buf[p.i] == UInt8(ascii: "{") else { return nil }
                return .object(try p.object(depth: 1) { p, key, depth in
                    switch key {
                    case "vocab":
                        guard !sawVocab else { throw p.fail("duplicate key 'vocab'") }
                        sawVocab = true
                        guard p.b[p.i] == UInt8(ascii: "{") else { return nil }
                        try self.readVocab(&p, bad)
                        return .null
                    case "merges":
                        guard !sawMerges else { throw p.fail("duplicate key 'merges'") }
                        sawMerges = true
                        guard p.b[p.i] == UInt8(ascii: "[") else { return nil }
                        if self.table != nil { try self.readMerges(&p, bad); mergesRead = true } else { mergesAt = p.i; try p.skipValue(depth: depth + 1) }
                        return .null
                    default: return nil
                    }
                })
            }
            if mergesAt >= 0, self.table != nil {
                var m = JSONParser(b: buf, name: name)
                m.i = mergesAt
                try self.readMerges(&m, bad)
                mergesRead = true
            }
            p.skipSpace()
            guard p.i == buf.count else { throw p.fail("trailing data") }
            return .object(kv)
        }

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
        guard let pre = root["pre_tokenizer"], pre["type"]?.string == "Sequence",
              let list = pre["pretokenizers"]?.array, list.count == 2 else {
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
        pattern = known
        if let d = root["decoder"], !d.isNull, d["type"]?.string != "ByteLevel" {
            throw bad("unsupported decoder \(d["type"]?.string ?? "?")")
        }
        // Model: BPE, deterministic, no word prefix/suffix.
        guard let model = root["model"], model["type"]?.string == "BPE" else { throw bad("unsupported model: expected BPE") }
        if let d = model["dropout"], !d.isNull, !(d.int == 0) { throw bad("unsupported BPE dropout (encoding would be random)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull, v.string != "" { throw bad("unsupported BPE \(key) \(v.string ?? v.typeName)") }
        }
        if let v = model["ignore_merges"], !v.isNull {
            guard let b = v.bool else { throw bad("BPE ignore_merges is \(v.typeName), expected a boolean") }
            ignoreMerges = b
        }
        guard table != nil else { throw bad("BPE model has no vocab object") }
        guard mergesRead else { throw bad("BPE model has no merges list") }

        // Added tokens: matched on the raw text, before normalization, exactly as written.
        if let list = root["added_tokens"], !list.isNull {
            guard let items = list.array else { throw bad("added_tokens is \(list.typeName), expected a list") }
            guard items.count <= 100_000 else { throw bad("\(items.count) added tokens is implausible") }
            for a in items {
                guard let content = a["content"]?.string, let id = a["id"]?.int, id >= 0, id < TokenizerFile.maxEntries, !content.isEmpty else {
                    throw bad("added token entry lacks content or id")
                }
                for option in ["lstrip", "rstrip", "single_word"] where a[option]?.bool == true {
                    throw bad("unsupported added token option \(option) on '\(content.prefix(40))'")
                }
                if nfc && a["normalized"]?.bool == true {
                    throw bad("unsupported added token option normalized on '\(content.prefix(40))' (matched on normalized text)")
                }
                added.append(AddedToken(content: content, bytes: Array(content.utf8), id: id, special: a["special"]?.bool ?? false))
            }
        }
    }

    /// `"vocab": {"token": id, ...}`
    mutating func readVocab(_ p: inout JSONParser, _ bad: (String) -> DistilError) throws {
        let alphabet = ByteLevel.byteOfChar
        var key: [UInt8] = []
        key.reserveCapacity(256)
        arena.reserveCapacity(p.b.count / 8)
        p.i += 1
        p.skipSpace()
        if p.i < p.b.count && p.b[p.i] == UInt8(ascii: "}") {
            p.i += 1
            table = try TokenTable(arena: [], starts: [0], ids: [], duplicate: &duplicate)
            return
        }
        while true {
            p.skipSpace()
            guard p.i < p.b.count, p.b[p.i] == UInt8(ascii: "\"") else { throw p.fail("expected a key") }
            key.removeAll(keepingCapacity: true)
            try p.stringBytes(into: &key)
            p.skipSpace()
            guard p.i < p.b.count, p.b[p.i] == UInt8(ascii: ":") else { throw p.fail("expected ':'") }
            p.i += 1
            p.skipSpace()
            let id: Int
            if let v = p.plainInt() { id = v } else {
                let v = try p.value(depth: 2)
                guard let n = v.int else {
                    throw bad("vocab entry '\(String(decoding: key.prefix(40), as: UTF8.self))' has \(v.typeName), expected an integer id in 0..<\(TokenizerFile.maxEntries)")
                }
                id = n
            }
            guard id >= 0 && id < TokenizerFile.maxEntries else {
                throw bad("vocab entry '\(String(decoding: key.prefix(40), as: UTF8.self))' has id \(id), expected an integer id in 0..<\(TokenizerFile.maxEntries)")
            }
            vocabCount += 1
            guard vocabCount <= TokenizerFile.maxEntries else { throw bad("vocab of more than \(TokenizerFile.maxEntries) entries is implausible") }
            if id >= entryOfID.count { entryOfID.append(contentsOf: repeatElement(-2, count: id + 1 - entryOfID.count)) }
            guard entryOfID[id] == -2 else { throw bad("vocab id \(id) is assigned twice") }
            // Byte-level characters back to bytes; a string with other characters is kept aside.
            let mark = arena.count
            var byteLevel = true
            let valid = key.withUnsafeBufferPointer { k in
                UTF8Scalars.forEachValidated(k.baseAddress ?? UnsafePointer(bitPattern: 1)!, k.count) { v in
                    if byteLevel, v < 0x144, alphabet[Int(v)] >= 0 { arena.append(UInt8(alphabet[Int(v)])) } else { byteLevel = false }
                    return true
                }
            }
            guard valid else { throw p.fail("invalid UTF-8 in a string") }
            if byteLevel {
                entryOfID[id] = Int32(entryID.count)
                entryID.append(Int32(id))
                entryStart.append(Int32(arena.count))
            } else {
                arena.removeSubrange(mark...)
                let s = String(decoding: key, as: UTF8.self)
                guard otherByString[s] == nil else { throw bad("vocab key '\(s.prefix(40))' appears twice") }
                otherByString[s] = id
                otherTokens[id] = s
                entryOfID[id] = -1
            }
            guard arena.count < Int(Int32.max) / 2 else { throw bad("vocab strings are implausibly large") }
            p.skipSpace()
            guard p.i < p.b.count else { throw p.fail("unexpected end in an object") }
            if p.b[p.i] == UInt8(ascii: ",") { p.i += 1; continue }
            if p.b[p.i] == UInt8(ascii: "}") { p.i += 1; break }
            throw p.fail("expected ',' or '}'")
        }
        for k in entryOfID.indices where entryOfID[k] == -2 { entryOfID[k] = -1 }
        table = try TokenTable(arena: arena, starts: entryStart, ids: entryID, duplicate: &duplicate)
        if let d = duplicate {
            let s = Int(entryStart[d]), e = Int(entryStart[d + 1])
            throw bad("vocab key '\(ByteLevel.string(arena[s..<e]).prefix(40))' appears twice")
        }
    }
    private var duplicate: Int? = nil

    /// `"merges": ["a b", ...]` or `[["a", "b"], ...]`. Needs the vocabulary table.
    mutating func readMerges(_ p: inout JSONParser, _ bad: (String) -> DistilError) throws {
        guard let table else { return }
        var left: [UInt8] = [], right: [UInt8] = [], raw: [UInt8] = []
        left.reserveCapacity(256); right.reserveCapacity(256); raw.reserveCapacity(512)
        p.i += 1
        p.skipSpace()
        if p.i < p.b.count && p.b[p.i] == UInt8(ascii: "]") { p.i += 1; return }
        mergePairs.reserveCapacity(p.b.count / 24)
        mergeIDs.reserveCapacity(p.b.count / 24)
        var rank = 0
        while true {
            p.skipSpace()
            guard rank < TokenizerFile.maxEntries else { throw bad("more than \(TokenizerFile.maxEntries) merges is implausible") }
            left.removeAll(keepingCapacity: true); right.removeAll(keepingCapacity: true)
            guard p.i < p.b.count else { throw p.fail("unexpected end in an array") }
            let start = p.i
            if p.b[p.i] == UInt8(ascii: "\"") {
                try p.stringBytes(into: &left)
                guard let sp = left.firstIndex(of: 0x20) else {
                    throw bad("merge \(rank) '\(String(decoding: left.prefix(40), as: UTF8.self))' is not 'a b'")
                }
                right.append(contentsOf: left[(sp + 1)...])
                left.removeSubrange(sp...)
            } else if p.b[p.i] == UInt8(ascii: "[") {
                // ["a", "b"]; anything else in brackets is parsed in full for the error.
                p.i += 1; p.skipSpace()
                var ok = false
                if p.i < p.b.count, p.b[p.i] == UInt8(ascii: "\"") {
                    try p.stringBytes(into: &left)
                    p.skipSpace()
                    if p.i < p.b.count, p.b[p.i] == UInt8(ascii: ",") {
                        p.i += 1
                        p.skipSpace()
                        if p.i < p.b.count, p.b[p.i] == UInt8(ascii: "\"") {
                            try p.stringBytes(into: &right)
                            p.skipSpace()
                            if p.i < p.b.count, p.b[p.i] == UInt8(ascii: "]") { p.i += 1; ok = true }
                        }
                    }
                }
                if !ok {
                    p.i = start
                    _ = try p.value(depth: 2)
                    throw bad("merge \(rank) is neither 'a b' nor a pair of strings")
                }
            } else {
                _ = try p.value(depth: 2)
                throw bad("merge \(rank) is neither 'a b' nor a pair of strings")
            }
            guard case let (li, ri, mi)? = try resolve(left, right, table: table, raw: &raw, p: p) else {
                throw bad("merge \(rank) ('\(String(decoding: left.prefix(20), as: UTF8.self))' '\(String(decoding: right.prefix(20), as: UTF8.self))') uses tokens missing from the vocab")
            }
            mergePairs.append(UInt64(UInt32(li)) << 32 | UInt64(UInt32(ri)))
            mergeIDs.append(Int32(mi))
            rank += 1
            p.skipSpace()
            guard p.i < p.b.count else { throw p.fail("unexpected end in an array") }
            if p.b[p.i] == UInt8(ascii: ",") { p.i += 1; continue }
            if p.b[p.i] == UInt8(ascii: "]") { p.i += 1; break }
            throw p.fail("expected ',' or ']'")
        }
    }

    /// The vocabulary table (set by `readVocab`).
    var table: TokenTable?

    /// Ids of the two sides of a merge and of their concatenation; nil when one is not in the vocab.
    func resolve(_ l: [UInt8], _ r: [UInt8], table: TokenTable, raw: inout [UInt8], p: JSONParser) throws -> (Int, Int, Int)? {
        raw.removeAll(keepingCapacity: true)
        guard let ll = ByteLevel.decode(l, into: &raw) else { throw p.fail("invalid UTF-8 in a string") }
        let lraw = raw.count
        guard let rl = ByteLevel.decode(r, into: &raw) else { throw p.fail("invalid UTF-8 in a string") }
        if ll && rl {
            let li = raw.withUnsafeBufferPointer { table.lookup($0.baseAddress!, lraw) }
            let ri = raw.withUnsafeBufferPointer { table.lookup($0.baseAddress! + lraw, raw.count - lraw) }
            let mi = table.lookup(raw)
            guard li >= 0, ri >= 0, mi >= 0 else { return nil }
            return (Int(li), Int(ri), Int(mi))
        }
        // A side that is not byte-level text: by string.
        func id(_ b: [UInt8], _ isByteLevel: Bool) -> Int? {
            if isByteLevel {
                var tmp: [UInt8] = []
                _ = ByteLevel.decode(b, into: &tmp)
                let v = table.lookup(tmp)
                return v >= 0 ? Int(v) : nil
            }
            return otherByString[String(decoding: b, as: UTF8.self)]
        }
        guard let li = id(l, ll), let ri = id(r, rl), let mi = otherByString[String(decoding: l + r, as: UTF8.self)] else { return nil }
        return (li, ri, mi)
    }
}

/// GPT-2's reversible map between bytes and printable characters (a byte-level token's text).
enum ByteLevel {
    /// The character standing for each byte.
    static let charOfByte: [UInt32] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var chars = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if printable.contains(b) { chars[b] = UInt32(b) } else { chars[b] = 256 + n; n += 1 }
        }
        return chars
    }()

    /// The byte each character U+0000…U+0143 stands for, or -1.
    static let byteOfChar: [Int16] = {
        var t = [Int16](repeating: -1, count: 0x144)
        for (b, c) in charOfByte.enumerated() { t[Int(c)] = Int16(b) }
        return t
    }()

    /// The UTF-8 of each byte's character: 1 or 2 bytes at utf8OfByte[2b...], length in utf8Length[b].
    static let utf8OfByte: [UInt8] = charOfByte.flatMap { c -> [UInt8] in
        var out: [UInt8] = []
        UTF8Scalars.append(c, to: &out)
        return out.count == 1 ? out + [0] : out
    }
    static let utf8Length: [UInt8] = charOfByte.map { $0 < 0x80 ? 1 : 2 }

    /// Appends the byte-level text (UTF-8) of raw bytes.
    @inline(__always) static func appendText(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        utf8OfByte.withUnsafeBufferPointer { u in
            utf8Length.withUnsafeBufferPointer { l in
                for b in bytes {
                    out.append(u[2 * Int(b)])
                    if l[Int(b)] == 2 { out.append(u[2 * Int(b) + 1]) }
                }
            }
        }
    }

    /// Appends the bytes of byte-level text `s` (UTF-8) to `out`: true; false (and `out`
    /// unchanged) when `s` has a character outside the alphabet; nil when it is not valid UTF-8.
    static func decode(_ s: [UInt8], into out: inout [UInt8]) -> Bool? {
        let mark = out.count
        let table = byteOfChar
        // Fast path: the alphabet is U+0021…U+0143, one or two UTF-8 bytes.
        var i = 0
        let n = s.count
        while i < n {
            let b = s[i]
            if b < 0x80 {
                let t = table[Int(b)]
                if t < 0 { break }
                out.append(UInt8(t)); i += 1
            } else if b >= 0xC2 && b <= 0xC5 && i + 1 < n && s[i + 1] & 0xC0 == 0x80 {
                let v = Int(b & 0x1F) << 6 | Int(s[i + 1] & 0x3F)
                guard v < 0x144, table[v] >= 0 else { break }
                out.append(UInt8(table[v])); i += 2
            } else {
                break
            }
        }
        if i == n { return true }
        // Outside the alphabet, or not UTF-8 at all.
        out.removeSubrange(mark...)
        let valid = s.withUnsafeBufferPointer { k in
            UTF8Scalars.forEachValidated(k.baseAddress ?? UnsafePointer(bitPattern: 1)!, k.count) { _ in true }
        }
        return valid ? false : nil
    }

    /// The byte-level text of raw bytes.
    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        bytes.withUnsafeBufferPointer { appendText($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }
}

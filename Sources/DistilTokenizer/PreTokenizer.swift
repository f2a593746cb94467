/// The Split pre-tokenizer patterns Qwen ships, matched by hand on Unicode scalars with the
/// semantics of the reference regex (ordered alternation, greedy quantifiers with backtracking):
///
///   Qwen3.5: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///   Qwen2/3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// \s is Unicode White_Space; \p{L}, \p{M}, \p{N} are general categories.
public enum SplitPattern: String, Sendable {
    case qwen35
    case qwen2

    static let qwen35Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    public init?(regex: String) {
        switch regex {
        case SplitPattern.qwen35Regex: self = .qwen35
        case SplitPattern.qwen2Regex: self = .qwen2
        default: return nil
        }
    }
}

/// Character classes of one scalar, computed once per scalar value (`UnicodeTables`).
struct ScalarClass: OptionSet {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let mark = ScalarClass(rawValue: 2)
    static let number = ScalarClass(rawValue: 4)
    static let space = ScalarClass(rawValue: 8)
    static let newline = ScalarClass(rawValue: 16)   // \r or \n
    /// Not a pattern class: the scalar passes the NFC quick check (`UnicodeTables.isNFCSafe`).
    static let nfcSafe = ScalarClass(rawValue: 32)

    /// \p{L}, \p{M}, \p{N} by general category; \s is White_Space (ASCII: \t \n \v \f \r space).
    static func of(_ s: Unicode.Scalar) -> ScalarClass {
        let v = s.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x0A, 0x0D: return [.space, .newline]
            case 0x09, 0x0B, 0x0C, 0x20: return .space
            default: return []
            }
        }
        var c: ScalarClass = []
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c.insert(.letter)
        case .nonspacingMark, .spacingMark, .enclosingMark: c.insert(.mark)
        case .decimalNumber, .letterNumber, .otherNumber: c.insert(.number)
        default: break
        }
        if s.properties.isWhitespace { c.insert(.space) }
        return c
    }
}

/// The Split step, run on valid UTF-8: `pieceEnd(p, n, i)` is the end (a byte offset) of the
/// piece that starts at byte `i`, by the rules of the pattern (leftmost alternative that
/// matches, greedy). ASCII is classified by one table load; other scalars are decoded first.
struct PreTokenizer {
    let pattern: SplitPattern
    /// \p{L} or [\p{L}\p{M}]
    let word: UInt8
    /// [^\s\p{L}\p{N}] or [^\s\p{L}\p{M}\p{N}]: a scalar with none of these bits
    let notPunct: UInt8

    init(pattern: SplitPattern) {
        self.pattern = pattern
        word = pattern == .qwen35 ? ScalarClass([.letter, .mark]).rawValue : ScalarClass.letter.rawValue
        notPunct = pattern == .qwen35 ? ScalarClass([.space, .letter, .mark, .number]).rawValue
                                      : ScalarClass([.space, .letter, .number]).rawValue
    }

    static let classMask: UInt8 = 0x1F

    /// Class bits and length of the scalar at p[i] (i < n).
    @inline(__always) static func classAt(_ p: UnsafePointer<UInt8>, _ i: Int, _ table: UnsafePointer<UInt8>) -> (UInt8, Int) {
        let b = p[i]
        if b < 0x80 { return (table[Int(b)], 1) }
        let (v, len) = UTF8Scalars.decode(p, i)
        return (UnicodeTables.bits(v, table), len)
    }

    /// The scalar at p[i] lower-cased for the contractions (ASCII letters, and ſ which folds to s).
    @inline(__always) static func folded(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: Int) -> (UInt32, Int)? {
        guard i < n else { return nil }
        let (v, len) = UTF8Scalars.decode(p, i)
        if v >= 0x41 && v <= 0x5A { return (v + 32, len) }
        if v == 0x17F { return (0x73, len) }
        return (v, len)
    }

    /// End of the run of scalars from `j` whose class has a bit of `mask`.
    @inline(__always) func run(_ p: UnsafePointer<UInt8>, _ n: Int, _ j0: Int, _ mask: UInt8, _ table: UnsafePointer<UInt8>) -> Int {
        var j = j0
        while j < n {
            let b = p[j]
            if b < 0x80 {
                if table[Int(b)] & mask == 0 { break }
                j += 1
            } else {
                let (c, len) = PreTokenizer.classAt(p, j, table)
                if c & mask == 0 { break }
                j += len
            }
        }
        return j
    }

    /// End of the run of "punctuation" scalars (no bit of `notPunct`) from `j`.
    @inline(__always) func punctRun(_ p: UnsafePointer<UInt8>, _ n: Int, _ j0: Int, _ table: UnsafePointer<UInt8>) -> Int {
        var j = j0
        while j < n {
            let (c, len) = PreTokenizer.classAt(p, j, table)
            if c & notPunct != 0 { break }
            j += len
        }
        return j
    }

    @inline(__always) func isPunct(_ p: UnsafePointer<UInt8>, _ n: Int, _ j: Int, _ table: UnsafePointer<UInt8>) -> Bool {
        j < n && PreTokenizer.classAt(p, j, table).0 & notPunct == 0
    }

    /// The end of the piece starting at p[i], i < n.
    @inline(__always) func pieceEnd(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: Int, _ table: UnsafePointer<UInt8>) -> Int {
        let letter = ScalarClass.letter.rawValue, number = ScalarClass.number.rawValue
        let space = ScalarClass.space.rawValue, newline = ScalarClass.newline.rawValue
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if p[i] == UInt8(ascii: "'"), case let (a, la)? = PreTokenizer.folded(p, n, i + 1) {
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 1 + la }   // s t m d
            if case let (b, lb)? = PreTokenizer.folded(p, n, i + 1 + la),
               (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {   // re ve ll
                return i + 1 + la + lb
            }
        }
        let (c, len) = PreTokenizer.classAt(p, i, table)
        // [^\r\n\p{L}\p{N}]?WORD+
        if c & word != 0 { return run(p, n, i + len, word, table) }
        if c & (newline | letter | number) == 0, i + len < n, PreTokenizer.classAt(p, i + len, table).0 & word != 0 {
            return run(p, n, i + len, word, table)
        }
        // \p{N}
        if c & number != 0 { return i + len }
        // ' ?PUNCT+[\r\n]*'
        var j = i
        if p[i] == 0x20 && isPunct(p, n, i + 1, table) { j = i + 1 }
        if isPunct(p, n, j, table) {
            j = punctRun(p, n, j, table)
            while j < n && (p[j] == 0x0A || p[j] == 0x0D) { j += 1 }
            return j
        }
        if c & space != 0 {
            // The whitespace run: \s*[\r\n]+ ends after its last \r or \n; else \s+(?!\S) leaves
            // the last scalar for the next piece when a non-space follows; else \s+.
            var e = i, lastStart = i, afterNewline = -1
            while e < n {
                let (ce, le) = PreTokenizer.classAt(p, e, table)
                if ce & space == 0 { break }
                if ce & newline != 0 { afterNewline = e + le }
                lastStart = e
                e += le
            }
            if afterNewline >= 0 { return afterNewline }
            if e == n { return e }
            if lastStart > i { return lastStart }
            return e
        }
        return i + len
    }
}

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

/// Character classes of one scalar, computed once per scalar.
struct ScalarClass: OptionSet {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let mark = ScalarClass(rawValue: 2)
    static let number = ScalarClass(rawValue: 4)
    static let space = ScalarClass(rawValue: 8)
    static let newline = ScalarClass(rawValue: 16)   // \r or \n

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

struct PreTokenizer {
    let pattern: SplitPattern

    /// Splits `s` into pieces (ranges of scalar indices), in order, covering every scalar.
    func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let cls = s.map(ScalarClass.of)
        let n = s.count
        let wordClass: ScalarClass = pattern == .qwen35 ? [.letter, .mark] : [.letter]
        func isWord(_ i: Int) -> Bool { i < n && !cls[i].isDisjoint(with: wordClass) }
        // [^\s\p{L}(\p{M})\p{N}]
        func isPunct(_ i: Int) -> Bool {
            i < n && cls[i].isDisjoint(with: pattern == .qwen35 ? [.space, .letter, .mark, .number] : [.space, .letter, .number])
        }
        func isSpace(_ i: Int) -> Bool { i < n && cls[i].contains(.space) }
        func lower(_ i: Int) -> UInt32? {
            guard i < n else { return nil }
            let v = s[i].value
            if v >= 0x41 && v <= 0x5A { return v + 32 }
            if v == 0x17F { return 0x73 }   // ſ folds to s
            return v
        }
        var out: [Range<Int>] = []
        var i = 0
        while i < n {
            let end = matchAt(i)
            out.append(i..<end)
            i = end
        }
        return out

        func matchAt(_ i: Int) -> Int {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if s[i] == "'" , let a = lower(i + 1) {
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }   // s t m d
                if let b = lower(i + 2) {
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 }   // re ve ll
                }
            }
            // [^\r\n\p{L}\p{N}]?WORD+
            if !cls[i].contains(.newline) && !cls[i].contains(.letter) && !cls[i].contains(.number) && isWord(i + 1) {
                var j = i + 1
                while isWord(j) { j += 1 }
                return j
            }
            if isWord(i) {
                var j = i
                while isWord(j) { j += 1 }
                return j
            }
            // \p{N}
            if cls[i].contains(.number) { return i + 1 }
            // ' ?PUNCT+[\r\n]*'
            var j = i
            if s[j] == " " && isPunct(j + 1) { j += 1 }
            if isPunct(j) {
                while isPunct(j) { j += 1 }
                while j < n && cls[j].contains(.newline) { j += 1 }
                return j
            }
            if isSpace(i) {
                var e = i
                while isSpace(e) { e += 1 }
                // \s*[\r\n]+ : up to the last \r or \n of the whitespace run
                var last = -1
                for k in i..<e where cls[k].contains(.newline) { last = k }
                if last >= 0 { return last + 1 }
                // \s+(?!\S) : the run, minus its last scalar when a non-space follows
                if e == n { return e }
                if e - i >= 2 { return e - 1 }
                return e   // \s+
            }
            return i + 1
        }
    }
}

/// Per-scalar facts the pre-tokenizer and the NFC quick check need, looked up in a table for the
/// Basic Multilingual Plane (built once per process from the standard library's Unicode
/// properties, ~15 ms) and computed from the properties directly above it. The table is the only
/// place these properties are read, so the pattern matcher and the normalizer agree by
/// construction with `ScalarClass.of`.
enum UnicodeTables {
    /// Class bits of every BMP scalar (`ScalarClass` raw values, plus `nfcSafe`); surrogates 0.
    /// Allocated once and never freed, so the encoder can hold a plain pointer to it.
    static let bmp: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 0x10000)
        t.initialize(repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            t[v] = ScalarClass.of(s).rawValue | (isNFCSafe(s) ? ScalarClass.nfcSafe.rawValue : 0)
        }
        return UnsafePointer(t)
    }()

    /// Class bits of any scalar value (as `bmp` holds them for the BMP).
    @inline(__always) static func bits(_ v: UInt32, _ table: UnsafePointer<UInt8> = bmp) -> UInt8 {
        if v < 0x10000 { return table[Int(v)] }
        return supplementaryBits(v)
    }

    @inline(never) static func supplementaryBits(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return 0 }
        return ScalarClass.of(s).rawValue | (isNFCSafe(s) ? ScalarClass.nfcSafe.rawValue : 0)
    }

    /// True when a text made only of such scalars is already in NFC and text can be cut before
    /// the scalar without changing its NFC: canonical combining class 0, not excluded from
    /// composition (NFC_QC=No), and never the second scalar of a canonical composition
    /// (NFC_QC=Maybe). Conservatively, every mark, the Hangul medial vowels and final consonants
    /// (U+1161–1175, U+11A8–11C2, composed onto a preceding syllable) and, above the BMP, every
    /// letter, mark and number count as unsafe: they go through the standard library's NFC.
    /// Scalars below U+0300 are all safe (the first NFC_QC≠Yes scalar is U+0300).
    static func isNFCSafe(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x300 { return true }
        let p = s.properties
        if p.canonicalCombiningClass != .notReordered || p.isFullCompositionExclusion { return false }
        if (0x1161...0x1175).contains(v) || (0x11A8...0x11C2).contains(v) { return false }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return false
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return v < 0x10000
        default: return true
        }
    }
}

/// Reading UTF-8 that is known to be valid (it came from a `String` or from the normalizer).
enum UTF8Scalars {
    /// The scalar starting at `p[i]` and its length in bytes (1–4).
    @inline(__always) static func decode(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F), 4)
    }

    /// Validates UTF-8 strictly (no overlong forms, surrogates or values above U+10FFFF) and calls
    /// `body` with each scalar; false on the first invalid sequence.
    @inline(__always) static func forEachValidated(_ p: UnsafePointer<UInt8>, _ n: Int, _ body: (UInt32) -> Bool) -> Bool {
        var i = 0
        while i < n {
            let b0 = UInt32(p[i])
            var v: UInt32, len: Int
            if b0 < 0x80 { v = b0; len = 1 }
            else if b0 >= 0xC2 && b0 < 0xE0 { v = b0 & 0x1F; len = 2 }
            else if b0 >= 0xE0 && b0 < 0xF0 { v = b0 & 0x0F; len = 3 }
            else if b0 >= 0xF0 && b0 < 0xF5 { v = b0 & 0x07; len = 4 }
            else { return false }
            guard i + len <= n else { return false }
            var k = 1
            while k < len {
                let c = UInt32(p[i + k])
                guard c & 0xC0 == 0x80 else { return false }
                v = v << 6 | (c & 0x3F)
                k += 1
            }
            if len == 3 && (v < 0x800 || (v >= 0xD800 && v < 0xE000)) { return false }
            if len == 4 && (v < 0x10000 || v > 0x10FFFF) { return false }
            if !body(v) { return false }
            i += len
        }
        return true
    }

    /// Appends the UTF-8 encoding of `v` (a valid scalar value).
    @inline(__always) static func append(_ v: UInt32, to out: inout [UInt8]) {
        if v < 0x80 { out.append(UInt8(v)) }
        else if v < 0x800 { out.append(UInt8(0xC0 | (v >> 6))); out.append(UInt8(0x80 | (v & 0x3F))) }
        else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12))); out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18))); out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
}

/// NFC with a quick check: text whose scalars are all `nfcSafe` is returned untouched; otherwise
/// only the stretches from the last safe scalar before an unsafe one to the next safe scalar are
/// normalized (NFC never reaches across a safe scalar), by the standard library.
enum NFC {
    /// nil when `p[0..<n]` is already NFC by the quick check; else the normalized bytes.
    static func normalize(_ p: UnsafePointer<UInt8>, _ n: Int) -> [UInt8]? {
        let table = UnicodeTables.bmp
        // Fast scan: ASCII and U+0080–U+02FF (lead bytes below 0xCC) are always safe.
        var i = 0
        var lastSafe = 0
        while i < n {
            let b = p[i]
            if b < 0x80 { lastSafe = i; i += 1; continue }
            if b < 0xCC { lastSafe = i; i += 2; continue }
            let (v, len) = UTF8Scalars.decode(p, i)
            if UnicodeTables.bits(v, table) & ScalarClass.nfcSafe.rawValue != 0 { lastSafe = i; i += len; continue }
            break
        }
        if i >= n { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n + 16)
        var copied = 0   // p[0..<copied] has been emitted
        // Invariant here: p[i] starts an unsafe scalar; lastSafe is the start of the last safe
        // scalar before it, or `copied` when there is none after the last window.
        var windowStart = lastSafe >= copied && lastSafe < i ? lastSafe : copied
        while true {
            // Extend the window over unsafe scalars up to the next safe one (or the end).
            var j = i
            while j < n {
                let (v, len) = UTF8Scalars.decode(p, j)
                if UnicodeTables.bits(v, table) & ScalarClass.nfcSafe.rawValue != 0 { break }
                j += len
            }
            out.append(contentsOf: UnsafeBufferPointer(start: p + copied, count: windowStart - copied))
            let window = String(decoding: UnsafeBufferPointer(start: p + windowStart, count: j - windowStart), as: UTF8.self)
            out.append(contentsOf: window._nfcCodeUnits)
            copied = j
            if j >= n { break }
            // Find the next unsafe scalar after j.
            i = j
            lastSafe = j
            while i < n {
                let (v, len) = UTF8Scalars.decode(p, i)
                if UnicodeTables.bits(v, table) & ScalarClass.nfcSafe.rawValue != 0 { lastSafe = i; i += len; continue }
                break
            }
            if i >= n { break }
            windowStart = lastSafe
        }
        out.append(contentsOf: UnsafeBufferPointer(start: p + copied, count: n - copied))
        return out
    }
}

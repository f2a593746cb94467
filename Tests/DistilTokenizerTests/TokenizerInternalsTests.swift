import DistilFormats
@testable import DistilTokenizer
import Foundation
import XCTest

/// The fast paths against the slow, obviously right ones: the NFC quick check against the standard
/// library's NFC of the whole text, the heap BPE against the scanning BPE, the byte-level
/// pre-tokenizer's classes against the scalar properties.
final class TokenizerInternalsTests: XCTestCase {
    /// A deterministic generator (DistilFormats' SplitMix64), so a failure reproduces.
    struct Rand {
        var rng: SplitMix64
        init(s: UInt64) { rng = SplitMix64(seed: s) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Scalars that compose, decompose, reorder or are excluded from composition, and plain ones.
    static let tricky: [UInt32] = [
        0x61, 0x65, 0x41, 0x20, 0x3E, 0x3C, 0x0A, 0xE9, 0xC5,            // ASCII, precomposed Latin-1
        0x300, 0x301, 0x308, 0x304, 0x323, 0x327, 0x338, 0x345, 0x31B,   // combining marks (various ccc)
        0x1E0D, 0x1E69, 0x1EC7, 0x212B, 0x2126, 0x212A,                  // precomposed, singletons
        0x958, 0x915, 0x93C, 0x94D, 0x930,                               // Devanagari, nukta, exclusion
        0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0xD4DB,                  // Hangul jamo and syllables
        0x0B47, 0x0B3E, 0x0B57, 0x0DD9, 0x0DCF, 0x0DCA, 0x1025, 0x102E,  // two-part vowel signs
        0x3099, 0x309A, 0x304B, 0x30AB, 0x30F0,                          // kana voicing
        0xF900, 0xFA10, 0x2F800, 0x1D15E, 0x1D165, 0x1D16E,              // CJK compatibility, musical symbols
        0x110A5, 0x110BA, 0x1109A, 0x11131, 0x11127,                     // Kaithi, Chakma (supplementary)
        0x1F44D, 0x1F3FD, 0x200D, 0x1F468, 0x4E2D, 0x20000,              // emoji, ZWJ, CJK
        0x0F73, 0x0F71, 0x0F72, 0x0F80, 0x1B05, 0x1B35, 0x1B06,          // Tibetan, Balinese
    ]

    func testNFCQuickCheckMatchesFullNormalization() {
        var rng = Rand(s: 42)
        for round in 0..<20_000 {
            let n = 1 + rng.below(12)
            var s = String.UnicodeScalarView()
            for _ in 0..<n { s.append(Unicode.Scalar(Self.tricky[rng.below(Self.tricky.count)])!) }
            let text = String(s)
            let want = Array(text._nfcCodeUnits)
            let bytes = Array(text.utf8)
            let got = bytes.withUnsafeBufferPointer { NFC.normalize($0.baseAddress!, $0.count) } ?? bytes
            if got != want {
                XCTFail("round \(round): \(text.unicodeScalars.map { String($0.value, radix: 16) }): got \(got), want \(want)")
                return
            }
        }
    }

    /// Python's unicodedata (an independent source) lists every scalar with a nonzero combining
    /// class, NFC_QC=No or NFC_QC=Maybe; the quick check must not call any of them safe.
    func testNoNFCUnsafeScalarIsMarkedSafe() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/nfc-unsafe.txt").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        var checked = 0
        for line in lines {
            let parts = line.components(separatedBy: "..").compactMap { UInt32($0, radix: 16) }
            XCTAssertFalse(parts.isEmpty, String(line))
            for v in parts[0]...(parts.last ?? parts[0]) {
                checked += 1
                XCTAssertEqual(UnicodeTables.bits(v) & ScalarClass.nfcSafe.rawValue, 0, "U+\(String(v, radix: 16)) is marked NFC-safe")
            }
        }
        XCTAssertGreaterThan(checked, 2000)
    }

    func testClassTableAgreesWithScalarProperties() {
        for v in stride(from: UInt32(0), to: 0x30000, by: 7) {
            guard let s = Unicode.Scalar(v) else { continue }
            XCTAssertEqual(UnicodeTables.bits(v) & PreTokenizer.classMask, ScalarClass.of(s).rawValue, "U+\(String(v, radix: 16))")
        }
    }

    func testHeapBPEEqualsScanBPE() throws {
        let tok = TokenizerTests.qwen
        let fragments = ["a", "b", "e", "th", "the", " ", "  ", "in", "ing", "er", "an", "é", "中", "\u{301}", "0", "=", "-", "aa"]
        var rng = Rand(s: 7)
        var scratch = BPEScratch()
        for round in 0..<400 {
            var bytes: [UInt8] = []
            let pieces = 1 + rng.below(150)
            for _ in 0..<pieces { bytes.append(contentsOf: fragments[rng.below(fragments.count)].utf8) }
            var scan: [Int32] = [], heap: [Int32] = []
            bytes.withUnsafeBufferPointer { b in
                BPE.scanEncode(b.baseAddress!, b.count, byteIDs: tok.byteIDs.p, merges: tok.merges.probe, scratch: &scratch, into: &scan)
                BPE.heapEncode(b.baseAddress!, b.count, byteIDs: tok.byteIDs.p, merges: tok.merges.probe, scratch: &scratch, into: &heap)
            }
            XCTAssertEqual(scan, heap, "round \(round)")
            XCTAssertEqual(tok.decode(scan.map(Int.init)), String(decoding: bytes, as: UTF8.self))
        }
    }

    func testByteHashAndEqualityOnAllShortLengths() {
        var rng = Rand(s: 3)
        for n in 0..<70 {
            let a = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var b = a
            XCTAssertTrue(a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in
                ByteHash.equal(x.baseAddress ?? UnsafePointer(bitPattern: 1)!, y.baseAddress ?? UnsafePointer(bitPattern: 1)!, n) } })
            XCTAssertEqual(a.withUnsafeBufferPointer { ByteHash.hash($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, n, seed: 9) },
                           b.withUnsafeBufferPointer { ByteHash.hash($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, n, seed: 9) })
            for k in 0..<n {   // one differing byte anywhere is seen
                b[k] ^= 0x40
                XCTAssertFalse(a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in ByteHash.equal(x.baseAddress!, y.baseAddress!, n) } }, "n \(n) k \(k)")
                XCTAssertNotEqual(a.withUnsafeBufferPointer { ByteHash.hash($0.baseAddress!, n, seed: 9) },
                                  b.withUnsafeBufferPointer { ByteHash.hash($0.baseAddress!, n, seed: 9) }, "n \(n) k \(k)")
                b[k] ^= 0x40
            }
        }
    }

    func testPieceCacheKeepsWorkingWhenFull() {
        var cache = PieceCache(slots: 256)   // cleared every 128 entries
        for k in 0..<5000 {
            let piece = Array("piece\(k % 700)".utf8)
            piece.withUnsafeBufferPointer { p in
                let h = cache.hash(p.baseAddress!, p.count)
                var out: [Int] = []
                if cache.lookup(p.baseAddress!, p.count, hash: h, into: &out) {
                    XCTAssertEqual(out, [k % 700, 1])
                } else {
                    [Int32(k % 700), 1].withUnsafeBufferPointer { cache.insert(p.baseAddress!, p.count, hash: h, ids: $0) }
                }
            }
        }
    }
}

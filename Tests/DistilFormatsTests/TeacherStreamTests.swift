import DistilFormats
import Foundation
import XCTest

final class TeacherStreamTests: XCTestCase {
    let vocab = 50

    func header(_ n: Int) -> TeacherHeader {
        TeacherHeader(teacher: TeacherRef(repo: "demo/teacher", revision: "local", weightsSHA256: "ab", block: 7, blockHash: "00ff"),
                      tokenizerSHA256: "cd", generation: GenerationSettings(maxNewTokens: 20, temperature: 0, topP: 1, seed: nil),
                      vocabSize: vocab, nPrompts: n)
    }

    func row(_ seed: Int) -> [Float] {
        // Half the vocabulary far below the exact-storage threshold, half above it.
        var logits = (0..<vocab).map { Float(sin(Double($0 * 7 + seed))) * 3 - ($0 % 2 == 0 ? 0 : 25) }
        let m = logits.max()!
        let lse = m + log(logits.map { exp($0 - m) }.reduce(0, +))
        for i in 0..<vocab { logits[i] -= lse }
        return logits
    }

    /// Makes a stream with prompts of the given continuation lengths; returns the decompressed payload too.
    func makeStream(_ lengths: [Int]) throws -> [UInt8] {
        let m = MemoryWriter()
        let w = try TeacherStreamWriter(m, header: header(lengths.count))
        for (k, n) in lengths.enumerated() {
            try w.beginPrompt(TeacherPrompt(id: "p\(k)", promptTokens: [1, 2, 3], continuationTokens: (0..<n).map { $0 % vocab }, finish: "length"))
            for r in 0..<n { try row(k * 100 + r).withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) } }
        }
        try w.finish()
        return m.bytes
    }

    func readAll(_ bytes: [UInt8], name: String = "t.dlt") throws -> [(TeacherPrompt, [[Float]])] {
        let r = try TeacherStreamReader(ZstdReader(MemoryReader(bytes, name: name)))
        var out: [(TeacherPrompt, [[Float]])] = []
        var buf = [Float](repeating: 0, count: vocab * 3)
        while let p = try r.nextPrompt() {
            var rows: [[Float]] = []
            while true {
                let n = try buf.withUnsafeMutableBufferPointer { try r.readRows(into: $0.baseAddress!, maxRows: 3) }
                if n == 0 { break }
                for i in 0..<n { rows.append(Array(buf[i * vocab..<(i + 1) * vocab])) }
            }
            out.append((p, rows))
        }
        return out
    }

    func testRoundTrip() throws {
        let lengths = [0, 1, 17, 40]   // an empty continuation, and rows spanning several ROWS records
        let got = try readAll(try makeStream(lengths))
        XCTAssertEqual(got.map { $0.1.count }, lengths)
        for (k, (p, rows)) in got.enumerated() {
            XCTAssertEqual(p.id, "p\(k)")
            for (r, values) in rows.enumerated() {
                let want = row(k * 100 + r)
                for i in 0..<vocab {
                    let stored = want[i] > TeacherStream.exactThreshold ? want[i] : Float(Float16(want[i]))
                    XCTAssertEqual(values[i], stored, "prompt \(k) row \(r) value \(i)")
                }
            }
        }
    }

    func testSkippingRowsStillVerifiesTrailer() throws {
        let r = try TeacherStreamReader(ZstdReader(MemoryReader(try makeStream([5, 5]))))
        XCTAssertEqual(try r.nextPrompt()?.id, "p0")
        XCTAssertEqual(try r.nextPrompt()?.id, "p1")
        XCTAssertNil(try r.nextPrompt())
    }

    func testWrongMagic() throws {
        let bytes = try Zstd.compress(Array("DLTEACH9".utf8) + [UInt8](repeating: 0, count: 20))
        XCTAssertThrowsError(try readAll(bytes)) { e in XCTAssertTrue("\(e)".contains("wrong magic"), "\(e)") }
    }

    func testTruncatedZstdFrame() throws {
        let z = try makeStream([10])
        XCTAssertThrowsError(try readAll(Array(z.prefix(z.count - 5)))) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }

    func testTruncatedAtRecordBoundaryIsDetected() throws {
        // Recompress the stream without its DONE record: a cleanly closed zstd frame with a missing trailer.
        let raw = try Zstd.decompress(try makeStream([3]))
        let doneAt = findLast(raw, Array("DONE".utf8))!
        let cut = try Zstd.compress(Array(raw[..<doneAt]))
        XCTAssertThrowsError(try readAll(cut)) { e in XCTAssertTrue("\(e)".contains("without its DONE trailer"), "\(e)") }
        // And without the last ROWS record.
        let rowsAt = findLast(raw, Array("ROWS".utf8))!
        XCTAssertThrowsError(try readAll(try Zstd.compress(Array(raw[..<rowsAt])))) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }

    func testCorruptPayloadFailsChecksum() throws {
        var raw = try Zstd.decompress(try makeStream([3]))
        let rowsAt = findLast(raw, Array("ROWS".utf8))!
        raw[rowsAt + 12 + 8 + 5] ^= 0x10   // one bit inside a row value
        XCTAssertThrowsError(try readAll(try Zstd.compress(raw))) { e in
            XCTAssertTrue("\(e)".contains("ROWS record checksum mismatch"), "\(e)")
        }
    }

    func testHugeLengthIsRefusedBeforeAllocating() throws {
        var raw = try Zstd.decompress(try makeStream([1]))
        let prmtAt = findLast(raw, Array("PRMT".utf8))!
        for i in 0..<8 { raw[prmtAt + 4 + i] = 0xFF }
        XCTAssertThrowsError(try readAll(try Zstd.compress(raw))) { e in
            XCTAssertTrue("\(e)".contains("exceeds its"), "\(e)")
        }
    }

    func testBytesAfterDoneAreRefused() throws {
        let one = try makeStream([2])
        // A whole second stream appended (a second zstd frame), or a stray byte inside the frame.
        XCTAssertThrowsError(try readAll(one + one)) { e in
            XCTAssertTrue("\(e)".contains("t.dlt: corrupt stream: bytes after the DONE trailer"), "\(e)")
        }
        let raw = try Zstd.decompress(one)
        XCTAssertThrowsError(try readAll(try Zstd.compress(raw + [0]))) { e in
            XCTAssertTrue("\(e)".contains("bytes after the DONE trailer"), "\(e)")
        }
        XCTAssertThrowsError(try readAll(one + [0x28, 0xB5])) { _ in }   // not zstd: the decoder refuses
    }

    func testRowsThatAreNotLogProbabilitiesAreRefused() throws {
        // Rows shifted by +0.5 (probabilities summing to e^0.5) and by -0.02 (0.980): beyond the
        // ±0.01 tolerance; -0.005 (0.995) is inside it and reads.
        for (shift, refused) in [(Float(0.5), true), (-0.02, true), (-0.005, false)] {
            let m = MemoryWriter()
            let w = try TeacherStreamWriter(m, header: header(1))
            try w.beginPrompt(TeacherPrompt(id: "p0", promptTokens: [1], continuationTokens: [1, 2], finish: "length"))
            for r in 0..<2 { try row(r).map { $0 + shift }.withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) } }
            try w.finish()
            if refused {
                XCTAssertThrowsError(try readAll(m.bytes), "shift \(shift)") { e in
                    XCTAssertTrue("\(e)".contains("prompt 'p0' row 0: not log-probabilities"), "\(e)")
                }
            } else {
                XCTAssertEqual(try readAll(m.bytes).first?.1.count, 2)
            }
        }
        // A NaN value.
        let m = MemoryWriter()
        let w = try TeacherStreamWriter(m, header: header(1))
        try w.beginPrompt(TeacherPrompt(id: "p0", promptTokens: [1], continuationTokens: [1], finish: "length"))
        var r = row(0); r[7] = .nan
        try r.withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) }
        try w.finish()
        XCTAssertThrowsError(try readAll(m.bytes)) { e in XCTAssertTrue("\(e)".contains("sum to nan"), "\(e)") }
    }

    func testCommittedSampleStreamReads() throws {
        let r = try TeacherStreamReader(path: samplePath("teacher.dlt"))
        XCTAssertEqual(r.header.format, "distil-teacher/1")
        var prompts = 0
        var buf = [Float](repeating: 0, count: r.header.vocab_size * 4)
        while let p = try r.nextPrompt() {
            prompts += 1
            var rows = 0
            while true {
                let n = try buf.withUnsafeMutableBufferPointer { try r.readRows(into: $0.baseAddress!, maxRows: 4) }
                if n == 0 { break }
                // Every row is a normalised distribution.
                for i in 0..<n {
                    let s = buf[i * r.header.vocab_size..<(i + 1) * r.header.vocab_size].reduce(0.0) { $0 + exp(Double($1)) }
                    XCTAssertEqual(s, 1, accuracy: 2e-3)
                }
                rows += n
            }
            XCTAssertEqual(rows, p.continuation_tokens.count)
        }
        XCTAssertEqual(prompts, r.header.n_prompts)
    }

    func findLast(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        var i = hay.count - needle.count
        while i >= 0 {
            if Array(hay[i..<i + needle.count]) == needle { return i }
            i -= 1
        }
        return nil
    }
}

/// The measurement behind the row encoding (docs/FORMATS.md): KL(teacher || student) from teacher
/// rows that went through the real writer and reader, against the same KL from the f32 rows, on
/// heavy-tailed 248,320-wide rows and a close student (KL ~ 0.003 nats, harder than typical).
final class RowEncodingTests: XCTestCase {
    func testStreamEncodingAddsLessThan1e4RelativeKLError() throws {
        let vocab = 248_320, rows = 16
        var rng = TestRNG(2024)
        var teacherRows: [[Float]] = [], studentRows: [[Double]] = []
        var t = [Double](repeating: 0, count: vocab), s = [Double](repeating: 0, count: vocab)
        for _ in 0..<rows {
            for i in 0..<vocab { t[i] = rng.normal() * 2.0 }
            for _ in 0..<400 { t[Int(rng.next() % UInt64(vocab))] += -log(max(rng.uniform(), 1e-12)) * 4 }
            for _ in 0..<3 { t[Int(rng.next() % UInt64(vocab))] += 14 + rng.uniform() * 6 }
            for i in 0..<vocab { s[i] = t[i] + rng.normal() * 0.15 }
            teacherRows.append(logSoftmax(t).map { Float($0) })
            studentRows.append(logSoftmax(s))
        }
        let header = TeacherHeader(teacher: TeacherRef(repo: "t", revision: nil, weightsSHA256: nil, block: nil, blockHash: nil),
                                   tokenizerSHA256: nil, generation: GenerationSettings(maxNewTokens: rows, temperature: 0, topP: 1, seed: nil),
                                   vocabSize: vocab, nPrompts: 1)
        let m = MemoryWriter()
        let w = try TeacherStreamWriter(m, header: header)
        try w.beginPrompt(TeacherPrompt(id: "p", promptTokens: [0], continuationTokens: Array(repeating: 1, count: rows), finish: "length"))
        for r in teacherRows { try r.withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) } }
        try w.finish()
        let reader = try TeacherStreamReader(ZstdReader(MemoryReader(m.bytes)))
        _ = try reader.nextPrompt()
        var decoded = [Float](repeating: 0, count: vocab)
        var exact = 0.0, viaStream = 0.0, viaF16 = 0.0
        for r in 0..<rows {
            XCTAssertEqual(try decoded.withUnsafeMutableBufferPointer { try reader.readRows(into: $0.baseAddress!, maxRows: 1) }, 1)
            for i in 0..<vocab {
                let a = Double(teacherRows[r][i]), b = Double(decoded[i]), h = Double(Float(Float16(teacherRows[r][i])))
                exact += exp(a) * (a - studentRows[r][i])
                viaStream += exp(b) * (b - studentRows[r][i])
                viaF16 += exp(h) * (h - studentRows[r][i])
            }
        }
        XCTAssertNil(try reader.nextPrompt())
        let rel = abs(viaStream - exact) / exact, relF16 = abs(viaF16 - exact) / exact
        print(String(format: "row encoding: mean KL %.5f nats; relative KL error f16+f32top %.2e (plain f16 would be %.2e); %d bytes compressed for %d rows",
                     exact / Double(rows), rel, relF16, m.bytes.count, rows))
        XCTAssertGreaterThan(exact / Double(rows), 0.001)
        XCTAssertLessThan(rel, 1e-5)
    }

    func logSoftmax(_ x: [Double]) -> [Double] {
        let m = x.max()!
        let lse = m + log(x.reduce(0) { $0 + exp($1 - m) })
        return x.map { $0 - lse }
    }
}

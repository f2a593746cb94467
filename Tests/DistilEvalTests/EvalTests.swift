import DistilEval
import DistilFormats
import DistilModel
import Foundation
import XCTest

/// dl-teacher's and dl-kl's cores on the embedded demo checkpoints.
final class EvalTests: XCTestCase {
    var demo: String { demoDirectory }

    let prompts = [
        PromptRecord(id: "p0", text: "", tokens: [10, 20, 30, 40, 50]),
        PromptRecord(id: "p1", text: "", tokens: [7]),
        PromptRecord(id: "p2", text: "", tokens: Array(100..<140)),
    ]

    func teacherStream(maxNew: Int, temperature: Double = 0, seed: String? = nil, batch: Int = 2) throws -> [UInt8] {
        try demoTeacherStream(prompts, maxNew: maxNew, temperature: temperature, seed: seed, batch: batch, threads: 1)
    }

    func score(_ stream: [UInt8], model: String, chunk: Int = 7) throws -> [KLRecord] {
        let lm = try LanguageModel.load(directory: demo + "/" + model, threads: 1)
        var out: [KLRecord] = []
        try Scorer(model: lm, identity: StudentIdentity(model: model), chunkRows: chunk)
            .score(try TeacherStreamReader(ZstdReader(MemoryReader(stream)))) { out.append($0) }
        return out
    }

    func testTeacherAgainstItselfScoresNearZeroAndStudentsDoNot() throws {
        let stream = try teacherStream(maxNew: 12)
        let selfKL = try score(stream, model: "teacher")
        XCTAssertEqual(selfKL.map(\.prompt_id), ["p0", "p1", "p2"])
        for r in selfKL {
            XCTAssertEqual(r.n_tokens, 12)
            // Decode-path rows vs prefill-path logits, stored as f16+f32top: only rounding remains.
            XCTAssertLessThan(r.kl_mean, 1e-4, "\(r)")
            XCTAssertEqual(r.top1_agree, 1.0)
        }
        let king = try score(stream, model: "king"), challenger = try score(stream, model: "challenger")
        let mean = { (rs: [KLRecord]) in rs.map(\.kl_mean).reduce(0, +) / Double(rs.count) }
        XCTAssertGreaterThan(mean(king), 0.05)
        XCTAssertLessThan(mean(challenger), 0.99 * mean(king), "the demo challenger must beat the king by more than 1%")
    }

    func testDeterministicForTheSameFlags() throws {
        // Same flags: byte-identical streams.
        let a = try teacherStream(maxNew: 9, batch: 3), b = try teacherStream(maxNew: 9, batch: 3)
        XCTAssertEqual(a, b)
        // Another --batch runs the MLP/MoE on another number of rows, which changes float rounding
        // only: the same continuations, and scores within 1e-5 relative.
        let one = try teacherStream(maxNew: 9, batch: 1)
        let prompts = { (bytes: [UInt8]) -> [[Int]] in
            let r = try! TeacherStreamReader(ZstdReader(MemoryReader(bytes)))
            var out: [[Int]] = []
            while let p = try! r.nextPrompt() { out.append(p.continuation_tokens) }
            return out
        }
        XCTAssertEqual(prompts(one), prompts(a))
        let k1 = try score(one, model: "king"), k3 = try score(a, model: "king")
        for (x, y) in zip(k1, k3) { XCTAssertEqual(x.kl_mean, y.kl_mean, accuracy: 1e-5 * max(1, x.kl_mean)) }
        // Same flags: identical results. Another LM-head chunk size changes only float rounding
        // (OpenBLAS picks other kernels for other matrix shapes): within 1e-6 relative.
        let c1 = try score(a, model: "king", chunk: 1), c64 = try score(a, model: "king", chunk: 64)
        XCTAssertEqual(try score(a, model: "king", chunk: 64), c64)
        for (x, y) in zip(c1, c64) { XCTAssertEqual(x.kl_mean, y.kl_mean, accuracy: 1e-6 * max(1, x.kl_mean)) }
    }

    func testSeededSamplingIsReproducibleAndDiffersFromGreedy() throws {
        let s1 = try teacherStream(maxNew: 10, temperature: 1.0, seed: "abc/5")
        let s2 = try teacherStream(maxNew: 10, temperature: 1.0, seed: "abc/5")
        let s3 = try teacherStream(maxNew: 10, temperature: 1.0, seed: "abd/5")
        XCTAssertEqual(s1, s2)
        XCTAssertNotEqual(s1, s3)
    }

    func testSamplerGreedyAndNucleus() {
        let logits: [Float] = [0, 3, 3, 1]
        var rng = DistilRNG(domain: "sample", seed: "t")
        XCTAssertEqual(Sampler.pick(logits, count: 4, temperature: 0, topP: 1, rng: &rng), 1, "ties go to the lowest id")
        // A tiny top-p keeps only the most probable token (lowest id among equals).
        for _ in 0..<20 { XCTAssertEqual(Sampler.pick(logits, count: 4, temperature: 1, topP: 0.01, rng: &rng), 1) }
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 { counts[Sampler.pick(logits, count: 4, temperature: 1, topP: 1, rng: &rng)] += 1 }
        // softmax([0,3,3,1]) = [0.022, 0.457, 0.457, 0.062]
        XCTAssertEqual(Double(counts[0]) / 4000, 0.022, accuracy: 0.012)
        XCTAssertEqual(Double(counts[3]) / 4000, 0.062, accuracy: 0.015)
    }

    func testStudentWithOtherVocabularyIsRefused() throws {
        let header = TeacherHeader(teacher: TeacherRef(repo: "t", revision: nil, weightsSHA256: nil, block: nil, blockHash: nil),
                                   tokenizerSHA256: nil, generation: GenerationSettings(maxNewTokens: 1, temperature: 0, topP: 1, seed: nil),
                                   vocabSize: 1000, nPrompts: 0)
        let m = MemoryWriter()
        try TeacherStreamWriter(m, header: header).finish()
        XCTAssertThrowsError(try score(m.bytes, model: "king")) { e in
            XCTAssertTrue("\(e)".contains("does not match the teacher stream's 1000"), "\(e)")
        }
    }

    /// Teacher rows are read on a thread of their own, ahead of the forward pass, and matched to
    /// the LM head's chunks: every chunk size (1 row, 5, all at once) pairs the same rows. (The LM
    /// head's sgemm rounds differently for different row counts, so the last bits may differ: the
    /// same `--chunk` is part of reproducing an epoch exactly.)
    func testScoresDoNotDependOnTheChunkSize() throws {
        let stream = try teacherStream(maxNew: 12)
        let ref = try score(stream, model: "king", chunk: 7)
        for chunk in [1, 5, 64] {
            let got = try score(stream, model: "king", chunk: chunk)
            XCTAssertEqual(got.map(\.prompt_id), ref.map(\.prompt_id))
            for (a, b) in zip(got, ref) {
                XCTAssertEqual(a.n_tokens, b.n_tokens)
                XCTAssertEqual(a.top1_agree, b.top1_agree)
                XCTAssertEqual(a.kl_mean, b.kl_mean, accuracy: 1e-6 * b.kl_mean, "chunk \(chunk), \(a.prompt_id)")
                XCTAssertEqual(a.kl_max!, b.kl_max!, accuracy: 1e-6 * b.kl_max!, "chunk \(chunk), \(a.prompt_id)")
            }
        }
    }

    /// A corrupt or truncated stream fails with the reading thread's error (naming the stream), and
    /// the prompt it hit is never emitted.
    func testCorruptAndTruncatedRowsFailWithoutEmittingThePrompt() throws {
        let good = try teacherStream(maxNew: 12)
        // Re-encode the plain bytes with a flipped byte inside the second prompt's first ROWS record
        // (read by the prefetching thread), or cut inside it.
        let plain = try ZstdReader(MemoryReader(good)).readAll()
        func find(_ tag: String, from: Int) -> Int {
            let t = Array(tag.utf8)
            return (from..<(plain.count - 4)).first { Array(plain[$0..<($0 + 4)]) == t }!
        }
        let rows = find("ROWS", from: find("PRMT", from: find("PRMT", from: 0) + 4) + 4)
        var flipped = plain
        flipped[rows + 100] ^= 0x40
        for (bytes, expect) in [(flipped, "checksum mismatch"), (Array(plain[0..<(rows + 300)]), "truncated")] {
            let m = MemoryWriter()
            let z = ZstdWriter(m, level: 1)
            try z.write(bytes)
            try z.close()
            let lm = try LanguageModel.load(directory: demo + "/king", threads: 2)
            var emitted: [String] = []
            XCTAssertThrowsError(try Scorer(model: lm, identity: StudentIdentity(model: "king"), chunkRows: 4)
                .score(try TeacherStreamReader(ZstdReader(MemoryReader(m.bytes, name: "bad.dlt")))) { emitted.append($0.prompt_id) }) { e in
                XCTAssertTrue("\(e)".contains(expect), "\(e)")
                XCTAssertTrue(e is ScoringStop, "a damaged teacher stream is no model's fault: it stops the run")
            }
            XCTAssertEqual(emitted, ["p0"])
        }
    }
}

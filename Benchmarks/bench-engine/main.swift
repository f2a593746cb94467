// bench-engine: scoring one continuation with a Qwen3.5-0.8B-shaped student (forward over a 512-token
// prompt + 512-token continuation, full-vocabulary KL at the 512 continuation positions against a
// teacher stream) by the engine (Scorer, as dl-kl runs it) and by transformers + torch fp32 in the
// same run, at the same thread count; time, peak memory and their ratios, and the matmul GFLOP/s
// against OpenBLAS sgemm's own on this machine.
//
//   swift build -c release --product bench-engine
//   .build/release/bench-engine [--dir /dev/shm/bench-engine] [--threads N] [--chunk 128] [--runs 3]
//                               [--cold] [--no-peer] [--sgemm-only] [--convert-only [--with-sgemm]]
//
// The checkpoint (random weights, bf16) is written once by make_checkpoint.py (needs /opt/distil-venv);
// the teacher stream (random heavy-tailed rows) once by this program. Each side runs in a process of
// its own so its peak RSS is its own; times exclude loading (printed separately). Each round runs
// both sides; each side scores twice and times the second (--cold: the first); medians are reported.
// For profiling: `--score-child --no-decode --dir DIR --threads N` runs the engine's scoring alone.
import COpenBLAS
import DistilEval
import DistilKernels
import DistilKernelsX86v3
import DistilKernelsX86v4
import DistilFormats
import DistilModel
import DistilScore
import DistilTensors
import Foundation

BLASCore.ensureOptimisedKernels()
let peerISA = CPUFeatures.exportPeerEnvironment()

var dir = "/dev/shm/bench-engine", threads = ProcessInfo.processInfo.activeProcessorCount, chunk = 128
var peer = true, child = false, sgemmOnly = false, runs = 3, warm = true
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--dir": dir = args.popFirst() ?? dir
    case "--threads": threads = Int(args.popFirst() ?? "") ?? threads
    case "--chunk": chunk = Int(args.popFirst() ?? "") ?? chunk
    case "--no-peer": peer = false
    case "--cold": warm = false
    case "--convert-only", "--with-sgemm", "--no-decode", "--products": break
    case "--runs": runs = max(1, Int(args.popFirst() ?? "") ?? runs)
    case "--score-child": child = true
    case "--sgemm-only": sgemmOnly = true
    default:
        FileHandle.standardError.write("usage: bench-engine [--dir DIR] [--threads N] [--chunk ROWS] [--runs N] [--cold] [--no-peer] [--sgemm-only] [--convert-only [--with-sgemm]] [--products]\n".data(using: .utf8)!)
        exit(2)
    }
}
// The peer's Python (torch + transformers): DISTIL_PYTHON, else the venv the docs name.
let python = ProcessInfo.processInfo.environment["DISTIL_PYTHON"] ?? "/opt/distil-venv/bin/python"
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
/// Peak resident set of this process image (VmHWM, KiB): unlike getrusage's ru_maxrss it is not
/// inherited from the parent across exec.
func maxRSS() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let l = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
    return Int(l.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

// MARK: the bf16 products alone: one thread, thread CPU time (the machine may be shared), best of 3.
if CommandLine.arguments.contains("--products") {
    openblas_set_num_threads(1)
    let N = 16_384, K = 2048, maxT = 64
    var seed: UInt64 = 17
    func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 700 }
    let w = (0..<(N * K)).map { _ in UInt16(truncatingIfNeeded: rnd().bitPattern >> 16) }
    let x = (0..<(maxT * K)).map { _ in rnd() }
    let y = UnsafeMutablePointer<Float>.allocate(capacity: maxT * N), panel = UnsafeMutablePointer<Float>.allocate(capacity: 256 * K)
    func cpu() -> Double { var t = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
    func best(_ body: () -> Void) -> Double { (0..<3).map { _ in let t0 = cpu(); body(); return cpu() - t0 }.min()! * 1000 }
    print("bf16 products, one thread, [\(N) x \(K)] bf16 weights (\(N * K * 2 / 1_000_000) MB), thread CPU ms (best of 3); level \(CPUFeatures.levelDescription)")
    print("rows   v3 (1 weight row)   v4 (2 weight rows)   v4 (4 weight rows)   convert + sgemm (256-row panels)")
    w.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in
        let m = Matrix(base: wp.baseAddress!, dtype: .bf16, rows: N, cols: K, name: "w")
        for T in [1, 2, 4, 8, 16, 40, 64] {
            // Blocks of 64 weight rows, as Compute.matmul hands them out.
            let v3 = CPUFeatures.x86Level >= 3 ? best { for n0 in stride(from: 0, to: N, by: 64) {
                DistilKernelsX86v3.Kernels.bf16Rows(x: xp.baseAddress!, rows: T, w: wp.baseAddress!, k: K, from: n0, to: n0 + 64, y: y, ldy: N) } } : .nan
            let v4 = CPUFeatures.x86Level >= 4 ? best { for n0 in stride(from: 0, to: N, by: 64) {
                DistilKernelsX86v4.Kernels.bf16Rows(x: xp.baseAddress!, rows: T, w: wp.baseAddress!, k: K, from: n0, to: n0 + 64, y: y, ldy: N, quads: false) } } : .nan
            let v4q = CPUFeatures.x86Level >= 4 ? best { for n0 in stride(from: 0, to: N, by: 64) {
                DistilKernelsX86v4.Kernels.bf16Rows(x: xp.baseAddress!, rows: T, w: wp.baseAddress!, k: K, from: n0, to: n0 + 64, y: y, ldy: N, quads: true) } } : .nan
            let sg = best { for r0 in stride(from: 0, to: N, by: 256) {
                m.convert(rows: r0, count: 256, into: panel)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), 256, Int32(K), 1, xp.baseAddress!, Int32(K), panel, Int32(K), 0, y + r0, Int32(N))
            } }
            print(String(format: "%4d %12.1f %20.1f %20.1f %20.1f", T, v3, v4, v4q, sg))
        }
    } }
    exit(0)
}

// MARK: weight conversion alone: every 2-D tensor, 256-row panels into one reused buffer, twice.
if CommandLine.arguments.contains("--convert-only") {
    let store = try WeightStore(directory: dir + "/model")
    var mats: [Matrix] = []
    for name in store.tensorNames {
        guard let info = store.info(name), info.shape.count == 2 else { continue }
        mats.append(try store.matrix(name, shape: info.shape))
    }
    let elements = mats.reduce(0) { $0 + $1.rows * $1.cols }
    if CommandLine.arguments.contains("--with-sgemm") {
        // The engine's pattern on one thread: convert a panel, then sgemm it against 1,023 rows of X.
        openblas_set_num_threads(1)
        let T = 1023
        let x = UnsafeMutablePointer<Float>.allocate(capacity: T * 4096); x.initialize(repeating: 0.01, count: T * 4096)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: T * 8192)
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 22)
        var conv = 0.0, gemm = 0.0, n = 0
        for m in mats where m.rows < 100_000 && m.cols <= 4096 {
            let P = max(16, min(512, ((1 << 18) / max(1, m.cols)) / 16 * 16))
            var r = 0
            while r < m.rows {
                let k = min(P, m.rows - r)
                let t0 = now()
                m.convert(rows: r, count: k, into: buf)
                let t1 = now()
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(k), Int32(m.cols), 1, x, Int32(m.cols), buf, Int32(m.cols), 0, y, Int32(k))
                gemm += now() - t1; conv += t1 - t0; n += k * m.cols
                r += k
            }
        }
        print(String(format: "with sgemm between panels: conversion %.3f s for %.2f G elements (%.2f GB/s of bf16), sgemm %.3f s", conv, Double(n) / 1e9, Double(n) * 2 / conv / 1e9, gemm))
        exit(0)
    }
    for workers in Set([1, threads]).sorted() {
        for pass in 1...2 {
            let t0 = now()
            // Each worker converts every workers-th 256-row panel into its own reused buffer.
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let buf = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 22)
                defer { buf.deallocate() }
                var k = 0
                for m in mats {
                    var r = 0
                    while r < m.rows {
                        if k % workers == w { m.convert(rows: r, count: min(256, m.rows - r), into: buf) }
                        r += 256; k += 1
                    }
                }
            }
            let dt = now() - t0
            print(String(format: "%d thread(s), pass %d: %.2f G elements in %.3f s = %.2f GB/s of bf16 read", workers, pass,
                         Double(elements) / 1e9, dt, Double(elements) * 2 / dt / 1e9))
        }
    }
    exit(0)
}

// MARK: the child: load the model, score the stream, print one JSON line.
if child {
    do {
        let t0 = now()
        let lm = try LanguageModel.load(directory: dir + "/model", threads: threads)
        let loadS = now() - t0
        let rssLoaded = maxRSS()
        let reader = try TeacherStreamReader(path: dir + "/teacher.dlt")
        var kl = 0.0, n = 0
        var firstS: Double?
        if warm {   // an untimed first scoring, as every prompt after an epoch's first sees the model
            let t0 = now()
            try Scorer(model: lm, identity: StudentIdentity(model: "bench"), chunkRows: chunk).score(try TeacherStreamReader(path: dir + "/teacher.dlt")) { _ in }
            firstS = now() - t0
        }
        let t1 = now()
        try Scorer(model: lm, identity: StudentIdentity(model: "bench"), chunkRows: chunk).score(reader) { r in kl = r.kl_mean; n = r.n_tokens }
        let scoreS = now() - t1
        let peak = maxRSS()
        // Decode: B sequences of 16 prompt tokens, then 16 batched steps (LM head included); seconds per step.
        var stepS: [Double] = []
        for B in CommandLine.arguments.contains("--no-decode") ? [] : [1, 8] {
            let d = try lm.makeDecoder(batch: B, maxLength: 33)
            _ = try d.start((0..<B).map { b in (0..<16).map { (b * 977 + $0 * 131) % 248_000 } })
            let t2 = now()
            for i in 0..<16 { _ = try d.step((0..<B).map { (i * 31 + $0) % 248_000 }) }
            stepS.append((now() - t2) / 16)
        }
        print("{\"load_s\": \(loadS), \"score_s\": \(scoreS), \"kl_mean\": \(kl), \"n\": \(n), \"rss_loaded_kib\": \(rssLoaded), \"peak_rss_kib\": \(peak), \"step1_s\": \(stepS.first ?? -1), \"step8_s\": \(stepS.last ?? -1), \"first_s\": \(firstS ?? -1)}")
        exit(0)
    } catch {
        FileHandle.standardError.write("bench-engine: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}

func run(_ exe: String, _ argv: [String]) -> (String, Int32) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = argv
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { return ("", -1) }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (String(decoding: data, as: UTF8.self), p.terminationStatus)
}

struct Result: Decodable {
    var load_s: Double; var score_s: Double; var kl_mean: Double; var rss_loaded_kib: Int; var peak_rss_kib: Int
    var step1_s: Double?; var step8_s: Double?; var first_s: Double?
}
func parse(_ s: String) -> Result? {
    guard let line = s.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else { return nil }
    return try? JSONDecoder().decode(Result.self, from: Data(line.utf8))
}

// MARK: sgemm's own peak on this machine (2048^3, best of 3), on 1 thread and on `threads`.
func sgemmPeak(_ n: Int32, threads t: Int) -> Double {
    openblas_set_num_threads(Int32(t))
    let a = [Float](repeating: 0.5, count: Int(n * n)), b = a
    var c = [Float](repeating: 0, count: Int(n * n))
    var best = Double.infinity
    for _ in 0..<3 {
        let t0 = now()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, &c, n)
        best = min(best, now() - t0)
    }
    return 2 * pow(Double(n), 3) / best / 1e9
}
let peak1 = sgemmPeak(2048, threads: 1), peakN = sgemmPeak(2048, threads: threads)
let coreName = String(cString: openblas_get_corename())
if sgemmOnly {
    print(String(format: "OpenBLAS (%@) sgemm 2048^3: %.1f GFLOP/s on 1 thread, %.1f on %d", coreName as NSString, peak1, peakN, threads))
    exit(0)
}

// MARK: inputs
let fm = FileManager.default
if !fm.fileExists(atPath: dir + "/model/model.safetensors") {
    print("writing the checkpoint with \(here)/make_checkpoint.py ...")
    let (_, rc) = run(python, [here + "/make_checkpoint.py", dir])
    guard rc == 0 else { print("bench-engine: make_checkpoint.py failed (needs \(python) with torch and transformers)"); exit(1) }
}
struct Tokens: Decodable { var prompt: [Int]; var continuation: [Int] }
let tokens = try decodeJSONFile(Tokens.self, path: dir + "/tokens.json")
let config = try ModelConfig.load(directory: dir + "/model")
let V = config.vocabSize, C = tokens.continuation.count
if !fm.fileExists(atPath: dir + "/teacher.dlt") {
    print("writing the teacher stream (\(C) rows of \(V)) ...")
    var rng = SplitMix64(seed: 0x5EED)
    func next() -> UInt64 { rng.next() }
    func uniform() -> Double { rng.uniform() }
    let teacherRef = TeacherRef(repo: "bench/teacher", revision: nil, weightsSHA256: nil, block: nil, blockHash: nil)
    let header = TeacherHeader(teacher: teacherRef, tokenizerSHA256: nil,
                               generation: GenerationSettings(maxNewTokens: C, temperature: 0, topP: 1, seed: nil), vocabSize: V, nPrompts: 1)
    let sink = try FileWriter(path: dir + "/teacher.dlt")
    let w = try TeacherStreamWriter(sink, header: header)
    try w.beginPrompt(TeacherPrompt(id: "bench", promptTokens: tokens.prompt, continuationTokens: tokens.continuation, finish: "length"))
    var logits = [Double](repeating: 0, count: V), row = [Float](repeating: 0, count: V)
    for _ in 0..<C {
        // Heavy-tailed: a bulk (sum of uniforms, sd ~2), 1/200 of the tokens boosted, one confident top.
        for i in 0..<V { logits[i] = (uniform() + uniform() + uniform() - 1.5) * 4 }
        for _ in 0..<(V / 200) { logits[Int(next() % UInt64(V))] += 6 + uniform() * 8 }
        logits[Int(next() % UInt64(V))] += 18
        let m = logits.max()!
        var s = 0.0
        for x in logits { s += exp(x - m) }
        let lse = m + log(s)
        for i in 0..<V { row[i] = Float(logits[i] - lse) }
        try row.withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) }
    }
    try w.finish()
    try sink.close()
    // The rows as dl-kl decodes them, raw f32, for the peer.
    let r = try TeacherStreamReader(path: dir + "/teacher.dlt")
    _ = try r.nextPrompt()
    var rows = [Float](repeating: 0, count: C * V)
    var got = 0
    while got < C { got += try rows.withUnsafeMutableBufferPointer { try r.readRows(into: $0.baseAddress! + got * V, maxRows: C - got) } }
    try rows.withUnsafeBytes { try writeFileAtomically(dir + "/teacher-rows.f32", Array($0)) }
}


// MARK: the two sides, alternating, `runs` times each (the machine is a shared VM: medians)
let me = CommandLine.arguments[0]
// The peer as a PyTorch scorer runs by default, with logits_to_keep, and also with subnormals flushed
// to zero as the engine computes (torch.set_flush_denormal): the peer at its best.
let peerNames = ["transformers fp32", "transformers fp32, logits_to_keep", "transformers fp32, logits_to_keep, flush-denormal"]
let peerFlags = [[], ["--keep"], ["--keep", "--flush-denormal"]]
var ourRuns: [Result] = []
var peerRuns: [[Result]] = [[], [], []]
for round in 1...runs {
    let (ours, rc) = run(me, ["--score-child", "--dir", dir, "--threads", String(threads), "--chunk", String(chunk)] + (warm ? [] : ["--cold"]))
    guard rc == 0, let e = parse(ours) else { print("bench-engine: the engine's run failed"); exit(1) }
    ourRuns.append(e)
    var note = String(format: "round %d: engine %.2f s (first %.2f)", round, e.score_s, e.first_s ?? -1)
    if peer {
        for (k, flags) in peerFlags.enumerated() {
            let (out, prc) = run(python, [here + "/peer_transformers.py", dir, String(threads)] + flags + (warm ? ["--warm"] : []))
            if prc == 0, let r = parse(out) { peerRuns[k].append(r); note += String(format: ", %@ %.2f s (first %.2f)", peerNames[k] as NSString, r.score_s, r.first_s ?? -1) }
            else { print("peer \(flags.joined(separator: " ")) failed (exit \(prc))") }
        }
    }
    print(note)
}
/// The run with the median score time.
func median(_ rs: [Result]) -> Result { rs.sorted { $0.score_s < $1.score_s }[rs.count / 2] }
let e = median(ourRuns)
let peers: [(String, Result)] = peerRuns.enumerated().compactMap { $1.isEmpty ? nil : (peerNames[$0], median($1)) }

// MARK: report
// Matmul work of the scoring: every projection of the forward over P + C - 1 tokens, causal attention
// scores (QKᵀ and PV, half the square), and the LM head at the C scored positions.
let h = config.hybrid!
let H = config.hiddenSize, T = tokens.prompt.count + C - 1
let keyDim = h.linearKeyHeads * h.linearKeyDim, valueDim = h.linearValueHeads * h.linearValueDim
let qd = config.heads * config.headDim, kvd = config.kvHeads * config.headDim
var perToken = 0.0
for t in h.layerTypes {
    perToken += Double(3 * H * config.intermediateSize)
    perToken += t == "full_attention" ? Double(H * (2 * qd + 2 * kvd) + qd * H)
                                      : Double(H * (2 * keyDim + 2 * valueDim + 2 * h.linearValueHeads) + valueDim * H)
}
let attentionLayers = Double(h.layerTypes.filter { $0 == "full_attention" }.count)
let flops = 2 * perToken * Double(T) + attentionLayers * 2 * Double(T) * Double(T) * Double(qd) + 2 * Double(C) * Double(V) * Double(H)
func mib(_ kib: Int) -> String { String(format: "%.0f MiB", Double(kib) / 1024) }
print("bench-engine: \(config.architecture) \(config.layers) layers, hidden \(H), vocab \(V); \(tokens.prompt.count)-token prompt + \(C)-token continuation; \(threads) threads; LM head chunk \(chunk)")
print(String(format: "OpenBLAS (%@) sgemm 2048^3: %.1f GFLOP/s on 1 thread, %.1f on %d", coreName as NSString, peak1, peakN, threads))
print("engine kernels: \(CPUFeatures.levelDescription)" + (peerISA.isEmpty ? "" : "; peer held to it by \(peerISA.keys.sorted().map { "\($0)=\(peerISA[$0]!)" }.joined(separator: " "))"))
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
print(pad("", 52) + lpad("load s", 9) + lpad("score s", 9) + lpad("peak RSS", 11) + lpad("after load", 11) + lpad("KL mean", 15))
func line(_ name: String, _ r: Result) {
    print(pad(name, 52) + lpad(String(format: "%.2f", r.load_s), 9) + lpad(String(format: "%.2f", r.score_s), 9)
          + lpad(mib(r.peak_rss_kib), 11) + lpad(mib(r.rss_loaded_kib), 11) + lpad(String(format: "%.9f", r.kl_mean), 15))
}
print("medians of \(runs) alternating rounds:")
line("distil engine (Scorer, as dl-kl)", e)
for (n, r) in peers { line(n, r) }
print(String(format: "engine matmul rate: %.1f GFLOP/s over the scoring (%.2f TFLOP), %.0f%% of sgemm's %d-thread peak",
             flops / e.score_s / 1e9, flops / 1e12, 100 * flops / e.score_s / 1e9 / peakN, threads))
if let s1 = e.step1_s, let s8 = e.step8_s {
    print(String(format: "engine decode step (LM head included): %.3f s for 1 sequence, %.3f s for a batch of 8 (%.3f s per token)", s1, s8, s8 / 8))
}
for (n, r) in peers {
    print(String(format: "vs %@: time %.3fx, peak memory %.3fx, KL mean relative difference %.2e", n as NSString,
                 e.score_s / r.score_s, Double(e.peak_rss_kib) / Double(r.peak_rss_kib), abs(e.kl_mean - r.kl_mean) / r.kl_mean))
}

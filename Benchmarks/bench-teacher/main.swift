// bench-teacher (issue 17): the teacher at its real width. On a real-width slice of Qwen3.5-35B-A3B
// (scripts/dev/make_teacher_slice.py: random bf16 weights, the real checkpoint's widths, names and
// layout, a few of its 40 layers, with the vision tower and MTP head present), in one run at one thread
// count, side by side:
//   - the whole dl-teacher process: prefill tokens/s and decode tokens/s at batch 1, 4, 8, 16, 40, peak
//     memory (each child's ru_maxrss from wait4), weight bytes read per decode step;
//   - transformers `generate` (peer_transformers.py) in fp32 and/or bf16;
//   - llama.cpp's llama-bench and llama-batched-bench on the slice converted to an unquantized GGUF;
//   - the teacher-stream writer alone on synthetic rows (rows/s);
//   - the goal ratios of issue 17, each marked met or not met.
// A peer whose tools are missing is printed as "not run (why)".
//
//   swift build -c release --product bench-teacher --product dl-teacher
//   .build/release/bench-teacher --slice /work/slice/4L [--threads 2] [--peers engine,llama,bf16,fp32,writer]
//       [--prefill-prompts 40] [--prompt-tokens 512] [--peer-prefill-prompts 8] [--prefill-batch 8]
//       [--decode-prompt-tokens 32] [--new-tokens 8] [--batches 1,4,8,16,40]
//       [--python /work/venv-torch/bin/python] [--llama-bin /work/llama.cpp/build/bin] [--gguf SLICE.bf16.gguf]
//       [--work /tmp/bench-teacher] [--json FILE]
//
// Timing by differences of whole-process runs, the same way for every side: prefill = the run that
// continues each prompt by 1 token minus the run that continues by 0 (loading, tokenizer, header);
// decode at batch B = (the run with 1 + N new tokens − the run with 1) / (B × N). llama.cpp's tools
// time their own phases (pp and tg) inside one process, transformers' peer times generate() calls.
import DistilFormats
import DistilKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: options

var slice = "/work/slice/4L", threads = 2, prefillPrompts = 40, promptTokens = 512, peerPrefillPrompts = 8
var prefillBatch = 8, decodePromptTokens = 32, newTokens = 8, batches = [1, 4, 8, 16, 40]
var python = ProcessInfo.processInfo.environment["DISTIL_PYTHON"] ?? "/work/venv-torch/bin/python"
var llamaBin = "/work/llama.cpp/build/bin", gguf: String?, work = "/tmp/bench-teacher", jsonOut: String?
var peers: Set<String> = ["engine", "llama", "bf16", "fp32", "writer"]
var args = CommandLine.arguments.dropFirst()
func usage() -> Never {
    FileHandle.standardError.write("""
    usage: bench-teacher [--slice DIR] [--threads N] [--peers engine,llama,bf16,fp32,writer] [--prefill-prompts N]
                         [--prompt-tokens N] [--peer-prefill-prompts N] [--prefill-batch N] [--decode-prompt-tokens N]
                         [--new-tokens N] [--batches 1,4,8,16,40] [--python PATH] [--llama-bin DIR] [--gguf FILE]
                         [--work DIR] [--json FILE]

    """.data(using: .utf8)!)
    exit(2)
}
func str(_ s: String?) -> String { guard let s else { usage() }; return s }
func int(_ s: String?) -> Int { guard let s, let v = Int(s), v >= 0 else { usage() }; return v }
while let a = args.popFirst() {
    switch a {
    case "--slice": slice = str(args.popFirst())
    case "--threads": threads = max(1, int(args.popFirst()))
    case "--peers": peers = Set((str(args.popFirst())).split(separator: ",").map(String.init))
    case "--prefill-prompts": prefillPrompts = int(args.popFirst())
    case "--prompt-tokens": promptTokens = max(1, int(args.popFirst()))
    case "--peer-prefill-prompts": peerPrefillPrompts = int(args.popFirst())
    case "--prefill-batch": prefillBatch = max(1, int(args.popFirst()))
    case "--decode-prompt-tokens": decodePromptTokens = max(1, int(args.popFirst()))
    case "--new-tokens": newTokens = max(1, int(args.popFirst()))
    case "--batches": batches = (str(args.popFirst())).split(separator: ",").map { int(String($0)) }.filter { $0 > 0 }
    case "--python": python = str(args.popFirst())
    case "--llama-bin": llamaBin = str(args.popFirst())
    case "--gguf": gguf = str(args.popFirst())
    case "--work": work = str(args.popFirst())
    case "--json": jsonOut = str(args.popFirst())
    default: usage()
    }
}
let gguFile = gguf ?? (slice.hasSuffix("/") ? String(slice.dropLast()) : slice) + ".bf16.gguf"
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let dlTeacher = bin + "/dl-teacher"
try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
func say(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }
func f(_ x: Double, _ d: Int = 2) -> String { x.isFinite ? String(format: "%.\(d)f", x) : "–" }
func gib(_ kib: Int) -> String { String(format: "%.2f GiB", Double(kib) / 1_048_576) }

// MARK: children, each with its own wall time and peak RSS

struct Child { var wall: Double; var maxRSSKiB: Int; var status: Int32; var out: String; var err: String }

/// Runs `exe argv` with stdout/stderr to files under `work`, and returns its wall time and its own
/// peak resident set (wait4's rusage is the child's alone, unlike RUSAGE_CHILDREN's running maximum).
func spawn(_ exe: String, _ argv: [String], env extra: [String: String] = [:], tag: String) -> Child {
    let outPath = "\(work)/\(tag).out", errPath = "\(work)/\(tag).err"
    var fa = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fa)
    defer { posix_spawn_file_actions_destroy(&fa) }
    posix_spawn_file_actions_addopen(&fa, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&fa, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in extra { env[k] = v }
    let cargs = ([exe] + argv).map { strdup($0) } + [nil]
    let cenv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
    var pid: pid_t = 0
    let t0 = now()
    guard posix_spawn(&pid, exe, &fa, nil, cargs, cenv) == 0 else {
        return Child(wall: 0, maxRSSKiB: 0, status: -1, out: "", err: "cannot start \(exe)")
    }
    var status: Int32 = 0
    var ru = rusage()
    while wait4(pid, &status, 0, &ru) < 0 && errno == EINTR {}
    let wall = now() - t0
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Child(wall: wall, maxRSSKiB: Int(ru.ru_maxrss), status: code,
                 out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                 err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

// MARK: the slice: what its weights weigh

struct SliceInfo {
    var layers = 0, vocab = 0, hidden = 0, experts = 0, topK = 0, attentionLayers = 0, deltaLayers = 0
    var textBytes = 0, otherBytes = 0, expertBytesPerLayer = 0, headBytes = 0, embedBytes = 0
    var kvHeads = 0, headDim = 0, valueHeads = 0, keyDim = 0, valueDim = 0, convChannels = 0, convKernel = 0
    var expertBytes: Int { experts == 0 ? 0 : expertBytesPerLayer / experts }
    /// Every text tensor except the routed experts and the embedding (which a step reads B rows of).
    var denseBytes: Int { textBytes - expertBytesPerLayer * layers - embedBytes }

    /// Decode state for `batch` sequences of `length` tokens as f32: K and V per attention layer and
    /// token, the DeltaNet state (value heads × key dim × value dim) and the conv window per sequence.
    func decodeState(batch: Int, length: Int) -> Int {
        let kv = attentionLayers * 2 * kvHeads * headDim * 4 * length
        let delta = deltaLayers * (valueHeads * keyDim * valueDim + convChannels * (convKernel - 1)) * 4
        return batch * (kv + delta)
    }
}

func readSlice(_ dir: String) throws -> SliceInfo {
    let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
    let t = (cfg["text_config"] as? [String: Any]) ?? cfg
    var s = SliceInfo()
    func i(_ k: String) -> Int { (t[k] as? NSNumber)?.intValue ?? 0 }
    s.layers = i("num_hidden_layers"); s.vocab = i("vocab_size"); s.hidden = i("hidden_size")
    s.experts = i("num_experts"); s.topK = i("num_experts_per_tok")
    s.kvHeads = i("num_key_value_heads"); s.headDim = i("head_dim")
    s.valueHeads = i("linear_num_value_heads"); s.keyDim = i("linear_key_head_dim"); s.valueDim = i("linear_value_head_dim")
    s.convKernel = i("linear_conv_kernel_dim")
    s.convChannels = 2 * i("linear_num_key_heads") * s.keyDim + s.valueHeads * s.valueDim
    let types = (t["layer_types"] as? [String]) ?? []
    s.attentionLayers = types.filter { $0 == "full_attention" }.count
    s.deltaLayers = types.filter { $0 == "linear_attention" }.count
    // Tensor sizes from the shards' safetensors headers (8-byte length, then JSON).
    let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))) as! [String: Any]
    let files = Set(((index["weight_map"] as? [String: String]) ?? [:]).values)
    for file in files.sorted() {
        let h = try FileHandle(forReadingFrom: URL(fileURLWithPath: dir + "/" + file))
        let n = h.readData(ofLength: 8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        guard n < 1 << 28 else { throw DistilError.input(file, "header of \(n) bytes") }
        let header = try JSONSerialization.jsonObject(with: h.readData(ofLength: Int(n))) as! [String: Any]
        try h.close()
        for (name, v) in header where name != "__metadata__" {
            guard let o = v as? [String: Any], let off = o["data_offsets"] as? [Int], off.count == 2 else { continue }
            let bytes = off[1] - off[0]
            if name.hasPrefix("mtp.") || name.hasPrefix("model.visual.") { s.otherBytes += bytes; continue }
            s.textBytes += bytes
            if name.contains(".mlp.experts.") { s.expertBytesPerLayer += bytes }
            if name == "lm_head.weight" { s.headBytes = bytes }
            if name.hasSuffix("embed_tokens.weight") { s.embedBytes = bytes }
        }
    }
    if s.layers > 0 { s.expertBytesPerLayer /= s.layers }
    return s
}

// MARK: prompts (token ids; the tokenizer is not what is measured)

func writePrompts(_ path: String, count: Int, tokens: Int, seed: String) throws {
    var rng = DistilRNG(domain: "bench-teacher", seed: seed)
    var text = ""
    for k in 0..<count {
        let ids = (0..<tokens).map { _ in rng.nextInt(below: 248_044) }
        text += "{\"id\":\"bench-\(String(format: "%02d", k))\",\"text\":\"\",\"tokens\":[\(ids.map(String.init).joined(separator: ","))]}\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

let info: SliceInfo
do { info = try readSlice(slice) } catch {
    say("bench-teacher: cannot read the slice \(slice): \(error) (make it: scripts/dev/make_teacher_slice.py \(slice))")
    exit(1)
}
let maxBatch = batches.max() ?? 1
let prefillFile = "\(work)/prefill.jsonl", decodeFile = "\(work)/decode.jsonl", peerPrefillFile = "\(work)/prefill-peer.jsonl"
try writePrompts(prefillFile, count: prefillPrompts, tokens: promptTokens, seed: "prefill")
try writePrompts(peerPrefillFile, count: min(peerPrefillPrompts, prefillPrompts), tokens: promptTokens, seed: "prefill")
try writePrompts(decodeFile, count: maxBatch, tokens: decodePromptTokens, seed: "decode")
var decodeFiles: [Int: String] = [:]
for b in batches {
    decodeFiles[b] = "\(work)/decode-\(b).jsonl"
    try writePrompts(decodeFiles[b]!, count: b, tokens: decodePromptTokens, seed: "decode")
}

let cpu = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(separator: "\n")
let model = cpu.first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
let avx512 = cpu.first { $0.hasPrefix("flags") }.map { $0.contains(" avx512f") } ?? false
let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
print("bench-teacher: slice \(slice): \(info.layers) layers (\(info.deltaLayers) DeltaNet, \(info.attentionLayers) attention), "
      + String(format: "text weights %.3f GB (experts %.3f GB/layer, LM head %.3f GB), vision + MTP %.3f GB not text",
               Double(info.textBytes) / 1e9, Double(info.expertBytesPerLayer) / 1e9, Double(info.headBytes) / 1e9, Double(info.otherBytes) / 1e9))
print("CPU: \(model) (\(avx512 ? "AVX-512" : "no AVX-512")), \(threads) thread(s); load average at start \(load)")
let peerISA = CPUFeatures.exportPeerEnvironment()
print("engine kernels: \(CPUFeatures.levelDescription); OpenBLAS core: \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "dl-teacher's choice (BLASCore)")"
      + (peerISA.isEmpty ? "" : "; peers held to it by \(peerISA.keys.sorted().map { "\($0)=\(peerISA[$0]!)" }.joined(separator: " ")) (llama.cpp: as built, no switch)"))
print("prefill: \(prefillPrompts) prompts of \(promptTokens) tokens (peers: \(min(peerPrefillPrompts, prefillPrompts))), --batch \(prefillBatch); "
      + "decode: prompts of \(decodePromptTokens) tokens, \(newTokens) timed new tokens at batch \(batches.map(String.init).joined(separator: ", "))")

// Per side: prefill tokens/s, decode seconds per token by batch, peak RSS (KiB), notes.
struct Side {
    var name: String
    var prefillTPS = Double.nan
    var decode: [Int: Double] = [:]          // seconds per generated token
    var peakKiB = 0
    var peakByBatch: [Int: Int] = [:]
    var distinct: [Int: Double] = [:]        // routed experts read per layer and step
    var note = ""
}
var sides: [Side] = []
var json: [String: Any] = ["slice": slice, "threads": threads, "cpu": model, "avx512": avx512, "isa": CPUFeatures.levelDescription, "load_start": load,
                           "text_bytes": info.textBytes, "prefill_prompts": prefillPrompts, "prompt_tokens": promptTokens,
                           "new_tokens": newTokens, "batches": batches]

// MARK: the engine: whole dl-teacher processes

func teacher(_ prompts: String, batch: Int, new: Int, tag: String) -> Child {
    // --weights-sha256: the run would otherwise hash every weight file first (an epoch does that once).
    let c = spawn(dlTeacher, ["run", "--model", slice, "--weights-sha256", "bench", "--threads", String(threads),
                              "--batch", String(batch), "--max-new-tokens", String(new), "-o", "\(work)/\(tag).dlt", prompts],
                  tag: tag)
    if c.status != 0 { say("bench-teacher: dl-teacher (\(tag)) exited \(c.status): \(c.err.split(separator: "\n").suffix(3).joined(separator: " | "))") }
    try? FileManager.default.removeItem(atPath: "\(work)/\(tag).dlt")
    return c
}

/// dl-teacher's own memory plan for a run (docs/FORMATS.md, "Memory plan"): weights, decode state, buffers.
func plan(_ prompts: String, batch: Int, new: Int) -> [String: Any]? {
    let c = spawn(dlTeacher, ["run", "--plan", "--model", slice, "--threads", String(threads), "--batch", String(batch),
                              "--max-new-tokens", String(new), prompts], tag: "engine-plan-b\(batch)")
    return (try? JSONSerialization.jsonObject(with: Data(c.out.utf8))) as? [String: Any]
}

var engineStepSeconds: [Int: Double] = [:]
if peers.contains("engine") {
    var e = Side(name: "distil engine (dl-teacher, bf16 mmap)")
    if !FileManager.default.isExecutableFile(atPath: dlTeacher) {
        e.note = "not run (no \(dlTeacher): swift build -c release --product dl-teacher)"
    } else {
        say("engine: warm-up (pages the weights in)")
        _ = teacher(decodeFiles[batches.min()!]!, batch: 1, new: 2, tag: "engine-warm")
        let base = teacher(decodeFiles[batches.min()!]!, batch: 1, new: 0, tag: "engine-base")
        say("engine: base \(f(base.wall)) s; prefill of \(prefillPrompts) x \(promptTokens)")
        let pre = prefillPrompts > 0 ? teacher(prefillFile, batch: prefillBatch, new: 1, tag: "engine-prefill") : base
        if pre.status == 0 && base.status == 0 && prefillPrompts > 0 {
            e.prefillTPS = Double(prefillPrompts * promptTokens) / (pre.wall - base.wall)
            json["engine_prefill"] = ["wall": pre.wall, "base": base.wall, "peak_kib": pre.maxRSSKiB]
        }
        e.peakKiB = max(base.maxRSSKiB, pre.maxRSSKiB)
        for b in batches {
            let one = teacher(decodeFiles[b]!, batch: b, new: 1, tag: "engine-b\(b)-1")
            let many = teacher(decodeFiles[b]!, batch: b, new: 1 + newTokens, tag: "engine-b\(b)-n")
            say("engine: batch \(b): \(f(one.wall)) s / \(f(many.wall)) s")
            guard one.status == 0, many.status == 0 else { continue }
            e.decode[b] = (many.wall - one.wall) / Double(b * newTokens)
            engineStepSeconds[b] = (many.wall - one.wall) / Double(newTokens)
            e.peakByBatch[b] = many.maxRSSKiB
            e.peakKiB = max(e.peakKiB, many.maxRSSKiB)
            json["engine_b\(b)"] = ["t1": one.wall, "tn": many.wall, "peak_kib": many.maxRSSKiB]
        }
    }
    sides.append(e)
}

// MARK: transformers

var routing: [Int: Double] = [:]
for (dtype, key) in [("float32", "fp32"), ("bfloat16", "bf16")] where peers.contains(key) {
    var p = Side(name: "transformers \(key) generate")
    guard FileManager.default.isExecutableFile(atPath: python) else {
        p.note = "not run (no \(python): python3 -m venv + pip install torch==2.15.0 transformers==5.23.0)"
        sides.append(p); continue
    }
    say("transformers \(key): loading and running (prefill \(min(peerPrefillPrompts, prefillPrompts)) x \(promptTokens), decode \(batches))")
    let c = spawn(python, [here + "/peer_transformers.py", slice, dtype, String(threads), String(newTokens),
                           batches.map(String.init).joined(separator: ",")],
                  env: ["BENCH_PREFILL": peerPrefillFile, "BENCH_DECODE": decodeFile, "BENCH_PREFILL_BATCH": String(prefillBatch)],
                  tag: "transformers-\(key)")
    guard c.status == 0, let line = c.out.split(separator: "\n").last,
          let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        let why = c.err.split(separator: "\n").filter { !$0.hasPrefix("[transformers]") && !$0.contains("Warning") }.suffix(2)
        p.note = "not run (exit \(c.status)\(why.isEmpty ? "" : ": " + why.joined(separator: " | ")))"
        sides.append(p); continue
    }
    json["transformers_\(key)"] = o
    if let s = o["prefill_s"] as? Double, let n = o["prefill_tokens"] as? Int { p.prefillTPS = Double(n) / s }
    for (b, v) in (o["decode"] as? [String: [String: Any]]) ?? [:] {
        guard let bi = Int(b), let spt = v["s_per_token"] as? Double else { continue }
        p.decode[bi] = spt
        if let d = v["distinct_experts"] as? Double { p.distinct[bi] = d; routing[bi] = routing[bi] ?? d }
    }
    p.peakKiB = (o["peak_rss_kib"] as? Int) ?? c.maxRSSKiB
    p.note = String(format: "load %.1f s, %@ prefill prompts", (o["load_s"] as? Double) ?? .nan, String(min(peerPrefillPrompts, prefillPrompts)))
    sides.append(p)
}

// MARK: llama.cpp

if peers.contains("llama") {
    var l = Side(name: "llama.cpp (bf16 GGUF)")
    let benchExe = llamaBin + "/llama-bench", batchedExe = llamaBin + "/llama-batched-bench"
    if !FileManager.default.fileExists(atPath: gguFile) {
        l.note = "not run (no GGUF at \(gguFile); see docs/PERFORMANCE.md for the conversion)"
    } else if !FileManager.default.isExecutableFile(atPath: benchExe) || !FileManager.default.isExecutableFile(atPath: batchedExe) {
        l.note = "not run (no llama-bench / llama-batched-bench in \(llamaBin))"
    } else {
        say("llama.cpp: llama-bench pp\(promptTokens) and tg\(newTokens)")
        let pp = spawn(benchExe, ["-m", gguFile, "-t", String(threads), "-p", String(promptTokens), "-n", "0", "-r", "1", "-o", "jsonl"], tag: "llama-pp")
        for line in pp.out.split(separator: "\n") {
            if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let ts = o["avg_ts"] as? Double { l.prefillTPS = ts }
        }
        l.peakKiB = pp.maxRSSKiB
        let ctx = maxBatch * (decodePromptTokens + 1 + newTokens) + 256
        say("llama.cpp: llama-batched-bench npp \(decodePromptTokens) ntg \(newTokens) npl \(batches)")
        let bb = spawn(batchedExe, ["-m", gguFile, "-t", String(threads), "-c", String(ctx), "-b", "2048", "-ub", "512",
                                    "-npp", String(decodePromptTokens), "-ntg", String(newTokens),
                                    "-npl", batches.map(String.init).joined(separator: ","), "--output-format", "jsonl"], tag: "llama-batched")
        for line in bb.out.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let npl = o["pl"] as? Int, let ttg = o["t_tg"] as? Double else { continue }
            l.decode[npl] = ttg / Double(npl * newTokens)
        }
        l.peakKiB = max(l.peakKiB, bb.maxRSSKiB)
        if pp.status != 0 || bb.status != 0 { l.note = "exit \(pp.status)/\(bb.status): see \(work)/llama-*.err" }
        json["llama"] = ["pp_out": pp.out, "batched_out": bb.out, "pp_peak_kib": pp.maxRSSKiB, "batched_peak_kib": bb.maxRSSKiB]
    }
    sides.append(l)
}

// MARK: the stream writer alone

var writerRowsPerSecond = Double.nan, writerEncodeRowsPerSecond = Double.nan
if peers.contains("writer") {
    let v = info.vocab, distinctRows = 64, prompts = 40, rowsPerPrompt = 16
    // Heavy-tailed normalised log-prob rows (a Gaussian bulk, a boosted tail, a confident top), 64 distinct.
    var rng = SplitMix64(seed: 17)
    func u() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    var rows = [[Float]]()
    for _ in 0..<distinctRows {
        var r = (0..<v).map { _ in Float(sqrt(-2 * log(max(1e-300, u()))) * cos(2 * .pi * u())) * 1.5 }
        for _ in 0..<200 { r[Int(u() * Double(v))] += 8 }
        r[Int(u() * Double(v))] += 16
        let m = r.max()!
        let lse = m + Float(log(r.reduce(0.0) { $0 + exp(Double($1 - m)) }))
        rows.append(r.map { $0 - lse })
    }
    let header = TeacherHeader(teacher: TeacherRef(repo: "bench", revision: nil, weightsSHA256: "bench", block: nil, blockHash: nil),
                               tokenizerSHA256: nil, generation: GenerationSettings(maxNewTokens: rowsPerPrompt, temperature: 0, topP: 1, seed: nil),
                               vocabSize: v, nPrompts: prompts)
    let encoded = rows.map { r in r.withUnsafeBufferPointer { TeacherStreamWriter.encodeRow($0.baseAddress!, vocab: v) } }
    func pass(encode: Bool) throws -> Double {
        let path = "\(work)/writer.dlt"
        let w = try TeacherStreamWriter(try FileWriter(path: path), header: header)
        let t0 = now()
        for p in 0..<prompts {
            try w.beginPrompt(TeacherPrompt(id: "w\(p)", promptTokens: [1], continuationTokens: Array(repeating: 1, count: rowsPerPrompt), finish: "length"))
            for k in 0..<rowsPerPrompt {
                let i = (p * rowsPerPrompt + k) % distinctRows
                if encode { try rows[i].withUnsafeBufferPointer { try w.writeRow($0.baseAddress!) } } else { try w.writeEncodedRow(encoded[i]) }
            }
        }
        try w.finish()
        let dt = now() - t0
        try? FileManager.default.removeItem(atPath: path)
        return Double(prompts * rowsPerPrompt) / dt
    }
    say("writer: \(prompts * rowsPerPrompt) synthetic rows of \(v), \(TeacherStream.compressionWorkers) zstd workers (as dl-teacher)")
    writerRowsPerSecond = try pass(encode: false)
    writerEncodeRowsPerSecond = try pass(encode: true)
    json["writer_rows_per_s"] = writerRowsPerSecond
    json["writer_encode_rows_per_s"] = writerEncodeRowsPerSecond
}

// MARK: the table

func tps(_ spt: Double?) -> String { spt.map { f(1 / $0, 1) } ?? "–" }
print("")
print("| | prefill tok/s | " + batches.map { "decode b\($0) tok/s" }.joined(separator: " | ") + " | peak RSS |")
print("|---|---|" + batches.map { _ in "---|" }.joined() + "---|")
for s in sides {
    if s.note.hasPrefix("not run") { print("| \(s.name) | \(s.note) |" + batches.map { _ in " |" }.joined() + " |"); continue }
    print("| \(s.name) | \(f(s.prefillTPS, 1)) | " + batches.map { tps(s.decode[$0]) }.joined(separator: " | ") + " | \(s.peakKiB > 0 ? gib(s.peakKiB) : "–") |"
          + (s.note.isEmpty ? "" : " \(s.note)"))
}

// Weight bytes read per decode step: every dense text tensor and the LM head once, B embedding rows,
// and per layer the distinct routed experts the step selects (transformers' routing hook on the same
// weights and prompts when that peer ran; else the expectation under uniform routing).
print("")
print("Weight bytes read per decode step (dense + LM head + distinct experts x \(f(Double(info.expertBytes) / 1e6)) MB per layer):")
var bytesPerStep: [Int: Double] = [:]
for b in batches {
    let uniform = Double(info.experts) * (1 - pow(1 - Double(info.topK) / Double(info.experts), Double(b)))
    let d = routing[b] ?? uniform
    let bytes = Double(info.denseBytes) + Double(b * info.hidden * 2) + d * Double(info.expertBytes * info.layers)
    bytesPerStep[b] = bytes
    let gbs = engineStepSeconds[b].map { f(bytes / $0 / 1e9) } ?? "–"
    print("  batch \(b): \(f(d, 1)) experts/layer (\(routing[b] != nil ? "measured routing" : "uniform expectation")), "
          + "\(f(bytes / 1e9, 3)) GB per step; engine step \(engineStepSeconds[b].map { f($0, 3) } ?? "–") s = \(gbs) GB/s")
}
json["bytes_per_step"] = bytesPerStep.map { ["batch": $0.key, "bytes": $0.value] }

// MARK: goals (issue 17)

print("")
print("Goals (issue 17), ratios from this run:")
func goal(_ what: String, _ value: Double, _ op: String, _ bound: Double) {
    guard value.isFinite else { print("  \(what): not measured"); return }
    let met = op == "<=" ? value <= bound : value >= bound
    print("  \(what): \(f(value, 3)) (goal \(op) \(bound)) \(met ? "MET" : "NOT MET")")
}
let engine = sides.first { $0.name.hasPrefix("distil") }
let llama = sides.first { $0.name.hasPrefix("llama") }
let fp32 = sides.first { $0.name.contains("fp32") }
if let e = engine {
    if let b1 = e.decode[1], let b40 = e.decode[maxBatch] {
        goal("decode time per token at batch \(maxBatch) / batch 1", b40 / b1, "<=", 0.25)
    }
    if let l = llama, let eb = e.decode[1], let lb = l.decode[1] { goal("batch-1 decode tok/s / llama.cpp's", lb / eb, ">=", 1.0) }
    if let l = llama { goal("prefill tok/s / llama.cpp's", e.prefillTPS / l.prefillTPS, ">=", 1.0) }
    if let t = fp32 { goal("prefill tok/s / transformers fp32's", e.prefillTPS / t.prefillTPS, ">=", 2.0) }
    // Weights + decode state: from dl-teacher's own plan for the same run when it has one, else this
    // bench's count (text tensors as stored; f32 KV, DeltaNet state and conv window per sequence).
    func need(_ prompts: String, batch: Int, new: Int, length: Int) -> (Int, String) {
        if let p = plan(prompts, batch: batch, new: new), let w = p["weights_bytes"] as? Int, let st = p["state_bytes"] as? Int {
            json["plan_b\(batch)"] = p
            return (w + st, "dl-teacher plan: weights \(f(Double(w) / 1e9, 3)) + state \(f(Double(st) / 1e9, 3)) GB; its need_bytes \(f(Double((p["need_bytes"] as? Int) ?? 0) / 1e9, 3)) GB")
        }
        let b = info.textBytes + info.decodeState(batch: batch, length: length)
        return (b, "this bench's count \(f(Double(b) / 1e9, 3)) GB")
    }
    if let peak = e.peakByBatch[maxBatch] {
        let (n, how) = need(decodeFiles[maxBatch]!, batch: maxBatch, new: 1 + newTokens, length: decodePromptTokens + 1 + newTokens)
        goal("peak RSS at batch \(maxBatch) \(gib(peak)) / (weights + decode state; \(how))", Double(peak) * 1024 / Double(n), "<=", 1.1)
    }
    if let prePeak = (json["engine_prefill"] as? [String: Any])?["peak_kib"] as? Int {
        let (n, how) = need(prefillFile, batch: prefillBatch, new: 1, length: promptTokens + 1)
        goal("peak RSS of the prefill run \(gib(prePeak)) / (weights + decode state; \(how))", Double(prePeak) * 1024 / Double(n), "<=", 1.1)
    }
    if let step = engineStepSeconds[maxBatch], writerRowsPerSecond.isFinite {
        let engineRows = Double(maxBatch) / step
        print("  engine rows/s at batch \(maxBatch): \(f(engineRows, 1)); writer alone: \(f(writerRowsPerSecond, 1)) rows/s (encoded rows), \(f(writerEncodeRowsPerSecond, 1)) rows/s (encode + write)")
        goal("stream writer rows/s / engine rows/s at batch \(maxBatch)", writerRowsPerSecond / engineRows, ">=", 3.0)
    }
}
if writerRowsPerSecond.isFinite && engineStepSeconds.isEmpty {
    print("  writer alone: \(f(writerRowsPerSecond, 1)) rows/s (encoded rows), \(f(writerEncodeRowsPerSecond, 1)) rows/s (encode + write)")
}
let loadEnd = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
print("load average at end \(loadEnd)")
if let jsonOut {
    json["load_end"] = loadEnd
    json["sides"] = sides.map { s in ["name": s.name, "prefill_tps": s.prefillTPS.isFinite ? s.prefillTPS : -1, "peak_kib": s.peakKiB, "note": s.note,
                                      "decode_s_per_token": Dictionary(uniqueKeysWithValues: s.decode.map { (String($0.key), $0.value) })] as [String: Any] }
    if let d = try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]) { try? d.write(to: URL(fileURLWithPath: jsonOut)) }
}

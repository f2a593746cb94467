// bench-parquet: reads the whole `text` column of a large FineWeb-shaped shard with this
// reader and with pyarrow in the same run, and counts the bytes read to sample 40 prompts
// from a 2 GB-shaped shard.
//
//   swift build -c release --product bench-parquet
//   .build/release/bench-parquet [--shard PATH] [--mb 300] [--sample-shard PATH] [--python PATH] [--runs 2] [--threads N]
//
// Shards missing under /tmp/distil-bench are generated first with
// scripts/dev/make_parquet_fixtures.py (pyarrow in /opt/distil-venv). Figures go to
// docs/parts/parquet-performance.md.
import DistilCorpus
import DistilFormats
import HubTestServer
import Foundation

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func fail(_ s: String) -> Never {
    FileHandle.standardError.write(("bench-parquet: " + s + "\n").data(using: .utf8)!)
    exit(1)
}

// MARK: arguments

var shardPath: String?
var samplePath: String?
var mb = 300
var python = "/opt/distil-venv/bin/python"
var runs = 2
var limits = ParquetLimits()
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--shard": shardPath = args.popFirst()
    case "--sample-shard": samplePath = args.popFirst()
    case "--mb": mb = Int(args.popFirst() ?? "") ?? mb
    case "--python": python = args.popFirst() ?? python
    case "--runs": runs = max(1, Int(args.popFirst() ?? "") ?? runs)
    case "--threads": limits.threads = max(1, Int(args.popFirst() ?? "") ?? limits.threads)
    case "-h", "--help":
        print("usage: bench-parquet [--shard PATH] [--mb N] [--sample-shard PATH] [--python PATH] [--runs N] [--threads N]")
        exit(0)
    default: fail("unknown argument \(a)")
    }
}

let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let script = "\(repo)/scripts/dev/make_parquet_fixtures.py"

func run(_ argv: [String]) -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { fail("cannot run \(argv[0]): \(error)") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func ensureShard(_ path: String, mb: Int, cycle: Int) {
    if FileManager.default.fileExists(atPath: path) { return }
    print("generating \(path) (\(mb) MB) with pyarrow...")
    let (rc, out) = run([python, script, "--bench-shard", path, "--mb", "\(mb)", "--cycle", "\(cycle)"])
    print(out, terminator: "")
    if rc != 0 { fail("shard generation failed") }
}

let shard = shardPath ?? "/tmp/distil-bench/fineweb-like-\(mb)mb.parquet"
if shardPath == nil { ensureShard(shard, mb: mb, cycle: 0) }

// MARK: the text column with this reader

/// Warms the page cache so both readers see the same (cached) file.
func warm(_ path: String) throws {
    let src = try LocalFileSource(path: path)
    var off: Int64 = 0
    while off < src.size {
        let n = Int(min(Int64(8 << 20), src.size - off))
        _ = try src.read(offset: off, count: n)
        off += Int64(n)
    }
}

struct Pass { var seconds: Double; var values: Int; var textBytes: Int; var nulls: Int }

/// Reads every row group's text column; `strings` also makes a Swift String of every value
/// (UTF-8 validation and a copy, as `forEachText` hands them out).
func readText(_ path: String, strings: Bool) throws -> Pass {
    let t0 = now()
    let file = try ParquetFile(path: path, limits: limits)
    let info = try file.column(named: "text")
    var p = Pass(seconds: 0, values: 0, textBytes: 0, nulls: 0)
    for g in 0..<file.rowGroupCount {
        let d = try file.read(column: info, rowGroup: g)
        for i in 0..<d.count {
            if strings {
                if let s = d.string(i) { p.textBytes += s.utf8.count } else { p.nulls += 1 }
            } else {
                d.withBytes(i) { b in if let b { p.textBytes += b.count } else { p.nulls += 1 } }
            }
        }
        p.values += d.count
    }
    p.seconds = now() - t0
    return p
}

let fileSize = (try? LocalFileSource(path: shard).size) ?? 0
do { try warm(shard) } catch { fail("\(error)") }
let meta = try ParquetFile(path: shard)
print("shard: \(shard)")
print(String(format: "  %.1f MB, %d rows, %d row groups, writer: %@", Double(fileSize) / 1e6, meta.rowCount, meta.rowGroupCount, meta.createdBy ?? "?"))

var bestDecode = Pass(seconds: .infinity, values: 0, textBytes: 0, nulls: 0)
var bestStrings = bestDecode
for _ in 0..<runs {
    do {
        let a = try readText(shard, strings: false)
        if a.seconds < bestDecode.seconds { bestDecode = a }
        let b = try readText(shard, strings: true)
        if b.seconds < bestStrings.seconds { bestStrings = b }
    } catch { fail("\(error)") }
}
let textMB = Double(bestStrings.textBytes) / 1e6

// MARK: pyarrow on the same file

let pyScript = """
import json, sys, time
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
path, runs = sys.argv[1], int(sys.argv[2])
out = {}
for name, threads in (("single", False), ("default", True)):
    best_read = best_all = 1e9
    for _ in range(runs):
        t0 = time.perf_counter()
        t = pq.read_table(path, columns=["text"], use_threads=threads)
        t1 = time.perf_counter()
        # Touch every value: the UTF-8 length of each reads all of its bytes.
        n = pc.sum(pc.utf8_length(t["text"])).as_py()
        t2 = time.perf_counter()
        best_read = min(best_read, t1 - t0)
        best_all = min(best_all, t2 - t0)
    out[name] = {"read": best_read, "read_touch": best_all, "rows": t.num_rows}
out["version"] = pa.__version__
out["threads"] = pa.cpu_count()
print(json.dumps(out))
"""
struct PyResult: Decodable {
    struct R: Decodable { var read: Double; var read_touch: Double; var rows: Int }
    var single: R
    var `default`: R
    var version: String
    var threads: Int
}
let (rc, pyOut) = run([python, "-c", pyScript, shard, "\(runs)"])
guard rc == 0, let py = try? JSONDecoder().decode(PyResult.self, from: Data(pyOut.utf8)) else { fail("pyarrow run failed: \(pyOut)") }
if py.single.rows != bestStrings.values { fail("pyarrow read \(py.single.rows) rows, this reader \(bestStrings.values)") }

func rate(_ s: Double) -> Double { textMB / s }
print(String(format: "text column: %d values, %.1f MB of text (%d nulls); best of %d runs, page cache warm; distil page threads: %d",
             bestStrings.values, textMB, bestStrings.nulls, runs, limits.threads))
print("                                           seconds   text MB/s   vs pyarrow 1 thread   vs pyarrow default (\(py.threads) threads)")
func row(_ label: String, _ s: Double, _ pySingle: Double, _ pyDefault: Double) {
    let padded = label.count >= 40 ? label : label + String(repeating: " ", count: 40 - label.count)
    print("  " + padded + String(format: " %7.3f   %9.1f   %9.2fx            %9.2fx", s, rate(s), pySingle / s, pyDefault / s))
}
row("distil: decode (values in pages)", bestDecode.seconds, py.single.read, py.default.read)
row("distil: decode + String per value", bestStrings.seconds, py.single.read_touch, py.default.read_touch)
row("pyarrow \(py.version) read_table, 1 thread", py.single.read, py.single.read, py.default.read)
row("pyarrow read_table + utf8_length, 1 thr", py.single.read_touch, py.single.read_touch, py.default.read_touch)
row("pyarrow read_table, default threads", py.default.read, py.single.read, py.default.read)
row("pyarrow read_table + utf8_length, dflt", py.default.read_touch, py.single.read_touch, py.default.read_touch)
print("  (ratios: the pyarrow time over ours; decode is compared with read_table, String with read_table + utf8_length)")

// MARK: bytes read to sample 40 prompts from a 2 GB-shaped shard

final class CountingSource: RandomAccessSource {
    let inner: RandomAccessSource
    var reads = 0
    var bytes = 0
    var name: String { inner.name }
    var size: Int64 { inner.size }
    init(_ inner: RandomAccessSource) { self.inner = inner }
    func read(offset: Int64, count: Int) throws -> [UInt8] {
        reads += 1
        bytes += count
        return try inner.read(offset: offset, count: count)
    }
}

let big = samplePath ?? "/tmp/distil-bench/fineweb-like-2000mb.parquet"
if samplePath == nil { ensureShard(big, mb: 2000, cycle: 20) }
do {
    let counting = CountingSource(try LocalFileSource(path: big))
    let s = ParquetShard(source: counting, name: (big as NSString).lastPathComponent)
    let t0 = now()
    let opts = SamplingOptions()   // 40 prompts, 200...2000 characters
    let prompts = try PromptSampler(shards: [s], options: opts)
        .sample(block: 4_200_000, seed: DistilRNG.seed(blockHash: "0x9f3c", block: 4_200_000), blockHash: "0x9f3c")
    let dt = now() - t0
    let file = try s.file()
    let groups = Set(prompts.compactMap { $0.source?.row_group })
    print("sampling \(prompts.count) prompts from \(big):")
    print(String(format: "  file %.1f MB, %d rows in %d row groups; %d reads, %.1f MB read = %.2f%% of the file (%.2fs, local)",
                 Double(counting.size) / 1e6, file.rowCount, file.rowGroupCount, counting.reads, Double(counting.bytes) / 1e6,
                 100 * Double(counting.bytes) / Double(counting.size), dt))
    print("  \(groups.count) distinct row groups hold the prompts; each costs one read of its text column chunk")
} catch { fail("\(error)") }

// The same draw from the same shard served by a loopback Hub and read by URL (RemoteFile: HTTP
// Range through the resolve endpoint): what a validator sampling from FineWeb on the Hub fetches.
do {
    let data = try readFile(big, limit: 4 << 30)
    let name = (big as NSString).lastPathComponent
    let server = LoopbackHub(repos: [.init(id: "datasets/bench/fineweb", commit: String(repeating: "b", count: 40),
                                           files: [.init("data/\(name)", data, lfs: true)])])
    try server.start()
    defer { server.stop() }
    let url = "\(server.endpoint)/datasets/bench/fineweb/resolve/main/data/\(name)"
    let t0 = now()
    let prompts = try PromptSampler(shards: try Corpus.shards([url]), options: SamplingOptions())
        .sample(block: 4_200_000, seed: DistilRNG.seed(blockHash: "0x9f3c", block: 4_200_000), blockHash: "0x9f3c")
    let dt = now() - t0
    let ranged = server.requests.filter { $0.target.hasPrefix("/cdn/") }
    print(String(format: "  remote (loopback Hub, by URL): %d prompts, %d requests (%d ranged GETs), %.1f MB of bodies sent = %.2f%% of the file (%.2fs)",
                 prompts.count, server.requests.count, ranged.count, Double(server.bodyBytesSent) / 1e6,
                 100 * Double(server.bodyBytesSent) / Double(data.count), dt))
} catch { fail("\(error)") }

// bench-kl: throughput of the full-vocabulary KL kernel (KLKernel.klFromLogits) against PyTorch's
// log_softmax + kl_div on the same row shape, measured in the same run.
//
//   swift run -c release bench-kl [--rows 64] [--vocab 248320] [--seconds 3]
//
// Figures are G elements/s (one element = one vocabulary entry of one position). The Swift kernel is
// timed on 1 thread and on all cores (positions split across threads, as dl-kl does); torch uses its
// default intra-op thread pool. The peer is skipped with a message when /opt/distil-venv is missing.
import DistilFormats
import DistilScore
import Dispatch
import Foundation

var rows = 64, vocab = 248_320, seconds = 3.0
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--rows": rows = Int(args.popFirst() ?? "") ?? rows
    case "--vocab": vocab = Int(args.popFirst() ?? "") ?? vocab
    case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
    default:
        FileHandle.standardError.write("usage: bench-kl [--rows N] [--vocab V] [--seconds S]\n".data(using: .utf8)!)
        exit(2)
    }
}

// Heavy-tailed rows: Gaussian bulk, a tail of boosted tokens, one confident top; the student is the
// teacher plus noise and an offset (raw logits).
// SplitMix64 (fast; the bench needs 30M draws, not the pipeline's documented generator).
var rng = SplitMix64(seed: 0x5EED)
func next() -> UInt64 { rng.next() }
func uniform() -> Double { rng.uniform() }
func gaussian() -> Double { rng.gaussian() }
var teacher = [Float](repeating: 0, count: rows * vocab)
var student = [Float](repeating: 0, count: rows * vocab)
var logits = [Double](repeating: 0, count: vocab)
for r in 0..<rows {
    for i in 0..<vocab { logits[i] = gaussian() * 2 }
    for _ in 0..<(vocab / 200) { logits[Int(next() % UInt64(vocab))] += 6 + uniform() * 8 }
    logits[Int(next() % UInt64(vocab))] += 18
    let m = logits.max()!
    var s = 0.0
    for x in logits { s += exp(x - m) }
    let lse = m + log(s)
    for i in 0..<vocab {
        teacher[r * vocab + i] = Float(logits[i] - lse)
        student[r * vocab + i] = Float(logits[i] + gaussian() * 0.5 + 3)
    }
}

func measure(threads: Int) -> (rate: Double, checksum: Double) {
    var checksum = 0.0
    var done = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed = 0.0
    let lock = NSLock()
    teacher.withUnsafeBufferPointer { tp in
        student.withUnsafeBufferPointer { sp in
            repeat {
                var partial = [Double](repeating: 0, count: threads)
                partial.withUnsafeMutableBufferPointer { pp in
                    let out = pp.baseAddress!
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        var acc = 0.0
                        var r = t
                        while r < rows {
                            acc += KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress! + r * vocab,
                                                         studentLogits: sp.baseAddress! + r * vocab, count: vocab).kl
                            r += threads
                        }
                        lock.lock(); out[t] = acc; lock.unlock()
                    }
                }
                checksum = partial.reduce(0, +)
                done += rows
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            } while elapsed < seconds
        }
    }
    return (Double(done) * Double(vocab) / elapsed / 1e9, checksum / Double(rows))
}

let cores = ProcessInfo.processInfo.activeProcessorCount
print("bench-kl: \(rows) rows x \(vocab) vocabulary, ~\(seconds) s per measurement, \(cores) cores")
_ = measure(threads: 1)   // warm up
let one = measure(threads: 1)
print(String(format: "swift KLKernel.klFromLogits, 1 thread:   %6.3f G elements/s  (%.1f us/row, mean KL %.6f)",
             one.rate, Double(vocab) / one.rate / 1e3, one.checksum))
var best = one.rate
if cores > 1 {
    let all = measure(threads: cores)
    best = all.rate
    print(String(format: "swift KLKernel.klFromLogits, %d threads:  %6.3f G elements/s", cores, all.rate))
}

// The peer: torch log_softmax + kl_div(log_target=True) on the same shape, in the same run.
let python = "/opt/distil-venv/bin/python"
let script = """
import time, torch, torch.nn.functional as F
rows, vocab, seconds = \(rows), \(vocab), \(seconds)
g = torch.Generator().manual_seed(0)
logits = torch.randn(rows, vocab, generator=g) * 2
idx = torch.randint(0, vocab, (rows, vocab // 200), generator=g)
logits.scatter_add_(1, idx, 6 + torch.rand(rows, vocab // 200, generator=g) * 8)
logits[:, 0] += 18
teacher = torch.log_softmax(logits, dim=-1)
student = logits + torch.randn(rows, vocab, generator=g) * 0.5 + 3
def step():
    ls = torch.log_softmax(student, dim=-1)
    return F.kl_div(ls, teacher, log_target=True, reduction='none').sum(-1, dtype=torch.float64)
for _ in range(2): step()
n = 0; t0 = time.perf_counter()
while True:
    kl = step(); n += rows
    el = time.perf_counter() - t0
    if el >= seconds: break
print(f"{n * vocab / el / 1e9:.6f} {torch.get_num_threads()} {kl.mean().item():.6f}")
"""
if FileManager.default.isExecutableFile(atPath: python) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script]
    let out = Pipe()
    p.standardOutput = out
    do {
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let fields = String(decoding: data, as: UTF8.self).split(separator: " ")
        if p.terminationStatus == 0, fields.count == 3, let rate = Double(fields[0]) {
            print(String(format: "torch log_softmax + kl_div, %@ threads:  %6.3f G elements/s  (mean KL %@)",
                         String(fields[1]), rate, String(fields[2]).trimmingCharacters(in: .whitespacesAndNewlines)))
            print(String(format: "speed-up: %.1fx on 1 thread, %.1fx on all cores (torch on its default threads)",
                         one.rate / rate, best / rate))
        } else {
            print("torch peer failed (exit \(p.terminationStatus)); skipped")
        }
    } catch {
        print("torch peer could not start (\(error)); skipped")
    }
} else {
    print("torch peer skipped: \(python) not found (create the venv of scripts/dev to compare)")
}

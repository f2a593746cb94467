// bench-kl: throughput of the full-vocabulary KL kernel (KLKernel) against PyTorch's log_softmax +
// kl_div on the same rows, measured in the same run.
//
//   swift run -c release bench-kl [--rows 128] [--vocab 248320] [--seconds 3] [--rounds 3]
//
// Figures are G elements/s (one element = one vocabulary entry of one position). The Swift kernel is
// timed on 1 thread and on all cores (positions split across threads, as dl-kl does), for every
// instruction-set build this CPU runs (baseline x86-64, x86-64-v3, x86-64-v4; dl-kl uses the widest),
// on two forms of the same teacher rows: f32 log-probs, and the teacher stream's own form (binary16
// log-probs plus exact f32 values above -12, which dl-kl's kernel reads as stored). Then `--rounds`
// rounds alternate the widest build (all cores, both forms) with torch, which reads the very rows (as
// f32 log-probs, its best case) from files and uses its default intra-op thread pool; the ratio is the
// median over rounds. A float64 reference is computed from the same rows once. The peer is skipped with a message when
// /opt/distil-venv is missing.
import BenchSupport
import DistilFormats
import DistilKernels
import DistilScore
import Dispatch
import Foundation

// 128 rows: dl-kl's LM-head chunk (`--chunk`), the rows whose KL it computes at a time.
var rows = 128, vocab = 248_320, seconds = 3.0, rounds = 3
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--rows": rows = Int(args.popFirst() ?? "") ?? rows
    case "--vocab": vocab = Int(args.popFirst() ?? "") ?? vocab
    case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
    case "--rounds": rounds = max(1, Int(args.popFirst() ?? "") ?? rounds)
    default:
        FileHandle.standardError.write("usage: bench-kl [--rows N] [--vocab V] [--seconds S] [--rounds R]\n".data(using: .utf8)!)
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
// The stream's form of the teacher rows: binary16 bits, and (id, f32) pairs for log-probs above -12.
var teacherHalf = [UInt16](repeating: 0, count: rows * vocab)
var exact = [[UInt8]](repeating: [], count: rows)
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
        let lt = Float(logits[i] - lse)
        teacherHalf[r * vocab + i] = Binary16.bits(lt)
        if lt > -12 {
            withUnsafeBytes(of: UInt32(i).littleEndian) { exact[r] += $0 }
            withUnsafeBytes(of: lt.bitPattern.littleEndian) { exact[r] += $0 }
            teacher[r * vocab + i] = lt
        } else {
            teacher[r * vocab + i] = Float(Float16(lt))   // as the teacher stream holds it
        }
        student[r * vocab + i] = Float(logits[i] + gaussian() * 0.5 + 3)
    }
}

/// Rows per second over all rows, repeated for `seconds`; `fromHalf`: the teacher rows in the
/// stream's form.
func measure(threads: Int, fromHalf: Bool, isa: KLKernel.ISA) -> (rate: Double, checksum: Double) {
    var checksum = 0.0
    var done = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed = 0.0
    let lock = NSLock()
    teacher.withUnsafeBufferPointer { tp in teacherHalf.withUnsafeBufferPointer { hp in
        student.withUnsafeBufferPointer { sp in
            repeat {
                var partial = [Double](repeating: 0, count: threads)
                partial.withUnsafeMutableBufferPointer { pp in
                    let out = pp.baseAddress!
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        var acc = 0.0
                        var r = t
                        while r < rows {
                            if fromHalf {
                                acc += exact[r].withUnsafeBytes { e in
                                    KLKernel.kl(KLTeacherRow(binary16: UnsafeRawPointer(hp.baseAddress! + r * vocab), exact: e.baseAddress,
                                                             exactCount: e.count / 8),
                                                studentLogits: sp.baseAddress! + r * vocab, count: vocab, isa: isa).kl
                                }
                            } else {
                                acc += KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress! + r * vocab,
                                                             studentLogits: sp.baseAddress! + r * vocab, count: vocab, isa: isa).kl
                            }
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
    } }
    return (Double(done) * Double(vocab) / elapsed / 1e9, checksum / Double(rows))
}

let cores = ProcessInfo.processInfo.activeProcessorCount
print("bench-kl: \(rows) rows x \(vocab) vocabulary, ~\(seconds) s per measurement, \(cores) cores")
print("the kernels run by dl-kl on this CPU: \(KLKernel.supported)")
for isa in KLKernel.ISA.allCases where isa <= KLKernel.supported {
    for (form, fromHalf) in [("f32 rows", false), ("binary16 rows (dl-kl)", true)] {
        let name = "\(isa), \(form)"
        _ = measure(threads: 1, fromHalf: fromHalf, isa: isa)   // warm up
        let one = measure(threads: 1, fromHalf: fromHalf, isa: isa)
        var all = one
        if cores > 1 { all = measure(threads: cores, fromHalf: fromHalf, isa: isa) }
        print(String(format: "swift %@: %6.3f G elements/s on 1 thread, %6.3f on %d  (mean KL %.12f)",
                     name.padding(toLength: 36, withPad: " ", startingAt: 0), one.rate, all.rate, cores, one.checksum))
    }
}

// The peer: torch log_softmax + kl_div(log_target=True) on the same rows, in the same run: `rounds`
// rounds alternating the widest Swift build (both row forms, all cores) with torch, then medians.
let python = "/opt/distil-venv/bin/python"
let rowFiles = ["/dev/shm", NSTemporaryDirectory()].first { FileManager.default.isWritableFile(atPath: $0) }! + "/bench-kl-\(getpid())"
func writeRows(_ a: [Float], _ path: String) {
    _ = a.withUnsafeBytes { FileManager.default.createFile(atPath: path, contents: Data($0)) }
}
let script = """
import sys, time, numpy as np, torch, torch.nn.functional as F
rows, vocab, seconds = \(rows), \(vocab), \(seconds)
teacher = torch.from_numpy(np.fromfile("\(rowFiles).teacher.f32", dtype=np.float32).reshape(rows, vocab))
student = torch.from_numpy(np.fromfile("\(rowFiles).student.f32", dtype=np.float32).reshape(rows, vocab))
def step():
    ls = torch.log_softmax(student, dim=-1)
    return F.kl_div(ls, teacher, log_target=True, reduction='none').sum(-1, dtype=torch.float64)
for _ in range(2): step()
n = 0; t0 = time.perf_counter()
while True:
    kl = step(); n += rows
    el = time.perf_counter() - t0
    if el >= seconds: break
ref = float("nan")
if sys.argv[1] == "ref":
    ref = F.kl_div(torch.log_softmax(student.double(), dim=-1), teacher.double(), log_target=True, reduction='none').sum(-1).mean().item()
print(f"{n * vocab / el / 1e9:.6f} {torch.get_num_threads()} {kl.mean().item():.12f} {ref:.12f}")
"""

/// One torch measurement: G elements/s, its thread count, its mean KL, and (with `reference`) the
/// float64 mean KL; nil with a message when it cannot run.
func torchRun(reference: Bool) -> (rate: Double, threads: String, kl: Double, exact: Double)? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script, reference ? "ref" : "noref"]
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { print("torch peer could not start (\(error)); skipped"); return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let f = String(decoding: data, as: UTF8.self).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    guard p.terminationStatus == 0, f.count == 4, let rate = Double(f[0]) else {
        print("torch peer failed (exit \(p.terminationStatus)); skipped")
        return nil
    }
    return (rate, f[1], Double(f[2]) ?? .nan, Double(f[3]) ?? .nan)
}


if FileManager.default.isExecutableFile(atPath: python) {
    writeRows(teacher, rowFiles + ".teacher.f32")
    writeRows(student, rowFiles + ".student.f32")
    defer { for f in [".teacher.f32", ".student.f32"] { try? FileManager.default.removeItem(atPath: rowFiles + f) } }
    let isa = KLKernel.supported
    var ratios: [[Double]] = [[], []]   // f32 rows, binary16 rows
    var exact = Double.nan
    for round in 1...rounds {
        let f32 = measure(threads: cores, fromHalf: false, isa: isa)
        let half = measure(threads: cores, fromHalf: true, isa: isa)
        guard let t = torchRun(reference: round == 1) else { break }
        if round == 1 {
            exact = t.exact
            print(String(format: "float64 reference (torch, same rows): mean KL %.12f; torch fp32 is off by %.1e relative, swift %.1e (f32 rows) and %.1e (binary16 rows)",
                         exact, abs(t.kl - exact) / exact, abs(f32.checksum - exact) / exact, abs(half.checksum - exact) / exact))
        }
        ratios[0].append(f32.rate / t.rate); ratios[1].append(half.rate / t.rate)
        print(String(format: "round %d: swift %@ %.3f (f32 rows) and %.3f (binary16 rows, dl-kl) G elements/s on %d threads; torch %.3f on %@: %.1fx and %.1fx",
                     round, "\(isa)", f32.rate, half.rate, cores, t.rate, t.threads, f32.rate / t.rate, half.rate / t.rate))
    }
    if ratios[1].count == rounds {
        print(String(format: "median of %d alternating rounds: %.1fx torch on f32 rows, %.1fx on binary16 rows (dl-kl)",
                     rounds, median(ratios[0]), median(ratios[1])))
    }
} else {
    print("torch peer skipped: \(python) not found (create the venv of scripts/dev to compare)")
}

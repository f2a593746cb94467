// bench-hub: download throughput of dl-fetch's Hub client against the curl command line, on the
// same files from the same loopback server, in one run (issue 5).
//
//     swift build -c release --product bench-hub
//     .build/release/bench-hub [--mb 1024] [--rounds 3] [--dir /dev/shm/bench-hub] [--rate-mbps N]
//                              [--connections N] [--only distil|curl]
//
// Each round downloads one LFS file of --mb MiB through the Hub endpoints (listing, resolve →
// 302 → /cdn/) with HubClient (SHA-256 verified, fsync'd, placed in the cache; --connections per
// file, default FetchOptions') and with `curl -sSfL -o FILE URL` on the resolve URL; the order
// alternates between rounds. Both write to --dir (tmpfs by default, so the disk does not dominate
// either side). Per round: MB/s of each, their ratio, the CPU seconds per GB of each client and of
// the server during its transfer, and how many cores other processes kept busy meanwhile.
// --only runs one side (for profiling; its ratio column is meaningless).
import BenchSupport
import DistilFormats
import DistilHub
import Foundation
import HubTestServer

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

var mb = 1024, rounds = 3, dir = "/dev/shm/bench-hub", rate: Int? = nil, only: String? = nil, connections = FetchOptions().connectionsPerFile
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--mb": mb = Int(args.next() ?? "") ?? mb
    case "--rounds": rounds = Int(args.next() ?? "") ?? rounds
    case "--dir": dir = args.next() ?? dir
    case "--rate-mbps": rate = Int(args.next() ?? "").map { $0 * 1_000_000 }
    case "--only": only = args.next()   // profiling aid: "distil" or "curl" alone
    case "--connections": connections = Int(args.next() ?? "") ?? connections
    default:
        FileHandle.standardError.write("usage: bench-hub [--mb N] [--rounds N] [--dir PATH] [--rate-mbps N] [--connections N] [--only distil|curl]\n".data(using: .utf8)!)
        exit(2)
    }
}

var data = [UInt8](repeating: 0, count: mb << 20)
var x: UInt64 = 0x9E3779B97F4A7C15
data.withUnsafeMutableBytes { raw in
    let words = raw.bindMemory(to: UInt64.self)
    for i in 0..<words.count { x ^= x << 13; x ^= x >> 7; x ^= x << 17; words[i] = x }
}
let commit = String(repeating: "ab", count: 20)
let server = LoopbackHub(repos: [.init(id: "bench/model", commit: commit,
                                       files: [.init("model.safetensors", data, lfs: true)])])
server.bytesPerSecond = rate
try server.start()
try? FileManager.default.removeItem(atPath: dir)
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
let bytes = Double(data.count)
do {
    let t0 = now()
    _ = Hashing.sha256Hex(data)
    print(String(format: "context: SHA-256 (swift-crypto) alone runs at %.0f MB/s on this machine", bytes / (now() - t0) / 1e6))
}
print("bench-hub: \(mb) MiB LFS file from \(server.endpoint), distil with \(connections) connection(s) per file\(rate.map { ", paced to \($0 / 1_000_000) MB/s per connection" } ?? ", unpaced loopback"), \(rounds) rounds, writing to \(dir)")
print("                                        CPU s/GB: with distil    with curl     other processes")
print("round  distil MB/s  curl MB/s  ratio     client  server     client  server    (cores, mean)")

/// CPU seconds used so far by this process (client and server threads) and by reaped children (curl).
func cpuSeconds(children: Bool = false) -> Double {
    var u = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
}
/// Busy CPU seconds of the whole machine so far (/proc/stat), to show how much other processes
/// took during a round: a round on a machine shared with a build is not a measurement.
func machineBusySeconds() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return 0 }
    let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard v.count >= 5 else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (v.reduce(0, +) - v[3] - v[4]) / ticks   // all but idle and iowait
}

var ours: [Double] = [], theirs: [Double] = [], ratios: [Double] = []
for round in 0..<rounds {
    /// Throughput (MB/s), and the client's and the server's CPU seconds per GB, of one fetch with
    /// HubClient into an empty cache.
    func runOurs() -> (Double, Double, Double) {
        try? FileManager.default.removeItem(atPath: dir + "/hub")
        var o = FetchOptions()
        o.progress = false
        o.connectionsPerFile = connections
        let hub = HubClient(config: HubConfig(endpoint: server.endpoint, token: nil, cacheDir: dir + "/hub", offline: false), options: o)
        let c0 = cpuSeconds(), s0 = server.cpuSeconds
        let t0 = now()
        let m = hub.fetch(Commitment(uid: 0, hotkey: "h", block: 0, repo: "bench/model", revision: "main"))
        let t = now() - t0
        let s = server.cpuSeconds - s0, c = cpuSeconds() - c0 - s
        guard m.outcome == .ok else { print("distil fetch failed: \(m.message ?? m.outcome.rawValue)"); exit(1) }
        return (bytes / t / 1e6, c / bytes * 1e9, s / bytes * 1e9)
    }
    /// The same for `curl -sSfL -o FILE URL`, timed from the process start to its exit.
    func runCurl() -> (Double, Double, Double) {
        let out = dir + "/curl.out"
        try? FileManager.default.removeItem(atPath: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-sSfL", "-o", out, "\(server.endpoint)/bench/model/resolve/main/model.safetensors"]
        let c0 = cpuSeconds(children: true), s0 = server.cpuSeconds
        let t0 = now()
        do { try p.run() } catch { print("cannot run curl: \(error)"); exit(1) }
        p.waitUntilExit()
        let t = now() - t0
        let c = cpuSeconds(children: true) - c0, s = server.cpuSeconds - s0
        guard p.terminationStatus == 0 else { print("curl failed"); exit(1) }
        return (bytes / t / 1e6, c / bytes * 1e9, s / bytes * 1e9)
    }
    let busy0 = machineBusySeconds(), own0 = cpuSeconds() + cpuSeconds(children: true), wall0 = now()
    var a = (0.0, 0.0, 0.0), b = (0.0, 0.0, 0.0)
    if only == "distil" { a = runOurs(); b = a } else if only == "curl" { b = runCurl(); a = b }
    else if round % 2 == 0 { a = runOurs(); b = runCurl() } else { b = runCurl(); a = runOurs() }
    ours.append(a.0); theirs.append(b.0); ratios.append(a.0 / b.0)
    let other = max(0, (machineBusySeconds() - busy0) - (cpuSeconds() + cpuSeconds(children: true) - own0)) / (now() - wall0)
    print(String(format: "%5d  %11.0f  %9.0f  %5.2fx     %6.2f  %6.2f     %6.2f  %6.2f    %5.2f", round + 1, a.0, b.0, a.0 / b.0, a.1, a.2, b.1, b.2, other))
}
let mo = median(ours), mc = median(theirs)
print(String(format: "median %11.0f  %9.0f  %5.2fx  (ratio of medians; median of round ratios %.2fx)", mo, mc, mo / mc, median(ratios)))
print("distil's time includes the listing, SHA-256 verification of every byte, fsync and placement in the cache")
server.stop()
try? FileManager.default.removeItem(atPath: dir)

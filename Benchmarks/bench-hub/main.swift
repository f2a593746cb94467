// bench-hub: download throughput of dl-fetch's Hub client against the curl command line, on the
// same files from the same loopback server, in one run (issue 5).
//
//     swift build -c release --product bench-hub
//     .build/release/bench-hub [--mb 1024] [--rounds 3] [--dir /dev/shm/bench-hub] [--rate-mbps N]
//
// Each round downloads one LFS file of --mb MiB through the Hub endpoints (listing, resolve →
// 302 → /cdn/) with HubClient (SHA-256 verified, fsync'd, placed in the cache) and with
// `curl -sSL -o FILE URL` on the resolve URL; the order alternates between rounds. Both write to
// --dir (tmpfs by default, so the disk does not dominate either side).
import DistilFormats
import DistilHub
import Foundation
import HubTestServer

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

var mb = 1024, rounds = 3, dir = "/dev/shm/bench-hub", rate: Int? = nil
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--mb": mb = Int(args.next() ?? "") ?? mb
    case "--rounds": rounds = Int(args.next() ?? "") ?? rounds
    case "--dir": dir = args.next() ?? dir
    case "--rate-mbps": rate = Int(args.next() ?? "").map { $0 * 1_000_000 }
    default:
        FileHandle.standardError.write("usage: bench-hub [--mb N] [--rounds N] [--dir PATH] [--rate-mbps N]\n".data(using: .utf8)!)
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
print("bench-hub: \(mb) MiB LFS file from \(server.endpoint)\(rate.map { ", paced to \($0 / 1_000_000) MB/s per connection" } ?? ", unpaced loopback"), \(rounds) rounds, writing to \(dir)")
print("round  distil MB/s  curl MB/s  ratio")

var ours: [Double] = [], theirs: [Double] = []
for round in 0..<rounds {
    func runOurs() -> Double {
        try? FileManager.default.removeItem(atPath: dir + "/hub")
        var o = FetchOptions()
        o.progress = false
        let hub = HubClient(config: HubConfig(endpoint: server.endpoint, token: nil, cacheDir: dir + "/hub", offline: false), options: o)
        let t0 = now()
        let m = hub.fetch(Commitment(uid: 0, hotkey: "h", block: 0, repo: "bench/model", revision: "main"))
        let t = now() - t0
        guard m.outcome == "ok" else { print("distil fetch failed: \(m.message ?? m.outcome)"); exit(1) }
        return bytes / t / 1e6
    }
    func runCurl() -> Double {
        let out = dir + "/curl.out"
        try? FileManager.default.removeItem(atPath: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-sSfL", "-o", out, "\(server.endpoint)/bench/model/resolve/main/model.safetensors"]
        let t0 = now()
        do { try p.run() } catch { print("cannot run curl: \(error)"); exit(1) }
        p.waitUntilExit()
        let t = now() - t0
        guard p.terminationStatus == 0 else { print("curl failed"); exit(1) }
        return bytes / t / 1e6
    }
    var a = 0.0, b = 0.0
    if round % 2 == 0 { a = runOurs(); b = runCurl() } else { b = runCurl(); a = runOurs() }
    ours.append(a); theirs.append(b)
    print(String(format: "%5d  %11.0f  %9.0f  %5.2fx", round + 1, a, b, a / b))
}
let mo = ours.sorted()[ours.count / 2], mc = theirs.sorted()[theirs.count / 2]
print(String(format: "median %11.0f  %9.0f  %5.2fx  (distil includes SHA-256 verification, fsync and placement)", mo, mc, mo / mc))
server.stop()
try? FileManager.default.removeItem(atPath: dir)

import DistilFormats
import DistilTensors
import Foundation

/// What a run will ask of the engine: how many sequences it decodes together and how long they get.
public struct MemoryRequest: Sendable {
    /// Sequences decoded together (dl-teacher's --batch; 1 for scoring).
    public var batch = 1
    /// Positions each sequence's decoding state holds (longest prompt + new tokens).
    public var positions = 1
    /// The longest run of tokens through the layers at once (the longest prompt, or scored sequence).
    public var prefill = 1
    /// Rows of logits the caller holds at once (scoring's chunk; the decoder's batch is added).
    public var logitRows = 1
    /// Teacher-stream rows the caller holds encoded (dl-teacher: a batch's rows until each of its
    /// prompts is complete, batch x max new tokens), each 2 x vocab + 4 + 8 x up to maxExact bytes.
    public var teacherRows = 0
    public var threads = 1

    public init(batch: Int = 1, positions: Int = 1, prefill: Int = 1, logitRows: Int = 1, teacherRows: Int = 0, threads: Int = 1) {
        self.batch = max(1, batch); self.positions = max(1, positions); self.prefill = max(1, prefill)
        self.logitRows = max(1, logitRows); self.teacherRows = max(0, teacherRows); self.threads = max(1, threads)
    }
}

extension MemoryRequest {
    /// dl-kl scoring one model `chunkRows` positions at a time (one sequence): a chunk's logits (f32,
    /// `logitRows`) and the teacher rows held for it, encoded: the scorer's chunk, and the prefetcher's
    /// queue of up to two chunks ahead plus the chunk it is reading (`teacherRows`, four chunks). At a
    /// 248k vocabulary and the default chunk of 128 that is ~0.38 GB, beyond the weights. The scored
    /// sequence's own length (its decode state and activations) is not known before the stream is
    /// read, so it is not counted here.
    public static func scoring(chunkRows: Int, threads: Int = 1) -> MemoryRequest {
        MemoryRequest(logitRows: chunkRows, teacherRows: 4 * max(1, chunkRows), threads: threads)
    }
}

/// The memory a run needs, from config.json and the safetensors headers only (nothing mapped or
/// loaded), against what this machine grants: `dl-teacher --plan` prints it (one JSON object,
/// docs/FORMATS.md "Memory plan"), and `LanguageModel.load` refuses, before mapping anything, a run
/// that does not fit, with `message`, instead of being killed by the OOM killer halfway.
///
/// - weights: the declared (text-model) tensors as stored; they stay memory-mapped in their dtype
///   and must fit in memory to be read at speed. Tensors the architecture does not declare (vision
///   tower, `mtp.*`) are mapped with their file but never read: `skipped_bytes`.
/// - decode state: per sequence, every attention layer's keys and values (f32, `positions` rows)
///   and every DeltaNet layer's conv and recurrent state (f32), times `batch`.
/// - buffers: an upper estimate of the transient activations of the widest layer over the larger of
///   `prefill` and `batch` rows, the attention score blocks and weight panels of every thread, the
///   logits, and a fixed 256 MiB for the runtime.
/// - fits: need ≤ available, where available is the smaller of MemAvailable and the cgroup's
///   memory limit less its usage (inactive file pages counted as free); and, when RLIMIT_AS is set,
///   the address space now used + every mapped file + state + buffers + per thread a stack, a malloc
///   arena and OpenBLAS's buffer ≤ RLIMIT_AS.
public struct MemoryPlan: Codable, Sendable, Equatable {
    public var model: String
    public var architecture: String
    public var batch: Int
    public var positions: Int
    public var prefill_tokens: Int
    public var threads: Int
    public var weights_bytes: Int64
    public var skipped_bytes: Int64
    public var mapped_bytes: Int64
    public var state_bytes: Int64
    public var buffer_bytes: Int64
    public var held_bytes: Int64
    public var need_bytes: Int64
    public var available_bytes: Int64?
    /// "MemAvailable", "cgroup", or "unknown".
    public var available_from: String
    public var address_space_limit: Int64?
    public var address_space_need: Int64
    public var fits: Bool
    /// Why it does not fit (one line), nil when it fits.
    public var message: String?

    /// The plan of running the checkpoint in `directory` as `request` asks, on this machine.
    public static func plan(directory: String, request r: MemoryRequest, machine: MachineMemory = .current()) throws -> MemoryPlan {
        let config = try ModelConfig.load(directory: directory)
        var sizes: [String: Int64] = [:]
        var mapped: Int64 = 0
        for f in try WeightStore.shardNames(directory: directory) {
            let path = directory + "/" + f
            let h = try SafetensorsHeader.read(path: path)
            mapped += fileSize(path) ?? 0
            for t in h.tensors { sizes[t.name] = Int64(t.end - t.begin) }
        }
        let (tensors, specs) = try ModelTensors.declare(config: config, layout: TensorLayout(names: sizes.keys))
        var weights: Int64 = 0
        for s in specs {
            guard let b = sizes[s.name] else { throw DistilError.input(directory, "missing tensor '\(s.name)'") }
            weights += b
        }
        let skipped = sizes.values.reduce(0, +) - weights
        let state = Int64(r.batch) * stateBytes(config, tensors, positions: r.positions)
        let buffers = bufferBytes(config, tensors, r)
        let held = Int64(r.teacherRows) * Int64(2 * config.vocabSize + 4 + 8 * min(config.vocabSize, TeacherStream.maxExact))
        let need = weights + state + buffers + held
        // Per thread: its stack, a glibc malloc arena (64 MiB reserved) and OpenBLAS's buffer.
        let threadReserve = Int64(r.threads) * (8 << 20 + 64 << 20 + 64 << 20)
        let asNeed = machine.addressSpaceUsed + mapped + state + buffers + held + threadReserve
        var plan = MemoryPlan(model: directory, architecture: config.architecture, batch: r.batch, positions: r.positions,
                              prefill_tokens: r.prefill, threads: r.threads, weights_bytes: weights, skipped_bytes: skipped,
                              mapped_bytes: mapped, state_bytes: state, buffer_bytes: buffers, held_bytes: held,
                              need_bytes: need, available_bytes: machine.available, available_from: machine.availableFrom,
                              address_space_limit: machine.addressSpaceLimit, address_space_need: asNeed, fits: true, message: nil)
        func gib(_ b: Int64) -> String { String(format: "%.2f GiB", Double(b) / Double(1 << 30)) }
        let parts = "weights \(gib(weights)), decode state \(gib(state)) for \(r.batch) x \(r.positions) positions, buffers \(gib(buffers + held))"
        if let avail = machine.available, need > avail {
            plan.fits = false
            plan.message = "needs \(gib(need)) (\(parts)), this machine grants \(gib(avail)) (\(machine.availableFrom)); not started"
        } else if let limit = machine.addressSpaceLimit, asNeed > limit {
            plan.fits = false
            plan.message = "needs \(gib(asNeed)) of address space (mapped weight files \(gib(mapped)), \(parts)), RLIMIT_AS is \(gib(limit)); not started"
        }
        return plan
    }

    /// One sequence's decoding state.
    static func stateBytes(_ c: ModelConfig, _ t: ModelTensors, positions: Int) -> Int64 {
        var floats: Int64 = 0
        for l in t.layers {
            switch l.mixer {
            case .attention: floats += 2 * Int64(positions) * Int64(c.kvHeads * c.headDim)
            case .deltaNet:
                let h = c.hybrid!
                let convDim = 2 * h.linearKeyHeads * h.linearKeyDim + h.linearValueHeads * h.linearValueDim
                floats += Int64(max(0, h.convKernel - 1) * convDim + h.linearValueHeads * h.linearKeyDim * h.linearValueDim)
            }
        }
        return 4 * floats
    }

    /// The transient buffers at their peak (an upper estimate; see the type's comment).
    static func bufferBytes(_ c: ModelConfig, _ t: ModelTensors, _ r: MemoryRequest) -> Int64 {
        let H = c.hiddenSize, qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        var widestRow = 0, widestK = H
        for l in t.layers {
            var row = 0
            switch l.mixer {
            case .attention: row = 5 * qd + 2 * kvd
            case .deltaNet:
                let h = c.hybrid!
                let valueDim = h.linearValueHeads * h.linearValueDim
                let convDim = 2 * h.linearKeyHeads * h.linearKeyDim + valueDim
                row = 2 * convDim + 2 * valueDim + 2 * h.linearValueHeads
                widestK = max(widestK, valueDim)
            }
            switch l.feedForward {
            case .mlp: row = max(row, 2 * c.intermediateSize + H); widestK = max(widestK, c.intermediateSize)
            case .experts:
                let m = c.moe!
                row = max(row, m.experts + m.topK * (2 * H + 2 * m.intermediate) + 2 * m.sharedIntermediate + 2 * H)
                widestK = max(widestK, max(m.intermediate, m.sharedIntermediate))
            }
            widestRow = max(widestRow, row)
        }
        let rows = Int64(max(r.prefill, r.batch))
        let perThread = Int64(Attention.attentionBlock) * Int64(r.prefill) + 512 * Int64(widestK)
        let floats = rows * Int64(4 * H + widestRow) + Int64(r.threads) * perThread + Int64(r.logitRows + r.batch) * Int64(c.vocabSize)
        return 4 * floats + 256 << 20
    }
}

/// What this machine grants a process now.
public struct MachineMemory: Sendable {
    /// The smaller of MemAvailable and the cgroup's headroom; nil when neither can be read.
    public var available: Int64?
    public var availableFrom: String
    /// RLIMIT_AS (soft), nil when unlimited.
    public var addressSpaceLimit: Int64?
    /// This process's address space now (VmSize).
    public var addressSpaceUsed: Int64

    public init(available: Int64?, availableFrom: String, addressSpaceLimit: Int64?, addressSpaceUsed: Int64) {
        self.available = available; self.availableFrom = availableFrom
        self.addressSpaceLimit = addressSpaceLimit; self.addressSpaceUsed = addressSpaceUsed
    }

    public static func current() -> MachineMemory {
        var available: Int64?, from = "unknown"
        if let m = procKB("/proc/meminfo", "MemAvailable:") { available = m; from = "MemAvailable" }
        if let g = cgroupHeadroom(), g < (available ?? .max) { available = g; from = "cgroup" }
        var lim = rlimit()
        var asLimit: Int64?
        #if os(Linux)
        if getrlimit(Int32(RLIMIT_AS.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max { asLimit = Int64(clamping: lim.rlim_cur) }
        #else
        if getrlimit(RLIMIT_AS, &lim) == 0, lim.rlim_cur != rlim_t.max { asLimit = Int64(clamping: lim.rlim_cur) }
        #endif
        return MachineMemory(available: available, availableFrom: from, addressSpaceLimit: asLimit,
                             addressSpaceUsed: procKB("/proc/self/status", "VmSize:") ?? 0)
    }

    /// A "Name:   123 kB" line of a /proc file, in bytes.
    static func procKB(_ path: String, _ key: String) -> Int64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let kb = Int64(line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") else { return nil }
        return kb * 1024
    }

    /// The memory cgroup's limit less its usage, inactive file pages (reclaimable) counted as free;
    /// cgroup v2 (memory.max) or v1 (memory.limit_in_bytes), at this process's cgroup path or at the
    /// mount's root (a container sees its own cgroup there). nil: no limit, or unreadable.
    static func cgroupHeadroom() -> Int64? {
        func read(_ p: String) -> String? { (try? String(contentsOfFile: p, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
        func stat(_ p: String, _ key: String) -> Int64 {
            guard let t = read(p), let l = t.split(separator: "\n").first(where: { $0.hasPrefix(key + " ") }) else { return 0 }
            return Int64(l.split(separator: " ").last ?? "") ?? 0
        }
        var v2Path = "", v1Path = ""
        for line in (read("/proc/self/cgroup") ?? "").split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            if f[0] == "0" && f[1].isEmpty { v2Path = String(f[2]) }
            if f[1].split(separator: ",").contains("memory") { v1Path = String(f[2]) }
        }
        let candidates: [(limit: String, usage: String, stat: String, inactive: String)] =
            [v2Path, ""].flatMap { p -> [(String, String, String, String)] in
                let d = "/sys/fs/cgroup" + (p == "/" ? "" : p)
                return [(d + "/memory.max", d + "/memory.current", d + "/memory.stat", "inactive_file")]
            } + [v1Path, ""].flatMap { p -> [(String, String, String, String)] in
                let d = "/sys/fs/cgroup/memory" + (p == "/" ? "" : p)
                return [(d + "/memory.limit_in_bytes", d + "/memory.usage_in_bytes", d + "/memory.stat", "total_inactive_file")]
            }
        for c in candidates {
            guard let l = read(c.limit) else { continue }
            guard let limit = Int64(l), limit < 1 << 60 else { return nil }   // "max", or v1's page-rounded Int64.max
            let usage = Int64(read(c.usage) ?? "") ?? 0
            return limit - max(0, usage - stat(c.stat, c.inactive))
        }
        return nil
    }
}

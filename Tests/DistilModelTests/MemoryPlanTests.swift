@testable import DistilModel
import DistilFormats
import DistilTensors
import Foundation
import XCTest

/// The memory plan against what the engine really maps and allocates, and the refusal before loading.
final class MemoryPlanTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    let roomy = MachineMemory(available: 1 << 40, availableFrom: "MemAvailable", addressSpaceLimit: nil, addressSpaceUsed: 0)

    func dir(_ name: String) -> String { Self.fixtures.appendingPathComponent(name).path }

    /// Weights = the declared tensors' stored bytes; skipped = the vision tower and mtp.* (mapped,
    /// never read); mapped = the files; state = exactly what `makeState` allocates per sequence.
    func testFiguresAreWhatTheEngineMapsAndAllocates() throws {
        for name in ["qwen3_5_moe-teacher-layout", "qwen3-tied", "qwen3_moe", "qwen3_5-text"] {
            let d = dir(name)
            let r = MemoryRequest(batch: 3, positions: 40, prefill: 30, teacherRows: 3 * 10, threads: 2)
            let plan = try MemoryPlan.plan(directory: d, request: r, machine: roomy)
            let store = try WeightStore(directory: d)
            var declared: Int64 = 0, aux: Int64 = 0, mapped: Int64 = 0
            let expected = try ExpectedTensors(config: ModelConfig.load(directory: d), names: store.tensorNames).shapes
            for n in store.tensorNames {
                let t = try XCTUnwrap(store.info(n))
                if expected[n] != nil { declared += Int64(t.end - t.begin) } else { aux += Int64(t.end - t.begin) }
            }
            for f in try WeightStore.shardNames(directory: d) {
                mapped += Int64(try FileManager.default.attributesOfItem(atPath: d + "/" + f)[.size] as! NSNumber)
            }
            XCTAssertEqual(plan.weights_bytes, declared, name)
            XCTAssertEqual(plan.skipped_bytes, aux, name)
            XCTAssertEqual(plan.mapped_bytes, mapped, name)
            let lm = try LanguageModel.load(directory: d, threads: 1)
            let state = lm.net.makeState(capacity: 40)
            let floats = state.caches.reduce(0) { n, c in
                switch c {
                case .attention(let k, let v): return n + k.count + v.count
                case .deltaNet(let conv, let rec): return n + conv.count + rec.count
                }
            }
            XCTAssertEqual(plan.state_bytes, Int64(3 * 4 * floats), name)
            XCTAssertEqual(plan.need_bytes, plan.weights_bytes + plan.state_bytes + plan.buffer_bytes + plan.held_bytes, name)
            XCTAssertTrue(plan.fits, name)
            XCTAssertNil(plan.message)
        }
        // The teacher-layout fixture really carries both extras.
        let names = try WeightStore(directory: dir("qwen3_5_moe-teacher-layout")).tensorNames
        XCTAssertTrue(names.contains { $0.hasPrefix("mtp.") } && names.contains { $0.hasPrefix("model.visual.") })
    }

    /// Not enough memory, or not enough address space: refused with one line that gives the figures.
    func testRefusalNamesTheFigures() throws {
        let d = dir("qwen3-tied")
        let r = MemoryRequest(batch: 4, positions: 100)
        let need = try MemoryPlan.plan(directory: d, request: r, machine: roomy).need_bytes
        let tight = MachineMemory(available: need - 1, availableFrom: "cgroup", addressSpaceLimit: nil, addressSpaceUsed: 0)
        let refused = try MemoryPlan.plan(directory: d, request: r, machine: tight)
        XCTAssertFalse(refused.fits)
        let m = try XCTUnwrap(refused.message)
        XCTAssertTrue(m.hasPrefix("needs "), m)
        XCTAssertTrue(m.contains("decode state") && m.contains("for 4 x 100 positions") && m.contains("(cgroup); not started"), m)
        XCTAssertFalse(m.contains("\n"))
        XCTAssertTrue(try MemoryPlan.plan(directory: d, request: r, machine: MachineMemory(available: need, availableFrom: "cgroup",
                                                                                       addressSpaceLimit: nil, addressSpaceUsed: 0)).fits)
        let asTight = MachineMemory(available: nil, availableFrom: "unknown", addressSpaceLimit: 1 << 20, addressSpaceUsed: 0)
        let noSpace = try MemoryPlan.plan(directory: d, request: r, machine: asTight)
        XCTAssertFalse(noSpace.fits)
        XCTAssertTrue(noSpace.message?.contains("of address space") == true && noSpace.message?.contains("RLIMIT_AS is") == true)
        // More positions or a bigger batch never need less.
        let more = try MemoryPlan.plan(directory: d, request: MemoryRequest(batch: 8, positions: 200), machine: roomy)
        XCTAssertGreaterThan(more.need_bytes, need)
    }

    /// The plan is JSON with the fields FORMATS.md documents: the committed sample decodes, holds
    /// every field the encoder writes, and the sample's refusal is what the planner says for its figures.
    func testPlanRoundTripsAsJSONAndMatchesTheSample() throws {
        let plan = try MemoryPlan.plan(directory: dir("qwen3_5_moe-teacher-layout"),
                                       request: MemoryRequest(batch: 8, positions: 544, prefill: 32, teacherRows: 8 * 512, threads: 2),
                                       machine: MachineMemory(available: 256 << 20, availableFrom: "cgroup", addressSpaceLimit: nil,
                                                              addressSpaceUsed: 0))
        XCTAssertEqual(try JSONDecoder().decode(MemoryPlan.self, from: try JSONEncoder().encode(plan)), plan)
        let bytes = try Data(contentsOf: Self.fixtures.appendingPathComponent("memory-plan.json"))
        var sample = try JSONDecoder().decode(MemoryPlan.self, from: bytes)
        let keys = try XCTUnwrap(try JSONSerialization.jsonObject(with: bytes) as? [String: Any]).keys
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(plan)) as? [String: Any]).keys
        XCTAssertEqual(Set(written).subtracting(keys), [], "fields the sample lacks")
        XCTAssertEqual(Set(keys).subtracting(written), ["address_space_limit"], "fields nobody writes (a nil limit is omitted)")
        sample.model = plan.model
        sample.address_space_need = plan.address_space_need
        XCTAssertEqual(sample, plan)
        XCTAssertNotNil(MachineMemory.current().available, "MemAvailable is readable on Linux")
    }

    /// dl-kl's request counts a chunk's logits and the teacher rows held for it: going from a chunk of
    /// 1 to 128 adds at least 127 rows x vocab x (4 bytes of logits + 4 chunks' 2-byte rows), and a
    /// machine granting the chunk-1 need refuses the chunk-128 run.
    func testScoringCountsTheChunksLogitsAndTeacherRows() throws {
        let d = dir("qwen3-tied")
        let vocab = Int64(try ModelConfig.load(directory: d).vocabSize)
        let one = try MemoryPlan.plan(directory: d, request: .scoring(chunkRows: 1), machine: roomy)
        let big = try MemoryPlan.plan(directory: d, request: .scoring(chunkRows: 128), machine: roomy)
        XCTAssertGreaterThanOrEqual(big.need_bytes - one.need_bytes, 127 * vocab * (4 + 4 * 2))
        XCTAssertEqual(big.held_bytes, 4 * 128 * (2 * vocab + 4 + 8 * min(vocab, Int64(TeacherStream.maxExact))))
        let tight = MachineMemory(available: one.need_bytes, availableFrom: "MemAvailable", addressSpaceLimit: nil, addressSpaceUsed: 0)
        XCTAssertTrue(try MemoryPlan.plan(directory: d, request: .scoring(chunkRows: 1), machine: tight).fits)
        XCTAssertFalse(try MemoryPlan.plan(directory: d, request: .scoring(chunkRows: 128), machine: tight).fits)
    }
}

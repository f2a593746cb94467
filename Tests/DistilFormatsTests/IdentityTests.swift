import DistilFormats
import Foundation
import XCTest

/// A model's identity from manifest to KL record: Manifest and CheckVerdict hold one ModelRef and
/// write it flat, byte for byte as when the fields were their own; a KL record is named from it.
final class IdentityTests: XCTestCase {
    /// Re-encoding every committed manifest and check gives the sample's bytes back (the held ModelRef
    /// is written as the six fields were: flat, nil ones omitted).
    func testManifestsAndChecksKeepTheirBytes() throws {
        for name in ["manifests.jsonl", "manifests-metadata-only.jsonl"] {
            let m = MemoryWriter(), w = JSONLWriter(m)
            for r in try JSONLReader<Manifest>(path: samplePath(name)).readAll() { try w.write(r) }
            XCTAssertEqual(m.bytes, try readFile(samplePath(name)), name)
        }
        let m = MemoryWriter(), w = JSONLWriter(m)
        let checks = try JSONLReader<CheckVerdict>(path: samplePath("checks.jsonl")).readAll()
        for r in checks { try w.write(r) }
        XCTAssertEqual(m.bytes, try readFile(samplePath("checks.jsonl")))
        // Read through the held reference, as the fields were read.
        XCTAssertEqual(checks[0].uid, checks[0].model.uid)
        XCTAssertEqual(checks[0].model.key, ModelRef.Key(hotkey: "5Hking", repo: "alice/distil-king", commit: String(repeating: "a", count: 40)))
    }

    func testAManifestFromACommitmentHoldsItsRef() throws {
        let c = Commitment(uid: 4, hotkey: "h", block: 7, repo: "o/n", revision: "main")
        var m = Manifest(commitment: c, commit: "abc", path: nil, files: [], outcome: .ok)
        XCTAssertEqual(m.model, ModelRef(uid: 4, hotkey: "h", repo: "o/n", revision: "main", commit: "abc", block: 7))
        XCTAssertEqual(m.commitment, c)
        m.commit = "def"
        XCTAssertEqual(CheckVerdict(manifest: m, ok: true, reason: .ok, message: "").model.commit, "def")
        // A missing field of the reference is named as before.
        let line = #"{"uid":1,"hotkey":"h","repo":"o/n","files":[],"outcome":"ok","tool":"t"}"#
        XCTAssertThrowsError(try JSONLReader<Manifest>(MemoryReader(Array(line.utf8), name: "m.jsonl")).next()) { e in
            XCTAssertEqual((e as? DistilError)?.message, "m.jsonl:1: missing field 'block'")
        }
    }

    /// dl-kl names a checked model's records from its ModelRef (the pinned commit as revision): the
    /// committed KL sample's identity fields are exactly the committed check's.
    func testAKLRecordIsNamedFromTheCheck() throws {
        let check = try JSONLReader<CheckVerdict>(path: samplePath("checks.jsonl")).readAll()[0]
        let sample = try JSONLReader<KLRecord>(path: samplePath("kl.jsonl")).readAll()[0]
        var r = sample
        r.model = ""; r.uid = nil; r.hotkey = nil; r.block = nil; r.revision = nil; r.weights_sha256 = nil
        r.identify(check.model, weightsSHA256: sample.weights_sha256)
        XCTAssertEqual(r, sample)
        XCTAssertTrue(r.isOf(check.model))
        var other = check.model
        other.commit = "b"; other.revision = "b"
        XCTAssertFalse(r.isOf(other))
        // A record named by hand may give only the repo, or the committed revision.
        var hand = KLRecord(model: check.repo, promptID: "p", klMean: 0, klStd: 0, nTokens: 0)
        XCTAssertTrue(hand.isOf(check.model))
        hand.revision = check.revision
        XCTAssertTrue(hand.isOf(check.model))
        hand.hotkey = "someone else"
        XCTAssertFalse(hand.isOf(check.model))
        // A scoring failure is named the same way, less the block (its check's).
        var failure = ScoringFailure(model: "", fault: .miner, message: "m")
        failure.identify(check.model, weightsSHA256: "w")
        XCTAssertEqual([failure.model, failure.hotkey, failure.revision, failure.weights_sha256], [check.repo, check.hotkey, check.commit, "w"])
        XCTAssertEqual(failure.uid, check.uid)
        XCTAssertTrue(failure.isOf(check.model))
        XCTAssertEqual(failure.namedKey, check.model.key)
    }
}

import DistilFormats
import DistilHub
import Foundation
import XCTest

/// "Two commitments under one uid": decided once, on dl-fetch's input (docs/FORMATS.md, Commitment).
final class CommitmentRuleTests: XCTestCase {
    func testSampleReRegisteredUIDKeepsTheLatestRegistration() throws {
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/commitments-reregistered.jsonl"
        let list = try JSONLReader<Commitment>(path: sample).readAll()
        XCTAssertEqual(list.count, 4)
        let (kept, void) = CommitmentRule.resolve(list)
        // uid 7: 5Hnew committed later than 5Hold, so it is the later registration; uid 1: one hotkey,
        // its first commitment counts. Input order is kept.
        XCTAssertEqual(kept.map { "\($0.uid) \($0.hotkey) \($0.repo)" }, ["1 5Hking alice/king", "7 5Hnew new/model"])
        XCTAssertEqual(void.map(\.commitment.repo), ["old/model", "alice/king-v2"])
        XCTAssertTrue(void[0].reason.contains("re-registered"), void[0].reason)
        XCTAssertTrue(void[1].reason.contains("the first counts"), void[1].reason)
    }

    /// The chain adapter's output (pipelines/chain/samples/commitments.jsonl, written by
    /// distil-chain from the replayed chain) is dl-fetch's input as it is: one commitment per uid.
    func testTheChainAdaptersSampleIsDlFetchInput() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let list = try JSONLReader<Commitment>(path: root.path + "/pipelines/chain/samples/commitments.jsonl").readAll()
        XCTAssertEqual(list.map(\.uid), [1, 2, 5, 6])
        XCTAssertTrue(list.allSatisfy { RepoRef.isCommitHash($0.revision ?? "") })
        XCTAssertEqual(CommitmentRule.resolve(list).kept, list)
    }

    func testDistinctUIDsAreUntouchedAndTheRuleIsIdempotent() {
        let list = [Commitment(uid: 3, hotkey: "a", block: 5, repo: "x/a"), Commitment(uid: 2, hotkey: "b", block: 9, repo: "x/b")]
        XCTAssertEqual(CommitmentRule.resolve(list).kept, list)
        XCTAssertTrue(CommitmentRule.resolve(list).void.isEmpty)
        let twice = [Commitment(uid: 3, hotkey: "old", block: 5, repo: "x/a"), Commitment(uid: 3, hotkey: "new", block: 5, repo: "x/b")]
        // Equal blocks: the later line is the later registration (an export lists in chain order).
        let once = CommitmentRule.resolve(twice).kept
        XCTAssertEqual(once.map(\.hotkey), ["new"])
        XCTAssertEqual(CommitmentRule.resolve(once).kept, once)
    }
}

import DistilFormats
import DistilHub
import Foundation
import XCTest

/// The committed sample of dl-fetch prune's output (docs/FORMATS.md, "Prune") reads as PruneRecord
/// and says what the format promises; scripts/tests/prune.sh checks live output against it.
final class PruneRecordTests: XCTestCase {
    func testSampleReadsAsPruneRecords() throws {
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/prune.jsonl"
        let records = try JSONLReader<PruneRecord>(path: sample).readAll()
        XCTAssertEqual(Set(records.map(\.kind)), ["snapshot", "summary", "partial", "epoch"])
        for r in records where r.kind == "snapshot" {
            XCTAssertNotNil(r.repo); XCTAssertNotNil(r.commit); XCTAssertTrue(r.reason!.hasPrefix("scored:"))
            XCTAssertGreaterThan(r.bytes!, 0)
        }
        let summaries = records.filter { $0.kind == "summary" }
        XCTAssertEqual(summaries.map(\.floor_met), [true, false])
        for s in summaries {
            XCTAssertEqual(s.floor_met, s.free_after! >= s.min_free!)
            XCTAssertTrue(s.kept!.contains { $0.hasSuffix("(king)") } && s.kept!.contains { $0.hasSuffix("(--keep)") })
        }
    }

    func testByteSizes() {
        XCTAssertEqual(Prune.parseBytes("500G"), 500 << 30)
        XCTAssertEqual(Prune.parseBytes("1k"), 1024)
        XCTAssertEqual(Prune.parseBytes("123"), 123)
        XCTAssertNil(Prune.parseBytes("-1"))
        XCTAssertNil(Prune.parseBytes("9999999T"))
        XCTAssertNil(Prune.parseBytes("G"))
    }
}

import DistilHub
import XCTest

final class FetchRunTests: XCTestCase {
    func testHeadersGoUnderXDGCacheHomeElseHomeCache() {
        XCTAssertEqual(FetchRun.defaultHeadersDir(environment: ["XDG_CACHE_HOME": "/x"], home: "/h"), "/x/distil/headers")
        XCTAssertEqual(FetchRun.defaultHeadersDir(environment: ["XDG_CACHE_HOME": ""], home: "/h"), "/h/.cache/distil/headers")
        XCTAssertEqual(FetchRun.defaultHeadersDir(environment: [:], home: "/h"), "/h/.cache/distil/headers")
    }
}

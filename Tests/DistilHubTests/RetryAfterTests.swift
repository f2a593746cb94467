import DistilHub
import Foundation
import XCTest

final class RetryAfterTests: XCTestCase {
    /// IMF-fixdate values as Python's email.utils.parsedate_to_datetime reads them.
    func testHTTPDateMatchesPython() {
        let cases: [(String, Double)] = [("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777), ("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480),
                                         ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_600),
                                         ("Fri, 31 Dec 2100 23:59:59 GMT", 4_133_980_799)]
        for (s, t) in cases { XCTAssertEqual(RetryPolicy.httpDate(s)?.timeIntervalSince1970, t, s) }
        for bad in ["Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
                    "Sun, 06 Nov 1994 24:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "", "Wed, 2\u{59A}n_UY Oct 5 07:28:0?0 GMT"] {
            XCTAssertNil(RetryPolicy.httpDate(bad), bad)
        }
    }

    /// The header that made Foundation's DateFormatter trap (Fuzz/regressions/http-headers) is no wait.
    func testHostileRetryAfterIsIgnored() {
        let r = HTTPResponse(status: 429, headers: ["retry-after": " Wed, 2\u{59A}n_UY Oct 5 07:28:0?0 GMT"], url: "u")
        XCTAssertNil(RetryPolicy.requestedWait(r))
        let ok = HTTPResponse(status: 429, headers: ["retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"], url: "u")
        XCTAssertEqual(RetryPolicy.requestedWait(ok, now: Date(timeIntervalSince1970: 1_445_412_470)), 10)
    }
}

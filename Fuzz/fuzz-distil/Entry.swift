// The libFuzzer binary (built only by scripts/fuzz.sh: DISTIL_FUZZ=1, -sanitize=fuzzer,address,
// -parse-as-library). DISTIL_FUZZ_TARGET names the target (FuzzTargets.all).
//
// SwiftPM links every executable with `--defsym main=<module>_main` and libFuzzer brings its own
// `main` (whole-archive), so the link needs --allow-multiple-definition; whichever `main` wins, it
// ends in libFuzzer's driver calling `LLVMFuzzerTestOneInput` below.
import CFuzzer
import DistilFuzz
import Foundation

let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["DISTIL_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTargets.named(name) else {
        FileHandle.standardError.write(Data("fuzz-distil: set DISTIL_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: " "))\n".utf8))
        exit(2)
    }
    return t
}()

/// DISTIL_FUZZ_SELFTEST=heap-overflow|trap: an input starting with "BUG" reads one byte past a heap
/// buffer, or indexes an array out of range. The smoke (scripts/tests/fuzz.sh) runs both on such an
/// input and requires the run to stop with the sanitizer's report / Swift's trap: proof that the
/// build it fuzzes with (optimized or not) still catches either kind of bug.
let selfTest = ProcessInfo.processInfo.environment["DISTIL_FUZZ_SELFTEST"]

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let selfTest, Array(bytes.prefix(3)) == Array("BUG".utf8) {
        let n = Int(bytes[3 % size]) % 8 + 8
        if selfTest == "heap-overflow" {
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
            p.initialize(repeating: 1, count: n)
            let past = p[n]
            p.deallocate()
            return CInt(past)
        }
        if selfTest == "trap" { return CInt([UInt8](repeating: 1, count: n)[n]) }
    }
    target.run(bytes)
    return 0
}

@_cdecl("fuzz_distil_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = target
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v) { testOneInput($0, $1) }
}

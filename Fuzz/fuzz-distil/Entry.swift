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

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("fuzz_distil_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = target
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v) { testOneInput($0, $1) }
}

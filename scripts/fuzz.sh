#!/usr/bin/env bash
# Fuzz one parser of untrusted bytes with libFuzzer (address sanitizer on).
#
#   scripts/fuzz.sh TARGET [SECONDS]     run TARGET for SECONDS (default 60); FUZZ_RUNS=N: stop after N inputs;
#                                        FUZZ_TIMEOUT=S: an input running S seconds of wall clock is a hang
#                                        (default 10; a run at nice 19 on a busy machine needs more)
#   scripts/fuzz.sh --list               the targets (Fuzz/DistilFuzz/FuzzTargets.swift)
#   scripts/fuzz.sh --build              only build the fuzzer
#   scripts/fuzz.sh --selftest           check that the build catches bugs: a heap overflow must stop it
#                                        with the address sanitizer's report, an out-of-range index with
#                                        Swift's trap (DISTIL_FUZZ_SELFTEST in Fuzz/fuzz-distil/Entry.swift)
#
# The binary is built optimized in .build-fuzz (its own scratch path: every module is instrumented) with
#   DISTIL_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product fuzz-distil \
#     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xlinker --allow-multiple-definition
# (FUZZ_CONFIG=debug: the unoptimized build, 1.5-3x slower per input). The address sanitizer and
# Swift's own checks (bounds, overflow, preconditions) stay on in the optimized build.
# (Swift 6.3's libFuzzer: -parse-as-library so no module emits a `main`; SwiftPM's --defsym main= and
# libFuzzer's own main meet at link time, hence --allow-multiple-definition; ld.gold would crash
# formatting that error otherwise). The corpus grows in .build-fuzz/corpus/TARGET, seeded from the
# committed Fuzz/corpus/TARGET. A crash, a sanitizer report, a timeout (FUZZ_TIMEOUT, 10 s per input) or more than
# 2 GB of memory stops the run: the input is saved as .build-fuzz/crashes/TARGET/crash-* (or timeout-,
# oom-), the script exits 1, and the input belongs in Fuzz/regressions/TARGET/ (DistilFuzzTests replays
# it) once fixed. The targets that write their input to files (configs, the cached listing, the
# engine's weights) write them under /dev/shm when it is there: on ext4 each rewrite of a truncated
# file forces a write-back, which made those targets 20x slower. Leak reports are off: a parser that
# throws may leave Swift runtime caches behind.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
config=${FUZZ_CONFIG:-release}
[[ "$config" == release || "$config" == debug ]] || { echo "fuzz: FUZZ_CONFIG must be release or debug, got '$config'" >&2; exit 2; }
bin=.build-fuzz/$config/fuzz-distil

build() {
  # The build's own status counts: a failed rebuild leaves the previous binary in place, which must
  # not be fuzzed as if it were the current code.
  local rc
  set +e
  DISTIL_FUZZ=1 nice swift build -c "$config" --scratch-path .build-fuzz --product fuzz-distil \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xlinker --allow-multiple-definition \
    2>&1 | grep -v -e "Cannot export local symbol" -e "^warning: "
  rc=${PIPESTATUS[0]}
  set -e
  ((rc == 0)) || { echo "fuzz: swift build failed (exit $rc)" >&2; exit 1; }
  [[ -x "$bin" ]] || { echo "fuzz: the build did not produce $bin" >&2; exit 1; }
}

selftest() {
  local input=.build-fuzz/selftest.input kind log want
  printf 'BUGx' > "$input"
  for kind in heap-overflow trap; do
    log=.build-fuzz/selftest-$kind.log
    want="ERROR: AddressSanitizer: heap-buffer-overflow"
    [[ $kind == trap ]] && want="ERROR: libFuzzer: deadly signal"
    if DISTIL_FUZZ_SELFTEST=$kind DISTIL_FUZZ_TARGET=snappy SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 \
         "$bin" -runs=1 "$input" > "$log" 2>&1 || ! grep -q "$want" "$log"; then
      echo "fuzz: self-test $kind: the $config build did not stop with '$want' (log $log)" >&2
      return 1
    fi
  done
  echo "fuzz: self-test: the $config build stops on a heap overflow (address sanitizer) and on an out-of-range index (Swift's trap)"
}

targets() { sed -n 's/^ *FuzzTarget(name: "\([a-z0-9-]*\)".*/\1/p' Fuzz/DistilFuzz/FuzzTargets.swift; }

case "${1:-}" in
  --list) targets; exit 0 ;;
  --build) build; exit 0 ;;
  --selftest) [[ -x "$bin" ]] || build; selftest; exit $? ;;
  ""|-h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
esac
target=$1 seconds=${2:-60}
targets | grep -qx -- "$target" || { echo "fuzz: unknown target '$target' (scripts/fuzz.sh --list)" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
[[ -x "$bin" && -z "${FUZZ_REBUILD:-}" && "$bin" -nt Fuzz/DistilFuzz/FuzzTargets.swift ]] || build

corpus=.build-fuzz/corpus/$target crashes=.build-fuzz/crashes/$target
mkdir -p "$corpus" "$crashes"
log=.build-fuzz/$target.log
limit=(-max_total_time="$seconds")
[[ -n "${FUZZ_RUNS:-}" ]] && limit+=(-runs="$FUZZ_RUNS")
scratch=${TMPDIR:-/tmp}
[[ -d /dev/shm && -w /dev/shm ]] && scratch=/dev/shm
set +e
TMPDIR=$scratch DISTIL_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
  "$bin" "${limit[@]}" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
  "$corpus" "Fuzz/corpus/$target" > "$log" 2>&1
rc=$?
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
found=$(ls "$crashes" | wc -l)
if ((rc != 0)); then
  grep -m1 -E "ERROR: |Fatal error|==ERROR|deadly signal|timeout|out-of-memory" "$log" >&2 || tail -5 "$log" >&2
  echo "fuzz $target: FAILED after ${runs:-?} executions (exit $rc); input(s) in $crashes, log $log" >&2
  exit 1
fi
echo "fuzz $target: ${runs:-?} executions (${secs:-?}/s), corpus $(ls "$corpus" | wc -l) inputs, 0 crashes"

#!/usr/bin/env bash
# A smoke run of every fuzz target (scripts/fuzz.sh): the libFuzzer build with the address sanitizer
# (optimized), its self-test (a planted heap overflow and an out-of-range index must stop it), then each
# target for FUZZ_SMOKE_SECONDS (default 5) from its committed seed corpus. Fails on any
# crash, sanitizer report, timeout or memory blow-up; prints each target's executions. The long runs
# (>= 1M executions per target) are recorded in docs/RELIABILITY.md with their commands.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SMOKE_SECONDS:-3}
start=$SECONDS
scripts/fuzz.sh --build > /dev/null
echo "fuzz smoke: built in $((SECONDS - start)) s"
# A fuzzer whose build no longer traps on a bug would pass every target: the self-test first.
scripts/fuzz.sh --selftest
failed=()
# No target found (the --list pattern no longer matching FuzzTargets.swift) must fail, not pass.
[[ -n "$(scripts/fuzz.sh --list)" ]] || { echo "fuzz smoke: FAILED: scripts/fuzz.sh --list names no target" >&2; exit 1; }
for t in $(scripts/fuzz.sh --list); do
  scripts/fuzz.sh "$t" "$seconds" || failed+=("$t")
done
echo "fuzz smoke: $(scripts/fuzz.sh --list | wc -l) targets in $((SECONDS - start)) s (build included)"
((${#failed[@]} == 0)) || { echo "fuzz smoke: FAILED: ${failed[*]}" >&2; exit 1; }

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): the Swift tests, then every suite under
# scripts/tests/ (each drives a real outside part — a shell pipeline, a daemon, a browser, an SDK —
# starts what it needs, stops it by pid, and exits non-zero on failure).
#
#   scripts/test.sh                 everything
#   scripts/test.sh --no-swift      only the suites under scripts/tests/
#   DISTIL_SUITES="slurm chain" scripts/test.sh --no-swift   only those suites (file names without .sh)
set -uo pipefail
cd "$(dirname "$0")/.."
swift=1
[[ "${1:-}" == "--no-swift" ]] && swift=0
passed=0 failed=0 names=()
if ((swift)); then
  if swift test --disable-swift-testing; then passed=$((passed + 1)); else failed=$((failed + 1)); names+=(swift-test); fi
fi
shopt -s nullglob
# A name in DISTIL_SUITES with no scripts/tests/NAME.sh (a typo) fails the run: it must not pass by
# running nothing.
for name in ${DISTIL_SUITES:-}; do
  [[ -f "scripts/tests/$name.sh" ]] || { failed=$((failed + 1)); names+=("$name"); echo "=== suite $name: no scripts/tests/$name.sh" >&2; }
done
for t in scripts/tests/*.sh; do
  name=$(basename "$t" .sh)
  if [[ -n "${DISTIL_SUITES:-}" ]] && [[ " $DISTIL_SUITES " != *" $name "* ]]; then continue; fi
  echo "=== suite $name ($t)" >&2
  start=$SECONDS
  if bash "$t"; then
    passed=$((passed + 1)); echo "=== suite $name: passed in $((SECONDS - start)) s" >&2
  else
    failed=$((failed + 1)); names+=("$name"); echo "=== suite $name: FAILED in $((SECONDS - start)) s" >&2
  fi
done
((failed)) && echo "failed suites: ${names[*]}" >&2
echo "suites: $passed passed, $failed failed"
((failed == 0))

#!/usr/bin/env bash
# pipelines/miner-check.sh on the demo checkpoints, against a teacher stream made here from the demo's
# teacher (as a validator would publish an epoch's stream):
#   - the challenger against the king: "would take the crown", exit 0;
#   - the king against itself: "would not take the crown", exit 1;
#   - a quantized copy of the challenger (its config.json given a quantization_config, as an 8-bit
#     bitsandbytes export has): fails its pre-check with the reason QUANTIZED, exit 1;
#   - each run leaves its report (well-formed XML, the decision's model in it);
#   - under a policy file (paired t-test) the decision follows the policy's rule;
#   - a damaged stream is an error (exit 3), a missing flag a usage error (exit 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "miner-check: FAIL: $*" >&2; exit 1; }
bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
export DISTIL_BIN="$bin"

hash=$(printf 'miner-check block 300' | sha256sum | cut -c1-64)
"$bin/dl-prompts" sample --block 300 --block-hash "$hash" --count 6 demo/corpus.jsonl.zst > "$tmp/prompts.jsonl" 2>/dev/null
"$bin/dl-teacher" --model demo/teacher --max-new-tokens 24 --block 300 --block-hash "$hash" "$tmp/prompts.jsonl" > "$tmp/teacher.dlt" 2>/dev/null
echo "miner-check: teacher stream of 6 prompts x 24 tokens ($(wc -c < "$tmp/teacher.dlt") bytes)" >&2

# run NAME EXPECTED_STATUS MODEL: miner-check.sh against the demo king; its stdout in $tmp/NAME.out.
run() {
  local name=$1 want=$2 rc=0; shift 2
  pipelines/miner-check.sh "$@" --teacher-stream "$tmp/teacher.dlt" --king ./demo/king --work "$tmp/$name" \
    > "$tmp/$name.out" 2> "$tmp/$name.err" || rc=$?
  [[ $rc == "$want" ]] || { cat "$tmp/$name.err" >&2; fail "$name: exit status $rc, expected $want"; }
  echo "miner-check: $name (exit $rc): $(cat "$tmp/$name.out")" >&2
}
well_formed() { python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1" || fail "$1 is not well-formed"; }

run challenger 0 ./demo/challenger
grep -q '^would take the crown, by [0-9.]*% below the king'"'"'s mean KL (.*), p = ' "$tmp/challenger.out" || fail "challenger: $(cat "$tmp/challenger.out")"
well_formed "$tmp/challenger/epoch-300/report.html"
grep -q 'took the crown' "$tmp/challenger/epoch-300/report.html" || fail "the challenger's report does not show it taking the crown"

# Under the validator's policy file: a paired t-test that needs 20 prompts keeps the king on this
# 6-prompt stream; the same test needing 2 prompts crowns the challenger (p well below 0.05).
for n in 20 2; do
  printf '{"format": "distil-policy/1", "dethrone": {"rule": "paired_t", "alpha": 0.05, "min_prompts": %d, "margin": 0}}\n' "$n" \
    > "$tmp/policy-$n.json"
done
run policy-needs-20 1 ./demo/challenger --policy "$tmp/policy-20.json"
grep -q '^would not take the crown, .*fewer than the 20 the paired test needs$' "$tmp/policy-needs-20.out" || fail "policy-needs-20: $(cat "$tmp/policy-needs-20.out")"
grep -q '"policy_sha256"' "$tmp/policy-needs-20/epoch-300/verdict.json" || fail "the verdict under a policy file does not record its hash"
run policy-needs-2 0 ./demo/challenger --policy "$tmp/policy-2.json"
grep -q '^would take the crown' "$tmp/policy-needs-2.out" || fail "policy-needs-2: $(cat "$tmp/policy-needs-2.out")"
rc=0; pipelines/miner-check.sh ./demo/challenger --teacher-stream "$tmp/teacher.dlt" --king ./demo/king --policy "$tmp/policy-2.json" \
  --epsilon 0.02 > /dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "--policy with --epsilon: exit status $rc, expected 2"

run king-itself 1 ./demo/king
grep -q '^would not take the crown' "$tmp/king-itself.out" || fail "king-itself: $(cat "$tmp/king-itself.out")"
well_formed "$tmp/king-itself/epoch-300/report.html"

cp -r demo/challenger "$tmp/quantized"
python3 - "$tmp/quantized/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_8bit": True}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
run quantized 1 "$tmp/quantized"
grep -q '^would not take the crown: pre-check QUANTIZED (config.json has a quantization_config)$' "$tmp/quantized.out" || fail "quantized: $(cat "$tmp/quantized.out")"
well_formed "$tmp/quantized/epoch-300/report.html"
grep -q '<code>QUANTIZED</code>' "$tmp/quantized/epoch-300/report.html" || fail "the quantized copy's report does not show the reason"

head -c 100000 "$tmp/teacher.dlt" > "$tmp/damaged.dlt"
rc=0; pipelines/miner-check.sh ./demo/challenger --teacher-stream "$tmp/damaged.dlt" --king ./demo/king --work "$tmp/damaged" > /dev/null 2> "$tmp/damaged.err" || rc=$?
[[ $rc == 3 ]] || { cat "$tmp/damaged.err" >&2; fail "a damaged stream: exit status $rc, expected 3"; }
echo "miner-check: damaged stream (exit 3): $(tail -n 1 "$tmp/damaged.err")" >&2
rc=0; pipelines/miner-check.sh ./demo/challenger --king ./demo/king > /dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "no --teacher-stream: exit status $rc, expected 2"
echo "miner-check: all checks passed"

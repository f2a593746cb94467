#!/usr/bin/env bash
# pipelines/epoch.sh --policy FILE on the demo checkpoints (docs/FORMATS.md "Judge policy"):
#   - a policy stating the demo's shape (8 prompts, 40 new tokens, vocabulary 512, epsilon 1%) gives the
#     same prompts, teacher stream, KL records and checks as the same run by flags, and the same verdict
#     and state apart from the one added field policy_sha256 (the policy is not the default);
#   - the epoch keeps the policy (epoch-N/policy.json) and reproduce.sh re-judges it byte for byte;
#   - the next epoch under another policy (epsilon 2%) is refused before any compute (exit 1, one line
#     naming both hashes); --policy together with --count is a usage error (exit 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "policy: FAIL: $*" >&2; exit 1; }
bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
export DISTIL_BIN="$bin"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }
sed "s|\"repo\": \"demo/|\"repo\": \"$root/demo/|" demo/commitments.jsonl > "$tmp/commitments.jsonl"
common=(--teacher demo/teacher --commitments "$tmp/commitments.jsonl" --block 200 --block-hash "$(hash 200)")
cat > "$tmp/policy.json" <<'JSON'
{"format": "distil-policy/1", "prompts": 8, "max_new_tokens": 40, "vocab_size": 512,
 "dethrone": {"rule": "epsilon", "epsilon": 0.01}}
JSON

pipelines/epoch.sh --work "$tmp/flags" "${common[@]}" --count 8 --max-new-tokens 40 --vocab-size 512 \
  --max-params 5300000000 demo/corpus.jsonl.zst > /dev/null 2> "$tmp/flags.err" || { cat "$tmp/flags.err" >&2; fail "the run by flags failed"; }
pipelines/epoch.sh --work "$tmp/policy" "${common[@]}" --policy "$tmp/policy.json" demo/corpus.jsonl.zst \
  > /dev/null 2> "$tmp/policy.err" || { cat "$tmp/policy.err" >&2; fail "the run by --policy failed"; }
a="$tmp/flags/epoch-200" b="$tmp/policy/epoch-200"
for f in manifests.jsonl checks.jsonl plan.jsonl prompts.jsonl teacher.dlt kl/1.jsonl kl/2.jsonl recheck.jsonl; do
  cmp -s "$a/$f" "$b/$f" || fail "$f differs between the run by flags and the run by --policy"
done
sha=$("$bin/dl-judge" policy --policy "$tmp/policy.json" | sed -n 's/^sha256 \([0-9a-f]*\).*/\1/p')
[[ ${#sha} == 64 ]] || fail "dl-judge policy printed no hash"
for f in verdict.json state.json; do
  grep -q "\"policy_sha256\" : \"$sha\"" "$b/$f" || fail "$f does not record the policy's hash"
  diff <(grep -v '"policy_sha256"' "$b/$f") "$a/$f" > /dev/null || fail "$f differs beyond policy_sha256"
done
cmp -s "$tmp/policy.json" "$b/policy.json" || fail "the epoch did not keep its policy"
echo "policy: epoch 200 by --policy: artifacts identical to the run by flags; verdict and state differ only by policy_sha256 ${sha:0:12}" >&2
pipelines/reproduce.sh --work "$tmp/policy" --block 200 2> "$tmp/repro.err" || { cat "$tmp/repro.err" >&2; fail "reproduce.sh failed"; }
echo "policy: reproduce.sh: $(tail -1 "$tmp/repro.err")" >&2

sed 's/"epsilon": 0.01/"epsilon": 0.02/' "$tmp/policy.json" > "$tmp/other.json"
rc=0
pipelines/epoch.sh --work "$tmp/policy" --teacher demo/teacher --commitments "$tmp/commitments.jsonl" --block 260 \
  --block-hash "$(hash 260)" --policy "$tmp/other.json" demo/corpus.jsonl.zst > /dev/null 2> "$tmp/other.err" || rc=$?
[[ $rc == 1 ]] || { cat "$tmp/other.err" >&2; fail "another policy: exit $rc, expected 1"; }
grep -q "the state was written under policy ${sha:0:12} and this judge runs policy" "$tmp/other.err" || { cat "$tmp/other.err" >&2; fail "no clear refusal"; }
[[ ! -e "$tmp/policy/epoch-260/prompts.jsonl" ]] || fail "compute was spent under the refused policy"
echo "policy: epoch 260 under another policy refused: $(grep -m1 'state was written' "$tmp/other.err")" >&2
rc=0
pipelines/epoch.sh --work "$tmp/x" "${common[@]}" --policy "$tmp/policy.json" --count 8 demo/corpus.jsonl.zst 2> "$tmp/usage.err" || rc=$?
[[ $rc == 2 ]] || fail "--policy with --count: exit $rc, expected 2"
echo "policy: --policy with --count: usage error ($(cat "$tmp/usage.err"))" >&2
echo "policy: ok" >&2

#!/usr/bin/env bash
# The demo: three epochs on the embedded checkpoints in demo/ (a tiny teacher, a king and a challenger
# distilled from it, one tokenizer, a small corpus), exactly as a validator runs them.
#
#   pipelines/demo.sh [WORKDIR] [--metrics FILE]   (default: .demo-work in the repository, started afresh;
#                                                   --metrics: each epoch's Prometheus metrics into FILE)
#
#   epoch at block 120: only the king has committed: it is scored and crowned.
#   epoch at block 200: the challenger has committed: king and challenger are scored on the same
#                       prompts; the challenger beats the king by more than 1% and takes the weight.
#   epoch at block 260: nothing new: no teacher or student compute is spent; the king keeps the weight.
# Then the block-200 epoch is re-scored from its cached artifacts and shown to be byte-identical.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="" metrics=()
while (($#)); do
  case "$1" in
    --metrics) metrics=(--metrics "${2:?demo: --metrics needs a file}"); shift 2 ;;
    *) work=$1; shift ;;
  esac
done
[[ -n "$work" ]] || work="$root/.demo-work"
rm -rf "$work"
mkdir -p "$work"
demo="$root/demo"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }
common=(--work "$work" --teacher "$demo/teacher" --count 8 --max-new-tokens 40 --vocab-size 512
        --max-params 5300000000 "${metrics[@]}")

# demo/commitments.jsonl is a template: as written, "demo/king" is a Hub repo id (a bare owner/name is
# never read from disk), so every user of it names the demo's folders by their absolute paths.
sed "s|\"repo\": \"demo/|\"repo\": \"$demo/|" "$demo/commitments.jsonl" > "$work/commitments-200.jsonl"
[[ $(grep -c "\"repo\": \"$demo/" "$work/commitments-200.jsonl") == 2 ]] \
  || { echo "demo: $demo/commitments.jsonl does not name demo/king and demo/challenger" >&2; exit 1; }
head -n 1 "$work/commitments-200.jsonl" > "$work/commitments-120.jsonl"

echo "=== epoch at block 120: the first model commits ===" >&2
"$root/pipelines/epoch.sh" "${common[@]}" --commitments "$work/commitments-120.jsonl" \
  --block 120 --block-hash "$(hash 120)" "$demo/corpus.jsonl.zst" > /dev/null
echo "=== epoch at block 200: a challenger commits ===" >&2
"$root/pipelines/epoch.sh" "${common[@]}" --commitments "$work/commitments-200.jsonl" \
  --block 200 --block-hash "$(hash 200)" "$demo/corpus.jsonl.zst" > "$work/verdict-200.json"
echo "=== epoch at block 260: nothing new ===" >&2
"$root/pipelines/epoch.sh" "${common[@]}" --commitments "$work/commitments-200.jsonl" \
  --block 260 --block-hash "$(hash 260)" "$demo/corpus.jsonl.zst" > /dev/null
echo "=== reproduce the block-200 epoch from its cached artifacts ===" >&2
"$root/pipelines/reproduce.sh" --work "$work" --block 200
echo "=== each epoch's report: $work/epoch-{120,200,260}/report.html (open $work/epoch-200/report.html in a browser) ===" >&2
echo "=== verdict of the block-200 epoch ($work/epoch-200/verdict.json) ===" >&2
cat "$work/verdict-200.json"

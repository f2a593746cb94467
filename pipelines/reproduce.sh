#!/usr/bin/env bash
# Re-scores a past epoch from its cached artifacts and shows the verdict is byte-identical.
#
#   pipelines/reproduce.sh --work DIR --block N [--threads N] [--bin DIR]
#
# Uses DIR/epoch-N/{plan.jsonl,teacher.dlt,checks.jsonl,recheck.jsonl,state-before.json}: runs dl-kl
# again on every planned model (same thread count as the epoch for byte-identical KL), then dl-judge
# against the state as it was before the epoch and the cached re-check (the Hub is not asked again: the
# verdict is reproduced from what the epoch saw), and compares the new verdict with
# DIR/epoch-N/verdict.json byte for byte.
# The judge is the epoch's own stage (pipelines/lib/epoch-stages.sh), run into a scratch folder; an
# epoch made by pipelines/slurm/ or pipelines/parallel/ has the same artifacts and reproduces the same way.
# Exit 0 when identical, 1 when they differ (the diff is printed) or an artifact is missing.
set -euo pipefail
EPOCH_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$EPOCH_ROOT/pipelines/lib/epoch-stages.sh"
work="" block="" threads=${SLURM_CPUS_PER_TASK:-$(nproc)} bin="${DISTIL_BIN:-}" epsilon=0.01
while (($#)); do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --block) block=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --epsilon) epsilon=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) epoch_header_help "$0"; exit 0 ;;
    *) echo "reproduce: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$work" && -n "$block" ]] || { echo "reproduce: --work and --block are required (see --help)" >&2; exit 2; }
[[ -n "$bin" ]] || bin="$(cd "$EPOCH_ROOT" && swift build --show-bin-path)"
e="$work/epoch-$block"
for f in checks.jsonl plan.jsonl state-before.json verdict.json; do
  [[ -e "$e/$f" ]] || { echo "reproduce: $e/$f is missing: epoch $block did not complete" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/kl"
if [[ -s "$e/plan.jsonl" ]]; then
  [[ -e "$e/teacher.dlt" ]] || { echo "reproduce: $e/teacher.dlt is missing" >&2; exit 1; }
  echo "reproduce: re-scoring the planned models against the cached teacher stream" >&2
  "$bin/dl-kl" --checks "$e/plan.jsonl" --out-dir "$tmp/kl" --threads "$threads" "$e/teacher.dlt" >/dev/null
fi
epoch_judge_into "$e" "$tmp"
if cmp -s "$tmp/verdict.json" "$e/verdict.json"; then
  echo "reproduce: epoch $block verdict is byte-identical ($(sha256sum < "$e/verdict.json" | cut -c1-16))" >&2
else
  echo "reproduce: epoch $block verdict DIFFERS from the cached one:" >&2
  diff <(tr ',' '\n' < "$e/verdict.json") <(tr ',' '\n' < "$tmp/verdict.json") >&2 || true
  exit 1
fi

#!/usr/bin/env bash
# One validator epoch, commitments in, verdict out, over a working directory of cached artifacts.
#
#   pipelines/epoch.sh --work DIR --commitments FILE --teacher DIR --block N --block-hash HEX CORPUS...
#
# Every stage writes one artifact in DIR/epoch-N/, named by what produced it, and appears only when
# complete (written to NAME.part, renamed). A stage whose artifact exists is skipped, so a crashed or
# killed epoch resumes where it stopped, and a past epoch can be re-scored from its artifacts
# (pipelines/reproduce.sh). A lock on DIR/.lock keeps two runs (cron) from overlapping.
#
#   DIR/state.json              the judge's state across epochs (king, every model's score)
#   DIR/registry.json           dl-check's owners of weight identities and hotkeys across epochs
#   DIR/epoch-N/manifests.jsonl dl-fetch      what was fetched (files, SHA-256)
#   DIR/epoch-N/checks.jsonl    dl-check      one verdict per model; only ok ones go on
#   DIR/epoch-N/plan.jsonl      dl-judge plan the king + new challengers (empty: no compute this epoch)
#   DIR/epoch-N/prompts.jsonl   dl-prompts    prompts drawn from the corpus by the block hash
#   DIR/epoch-N/teacher.dlt     dl-teacher    continuations + full-vocabulary teacher rows
#   DIR/epoch-N/kl/UID.jsonl    dl-kl         per-prompt KL of each scored model
#   DIR/epoch-N/recheck.jsonl   dl-check --recheck-only   the scored models asked again, just before the
#                                             judge, whether each is still public at its commit with the same
#                                             files (a local directory is re-hashed): OK, REMOVED, CHANGED, RETRY
#   DIR/epoch-N/state-before.json             the state this epoch was judged against
#   DIR/epoch-N/verdict.json    dl-judge      the verdict: winner and weights per uid
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --work DIR               working directory (artifacts, state, lock)            [required]
  --commitments FILE       commitment records (JSON lines)                        [required]
  --teacher DIR            teacher checkpoint directory                           [required]
  --block N --block-hash HEX   the epoch's block and its hash (seed of the prompts) [required]
  --count N                prompts per epoch (40)
  --max-new-tokens N       teacher continuation length (512)
  --vocab-size N           vocabulary every model must have (248320)
  --max-params N           parameter limit (5300000000)
  --epsilon X              relative margin a challenger must beat the king by (0.01)
  --threads N              compute threads (all cores)
  --bin DIR                where the dl-* tools are (default: swift build --show-bin-path)
USAGE
}

work="" commitments="" teacher="" block="" block_hash="" count=40 max_new=512 vocab=248320
max_params=5300000000 epsilon=0.01 threads=$(nproc) bin="${DISTIL_BIN:-}" corpus=()
while (($#)); do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --commitments) commitments=$2; shift 2 ;;
    --teacher) teacher=$2; shift 2 ;;
    --block) block=$2; shift 2 ;;
    --block-hash) block_hash=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --max-new-tokens) max_new=$2; shift 2 ;;
    --vocab-size) vocab=$2; shift 2 ;;
    --max-params) max_params=$2; shift 2 ;;
    --epsilon) epsilon=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "epoch: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) corpus+=("$1"); shift ;;
  esac
done
for v in work commitments teacher block block_hash; do
  [[ -n "${!v}" ]] || { echo "epoch: --${v//_/-} is required (see --help)" >&2; exit 2; }
done
((${#corpus[@]})) || { echo "epoch: name at least one corpus shard or directory (see --help)" >&2; exit 2; }
[[ "$block" =~ ^[0-9]+$ ]] || { echo "epoch: --block must be a block number, got '$block'" >&2; exit 2; }
[[ -f "$commitments" ]] || { echo "epoch: $commitments: no such file" >&2; exit 1; }
[[ -d "$teacher" ]] || { echo "epoch: $teacher: no such directory" >&2; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
[[ -n "$bin" ]] || bin="$(cd "$root" && swift build --show-bin-path)"
for t in dl-fetch dl-check dl-prompts dl-teacher dl-kl dl-judge; do
  [[ -x "$bin/$t" ]] || { echo "epoch: $bin/$t is missing: run scripts/setup.sh (or pass --bin)" >&2; exit 1; }
done

mkdir -p "$work"
exec 9>"$work/.lock"
flock -n 9 || { echo "epoch: another epoch is running in $work (lock $work/.lock); not starting" >&2; exit 1; }

e="$work/epoch-$block"
mkdir -p "$e/kl"
log() { echo "epoch $block: $*" >&2; }
trap 'rm -f "$e"/*.part "$e"/kl/*.part' EXIT

# stage NAME ARTIFACT COMMAND...: runs COMMAND with stdout into ARTIFACT.part, renamed when it succeeds.
stage() {
  local name=$1 out=$2; shift 2
  if [[ -e "$out" ]]; then log "$name: $(basename "$out") is cached, skipping"; return 0; fi
  log "$name"
  "$@" > "$out.part"
  mv "$out.part" "$out"
}

stage fetch "$e/manifests.jsonl" "$bin/dl-fetch" "$commitments"
stage check "$e/checks.jsonl" "$bin/dl-check" --vocab-size "$vocab" --max-params "$max_params" \
  --teacher-tokenizer "$teacher" --registry "$work/registry.json" "$e/manifests.jsonl"
[[ -e "$e/state-before.json" ]] || { if [[ -e "$work/state.json" ]]; then cp "$work/state.json" "$e/state-before.json.part"; else echo '{}' > "$e/state-before.json.part"; fi; mv "$e/state-before.json.part" "$e/state-before.json"; }
stage plan "$e/plan.jsonl" "$bin/dl-judge" plan --checks "$e/checks.jsonl" --state "$e/state-before.json"

if [[ -s "$e/plan.jsonl" ]]; then
  stage prompts "$e/prompts.jsonl" "$bin/dl-prompts" sample --block "$block" --block-hash "$block_hash" \
    --count "$count" "${corpus[@]}"
  stage teacher "$e/teacher.dlt" "$bin/dl-teacher" --model "$teacher" --max-new-tokens "$max_new" \
    --threads "$threads" --block "$block" --block-hash "$block_hash" "$e/prompts.jsonl"
  stage kl "$e/kl.done" "$bin/dl-kl" --checks "$e/plan.jsonl" --out-dir "$e/kl" --threads "$threads" "$e/teacher.dlt"
  # Scoring took hours: before the weights are set, every scored model must still be what was checked.
  stage recheck "$e/recheck.jsonl" "$bin/dl-check" --recheck-only --only "$e/plan.jsonl" "$e/manifests.jsonl"
else
  log "no new challenger: no teacher or student compute this epoch"
fi

# The judge reads the state as it was before this epoch, so re-running this stage gives the same verdict.
if [[ ! -e "$e/verdict.json" ]]; then
  cp "$e/state-before.json" "$e/state.json.part"
  shopt -s nullglob
  kls=("$e"/kl/*.jsonl)
  recheck=()
  [[ -e "$e/recheck.jsonl" ]] && recheck=(--recheck "$e/recheck.jsonl")
  log "judge"
  "$bin/dl-judge" --checks "$e/checks.jsonl" "${recheck[@]}" --state "$e/state.json.part" --block "$block" --epsilon "$epsilon" \
    --out "$e/verdict.json.part" "${kls[@]}" </dev/null
  mv "$e/state.json.part" "$e/state.json"
  mv "$e/verdict.json.part" "$e/verdict.json"
fi
cp "$e/state.json" "$work/state.json.part" 2>/dev/null && mv "$work/state.json.part" "$work/state.json" || true
cat "$e/verdict.json"

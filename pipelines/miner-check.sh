#!/usr/bin/env bash
# A miner's check in one command: would MODEL take the crown from KING on this teacher stream?
#
#   pipelines/miner-check.sh MODEL --teacher-stream FILE --king MODEL [options]
#
# MODEL and KING are Hub repo ids (owner/name, always the Hub even where such a folder exists here) or
# local directories named by an absolute, ./ or ../ path or a file:// URL. The teacher stream is an epoch's
# teacher.dlt (a validator can publish it: README, "A miner's check"), so the 35B teacher need not run.
# Steps, as a validator's epoch runs them: fetch both (dl-fetch) -> every pre-check on each (dl-check,
# with the teacher's tokenizer and the stream's vocabulary) -> KL of both on the stream (dl-kl) -> the
# judge with KING as the reigning king under the current rules (dl-judge) -> one line:
#   "would take the crown, by X% below the king's mean KL (...), p = P"  or  "would not take the crown, ..."
# under the validator's judge policy (--policy FILE, as `pipelines/epoch.sh --policy` takes it; default: the
# README's rules),
# and the epoch's HTML report (dl-judge report).
#
# Exit status: 0 pass (would take the crown), 1 fail (a pre-check rejects MODEL, or the judge keeps the
# king), 2 usage, 3 error (no decision: a tool failed, the king fails its own pre-check, a fetch was
# transient).
#
# Not checked here: COPY against other miners' earlier commitments (that needs the validator's
# registry; pass --registry FILE if you have one). A copy of the king is caught by the judge (COPY_OF).
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --teacher-stream FILE    the epoch's teacher stream (teacher.dlt)                    [required]
  --king MODEL             the reigning king                                            [required]
  --revision REV           MODEL's revision (branch, tag or commit)
  --king-revision REV      the king's revision
  --teacher-tokenizer P    the teacher's tokenizer.json or its directory (default: the teacher named in
                           the stream's header: a directory, or its tokenizer fetched from the Hub)
  --vocab-size N           vocabulary every model must have (default: the stream's)
  --max-params N           parameter limit (5300000000)
  --epsilon X              relative margin a challenger must beat the king by (0.01; the default policy's rule)
  --policy FILE            the validator's judge policy (docs/FORMATS.md, "Judge policy"): its dethrone rule
                           and its parameter limit (unless --max-params); not with --epsilon
  --registry FILE          the validator's registry.json (weight identities across epochs), read only
  --work DIR               where the artifacts go (default: a new temporary folder, kept)
  --report FILE            the HTML report (default: WORK/epoch-B/report.html)
  --threads N              compute threads (all cores)
  --bin DIR                where the dl-* tools are (default: swift build --show-bin-path)
USAGE
}

model="" stream="" king="" revision="" king_revision="" tokenizer="" vocab="" max_params=5300000000 epsilon=0.01
policy="" epsilon_given="" max_params_given="" registry="" work="" report="" threads=$(nproc) bin="${DISTIL_BIN:-}"
while (($#)); do
  case "$1" in
    --teacher-stream) stream=${2-}; shift 2 || { usage >&2; exit 2; } ;;
    --king) king=${2-}; shift 2 || exit 2 ;;
    --revision) revision=${2-}; shift 2 || exit 2 ;;
    --king-revision) king_revision=${2-}; shift 2 || exit 2 ;;
    --teacher-tokenizer) tokenizer=${2-}; shift 2 || exit 2 ;;
    --vocab-size) vocab=${2-}; shift 2 || exit 2 ;;
    --max-params) max_params=${2-}; max_params_given=1; shift 2 || exit 2 ;;
    --epsilon) epsilon=${2-}; epsilon_given=1; shift 2 || exit 2 ;;
    --policy) policy=${2-}; shift 2 || exit 2 ;;
    --registry) registry=${2-}; shift 2 || exit 2 ;;
    --work) work=${2-}; shift 2 || exit 2 ;;
    --report) report=${2-}; shift 2 || exit 2 ;;
    --threads) threads=${2-}; shift 2 || exit 2 ;;
    --bin) bin=${2-}; shift 2 || exit 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "miner-check: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z "$model" ]] || { echo "miner-check: one MODEL only (got '$model' and '$1')" >&2; exit 2; }; model=$1; shift ;;
  esac
done
[[ -n "$model" ]] || { echo "miner-check: name the MODEL to check (see --help)" >&2; exit 2; }
[[ -n "$stream" ]] || { echo "miner-check: --teacher-stream is required (see --help)" >&2; exit 2; }
[[ -n "$king" ]] || { echo "miner-check: --king is required (see --help)" >&2; exit 2; }
[[ -z "$policy" || -z "$epsilon_given" ]] || { echo "miner-check: give --policy or --epsilon, not both (a policy states its own rule)" >&2; exit 2; }
[[ -f "$stream" ]] || { echo "miner-check: $stream: no such file" >&2; exit 3; }

error() { echo "miner-check: $*" >&2; exit 3; }
log() { echo "miner-check: $*" >&2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
[[ -n "$bin" ]] || bin="$(cd "$root" && swift build --show-bin-path)"
for t in dl-fetch dl-check dl-teacher dl-kl dl-judge; do
  [[ -x "$bin/$t" ]] || error "$bin/$t is missing: run scripts/setup.sh (or pass --bin)"
done
# The judge's rule: the policy file's (and its parameter limit), or the default policy's epsilon.
rule=(--epsilon "$epsilon")
if [[ -n "$policy" ]]; then
  fields=$("$bin/dl-judge" policy --policy "$policy" --fields 2>&1) || error "${fields:-cannot read the policy $policy}"
  [[ -n "$max_params_given" ]] || max_params=$(sed -n 's/^max_params=//p' <<<"$fields")
  rule=(--policy "$policy")
fi
[[ -n "$work" ]] || work=$(mktemp -d "${TMPDIR:-/tmp}/miner-check.XXXXXX")
mkdir -p "$work" || error "cannot create $work"

# The stream's header: its epoch block, vocabulary and teacher (canonical JSON, one line).
header=$("$bin/dl-teacher" inspect --top 0 "$stream" 2>"$work/inspect.err" | head -n 1)
[[ "$header" == '{"format":"distil-teacher/'* ]] || error "cannot read the teacher stream $stream: $(head -n 1 "$work/inspect.err")"
block=$(sed -n 's/.*"teacher":{[^}]*"block":\([0-9]*\).*/\1/p' <<<"$header")
[[ -n "$vocab" ]] || vocab=$(sed -n 's/.*"vocab_size":\([0-9]*\).*/\1/p' <<<"$header")
teacher=$(sed -n 's/.*"teacher":{[^}]*"repo":"\([^"\\]*\)".*/\1/p' <<<"$header")
[[ -n "$block" ]] || block=0
e="$work/epoch-$block"
mkdir -p "$e/kl"
log "teacher stream: block $block, vocabulary $vocab, teacher ${teacher:-?}"

# The teacher's tokenizer: given, the teacher's directory, or its tokenizer files from the Hub.
if [[ -z "$tokenizer" ]]; then
  [[ -n "$teacher" ]] || error "the stream names no teacher: pass --teacher-tokenizer"
  if [[ -d "$teacher" ]]; then
    tokenizer=$teacher
  else
    log "fetching the tokenizer of $teacher"
    "$bin/dl-fetch" --model "$teacher" --files 'tokenizer.json,tokenizer_config.json' > "$work/teacher-manifest.jsonl" \
      || error "could not fetch the tokenizer of $teacher: pass --teacher-tokenizer"
    tokenizer=$(sed -n 's/.*"path":"\([^"\\]*\)".*/\1/p' "$work/teacher-manifest.jsonl")
    [[ -n "$tokenizer" ]] || error "could not fetch the tokenizer of $teacher: pass --teacher-tokenizer"
  fi
fi

# Commitments as a validator would hold them: the king committed first (uid 1), MODEL after (uid 2).
json_string() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
commit_line() {
  printf '{"uid": %d, "hotkey": "%s", "block": %d, "repo": %s%s}\n' "$1" "$2" "$3" "$(json_string "$4")" \
    "${5:+, \"revision\": $(json_string "$5")}"
}
{ commit_line 1 miner-check-king 1 "$king" "$king_revision"; commit_line 2 miner-check-model 2 "$model" "$revision"; } > "$work/commitments.jsonl"

log "fetch"
"$bin/dl-fetch" "$work/commitments.jsonl" > "$e/manifests.jsonl" || error "dl-fetch failed"
# Each model is pre-checked on its own (a copy of the king is the judge's COPY_OF, not a COPY here).
log "pre-checks"
check=("$bin/dl-check" --vocab-size "$vocab" --max-params "$max_params" --teacher-tokenizer "$tokenizer")
if [[ -n "$registry" ]]; then cp "$registry" "$work/registry.json" || error "cannot read $registry"; check+=(--registry "$work/registry.json"); fi
: > "$e/checks.jsonl"
for n in 1 2; do
  sed -n "${n}p" "$e/manifests.jsonl" | "${check[@]}" >> "$e/checks.jsonl" || error "dl-check failed"
done
field() { sed -n "${1}p" "$e/checks.jsonl" | sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p"; }
king_reason=$(field 1 reason) model_reason=$(field 2 reason)
[[ "$king_reason" == OK ]] || error "the king fails its own pre-check ($king_reason: $(field 1 message)): nothing to compare with"

# Crown the king: an epoch in which only it is scored (the lowest mean wins outright).
log "KL of the king"
sed -n 1p "$e/checks.jsonl" > "$work/plan-king.jsonl"
"$bin/dl-kl" --checks "$work/plan-king.jsonl" --out-dir "$e/kl" --threads "$threads" "$stream" > /dev/null || error "dl-kl failed on the king"
echo '{}' > "$e/state-before-king.json"
"$bin/dl-judge" -q --checks "$work/plan-king.jsonl" --state "$e/state-before-king.json" "${rule[@]}" --out "$work/verdict-king.json" "$e/kl/1.jsonl" \
  || error "dl-judge failed on the king alone"
cp "$e/state-before-king.json" "$e/state-before.json"

kls=("$e/kl/1.jsonl")
if [[ "$model_reason" == OK ]]; then
  log "KL of $model"
  sed -n 2p "$e/checks.jsonl" > "$work/plan-model.jsonl"
  "$bin/dl-kl" --checks "$work/plan-model.jsonl" --out-dir "$e/kl" --threads "$threads" "$stream" > /dev/null || error "dl-kl failed on $model"
  kls+=("$e/kl/2.jsonl")
fi
cp "$e/state-before.json" "$e/state.json"
"$bin/dl-judge" -q --checks "$e/checks.jsonl" --state "$e/state.json" "${rule[@]}" --out "$e/verdict.json" "${kls[@]}" \
  || error "dl-judge failed"
[[ -n "$report" ]] || report="$e/report.html"
"$bin/dl-judge" report --epoch "$e" --out "$report" || error "dl-judge report failed"

if [[ "$model_reason" != OK ]]; then
  [[ "$model_reason" == RETRY ]] && error "$model could not be checked now (RETRY: $(field 2 message)); try again"
  echo "would not take the crown: pre-check $model_reason ($(field 2 message))"
  log "report: $report"
  exit 1
fi
line=$("$bin/dl-judge" decide --verdict "$e/verdict.json" --uid 2) || error "dl-judge decide failed"
echo "$line"
log "report: $report"
[[ "$line" == "would take the crown"* ]] && exit 0
exit 1

#!/usr/bin/env bash
# One validator epoch end to end, for cron: block -> commitments -> epoch.sh -> set-weights.
#
#   pipelines/validator.sh --work DIR --teacher DIR --wallet-name W --wallet-hotkey H CORPUS... [-- EPOCH.SH OPTIONS]
#
# Stages, one log line each on stderr ("validator <UTC time> block N: STAGE: ..."):
#   block        a finalized block and its hash (distil-chain block --lag): the epoch's block and prompt seed.
#                Skipped while the last completed epoch is less than --interval blocks old (exit 0).
#   commitments  distil-chain commitments -> DIR/epoch-N/commitments.jsonl (rejects beside it), the
#                first commitment of every hotkey kept in DIR/commitments-ledger.jsonl.
#   epoch        pipelines/epoch.sh over DIR (its own lock, cached stages) -> DIR/epoch-N/verdict.json.
#   set-weights  distil-chain set-weights, only after a successful epoch, once per epoch: its JSON line
#                is DIR/epoch-N/weights.json, and an epoch with that file never sets weights again.
#   prune        with --prune-min-free / --keep-epochs: dl-fetch prune (the Hub cache and old epoch folders).
#
# A run that fails keeps DIR/validator-pending.json (the epoch's block and hash), so the next cron run
# resumes the same epoch (same block, same prompts, cached stages) instead of starting a new one; an
# epoch whose weights are set (or whose verdict set-weights refuses) is done (DIR/validator-last.json).
#
# Exit status (alert on anything but 0):
#    0  the epoch completed and its weights were set (or --dry-run planned them), or it is not time yet
#    2  usage
#    3  another validator run holds DIR/.validator.lock
#   10  the chain could not be read (block or commitments)
#   11  epoch.sh failed (the next run resumes it)
#   12  set-weights refused the verdict (failed epoch, too old, unknown uid, bad sum): nothing was set
#   13  the chain rejected the weights (e.g. rate limit); the next run tries again
#   14  the chain could not be reached to set the weights; the next run tries again
#   15  the weights were set but pruning failed
#
# --metrics FILE: at exit (after the lock is taken), the run's figures in the Prometheus text format,
# written atomically for node_exporter's textfile collector (dl-judge metrics; docs/FORMATS.md "Metrics"):
# this exit status, each stage's outcome, and the epoch's figures when the epoch stage ran (else the
# file's last epoch figures stand).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --work DIR               working directory (epochs, state, ledger, locks)                 [required]
  --teacher DIR            teacher checkpoint directory                                      [required]
  --wallet-name W --wallet-hotkey H   the validator's wallet (bittensor wallet files)        [required]
  --wallet-path DIR        wallet folder (~/.bittensor/wallets)
  --netuid N               subnet (97)
  --network NET            finney, test, local or a ws(s):// endpoint (finney)
  --lag N                  blocks behind the finalized head for the epoch block (3)
  --interval N             blocks between epochs (360); a run before that exits 0 doing nothing
  --max-age-blocks N       set-weights refuses a verdict older than this (1080)
  --dry-run                set-weights plans through the SDK and submits nothing
  --prune-min-free SIZE    after the weights: dl-fetch prune down to this free-space floor (e.g. 500G)
  --keep-epochs K          after the weights: remove all but the last K epoch folders
  --chain CMD              the chain adapter (pipelines/chain/distil-chain; env DISTIL_CHAIN)
  --bin DIR                where the dl-* tools are (passed to epoch.sh)
  --metrics FILE           write the run's Prometheus metrics to FILE at exit (e.g. .../textfile/distil.prom)
  -- ARGS                  passed to pipelines/epoch.sh as they are (e.g. --count 40 --threads 16)
USAGE
}

work="" teacher="" wallet_name="" wallet_hotkey="" wallet_path="" netuid=97 network="${DISTIL_NETWORK:-finney}"
lag=3 interval=360 max_age=1080 dry_run=0 prune_min_free="" keep_epochs="" bin="${DISTIL_BIN:-}" metrics=""
root="$(cd "$(dirname "$0")/.." && pwd)"
chain="${DISTIL_CHAIN:-$root/pipelines/chain/distil-chain}"
corpus=() epoch_args=()
while (($#)); do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --teacher) teacher=$2; shift 2 ;;
    --wallet-name) wallet_name=$2; shift 2 ;;
    --wallet-hotkey) wallet_hotkey=$2; shift 2 ;;
    --wallet-path) wallet_path=$2; shift 2 ;;
    --netuid) netuid=$2; shift 2 ;;
    --network) network=$2; shift 2 ;;
    --lag) lag=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --max-age-blocks) max_age=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --prune-min-free) prune_min_free=$2; shift 2 ;;
    --keep-epochs) keep_epochs=$2; shift 2 ;;
    --chain) chain=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --metrics) metrics=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; epoch_args=("$@"); break ;;
    -*) echo "validator: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) corpus+=("$1"); shift ;;
  esac
done
for v in work teacher wallet_name wallet_hotkey; do
  [[ -n "${!v}" ]] || { echo "validator: --${v//_/-} is required (see --help)" >&2; exit 2; }
done
((${#corpus[@]})) || { echo "validator: name at least one corpus shard or directory (see --help)" >&2; exit 2; }
for v in netuid lag interval max_age; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "validator: --${v//_/-} must be a non-negative integer, got '${!v}'" >&2; exit 2; }
done
[[ -z "$keep_epochs" || "$keep_epochs" =~ ^[1-9][0-9]*$ ]] || { echo "validator: --keep-epochs must be >= 1" >&2; exit 2; }

mkdir -p "$work"
work="$(cd "$work" && pwd)"
teacher="$(cd "$teacher" && pwd)"
abs=()
for c in "${corpus[@]}"; do abs+=("$(cd "$(dirname "$c")" && pwd)/$(basename "$c")"); done
corpus=("${abs[@]}")
exec 8>"$work/.validator.lock"
flock -n 8 || { echo "validator: another validator run holds $work/.validator.lock; not starting" >&2; exit 3; }

block="-"
log() { echo "validator $(date -u +%Y-%m-%dT%H:%M:%SZ) block $block: $*" >&2; }
# json FILE KEY: a top-level number or string of a one-line JSON record.
json() { python3 -c 'import json,sys; v=json.loads(open(sys.argv[1]).readline())[sys.argv[2]]; print(v)' "$1" "$2"; }
net=(--network "$network")
# Metrics (--metrics FILE): every stage ends in stage_done NAME STATUS; the file is written once, at exit.
stage_args=() epoch_rc=""
stage_done() { stage_args+=(--validator-stage "$1=$2"); }
write_metrics() {
  local rc=$? args
  if [[ -n "$metrics" ]]; then
    [[ -n "$bin" ]] || bin="$(cd "$root" && swift build --show-bin-path)"
    args=(--validator-exit-status "$rc" "${stage_args[@]}")
    [[ -n "$epoch_rc" ]] && args+=(--epoch "$e" --exit-status "$epoch_rc")
    "$bin/dl-judge" metrics "${args[@]}" --out "$metrics" || log "could not write the metrics to $metrics"
  fi
  exit "$rc"
}
trap write_metrics EXIT

# Runs in DIR (the working directory). A committed owner/name is a Hub repo id wherever this runs (dl-fetch
# reads a local model only from an absolute, ./ or ../ path or a file:// URL, none of which the chain
# adapter accepts), so a miner committing "epoch-200/kl" cannot make it read a folder of DIR.
cd "$work"

# --- block -------------------------------------------------------------------------------------
pending="$work/validator-pending.json"
if [[ -s "$pending" ]]; then
  block=$(json "$pending" block); hash=$(json "$pending" block_hash)
  log "block: resuming the unfinished epoch (hash ${hash:0:16}…)"
else
  if ! "$chain" "${net[@]}" block --lag "$lag" -o "$work/block.json"; then
    log "block: the chain could not be read"; stage_done block failed; exit 10
  fi
  b=$(json "$work/block.json" block)
  if [[ -s "$work/validator-last.json" ]]; then
    last=$(json "$work/validator-last.json" block)
    if ((b - last < interval)); then
      rm -f "$work/block.json"   # (an answer only; a due run moves it to validator-pending.json)
      block=$b; log "block: last epoch at block $last, next at $((last + interval)): nothing to do"
      stage_done block skipped; exit 0
    fi
  fi
  block=$b; hash=$(json "$work/block.json" block_hash)
  mv "$work/block.json" "$pending"
  log "block: new epoch (hash ${hash:0:16}…)"
fi
stage_done block ok
e="$work/epoch-$block"
mkdir -p "$e"

# --- commitments -------------------------------------------------------------------------------
if [[ -e "$e/commitments.jsonl" ]]; then
  log "commitments: cached ($(wc -l < "$e/commitments.jsonl") records)"
else
  if ! "$chain" "${net[@]}" commitments --netuid "$netuid" --ledger "$work/commitments-ledger.jsonl" \
      --rejects "$e/commitments-rejects.jsonl" -o "$e/commitments.jsonl"; then
    log "commitments: the chain could not be read"; stage_done commitments failed; exit 10
  fi
  log "commitments: $(wc -l < "$e/commitments.jsonl") records, $(wc -l < "$e/commitments-rejects.jsonl") rejected"
fi
stage_done commitments ok

# --- epoch -------------------------------------------------------------------------------------
binarg=()
[[ -n "$bin" ]] && binarg=(--bin "$bin")
log "epoch: pipelines/epoch.sh"
epoch_rc=0
"$root/pipelines/epoch.sh" --work "$work" --commitments "$e/commitments.jsonl" --teacher "$teacher" \
  --block "$block" --block-hash "$hash" "${binarg[@]}" "${epoch_args[@]}" "${corpus[@]}" > /dev/null || epoch_rc=$?
if ((epoch_rc)); then
  log "epoch: FAILED; no weights are set; the next run resumes this epoch"; stage_done epoch failed; exit 11
fi
[[ -s "$e/verdict.json" ]] || { log "epoch: no verdict in $e"; stage_done epoch failed; exit 11; }
log "epoch: verdict $(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("winner", v["winner"], "-", v["reason"])' "$e/verdict.json")"
stage_done epoch ok

# --- set-weights -------------------------------------------------------------------------------
done_epoch() { mv "$pending" "$work/validator-last.json"; }
if [[ -s "$e/weights.json" ]]; then
  log "set-weights: already done for this epoch ($e/weights.json)"
else
  sw=(set-weights --verdict "$e/verdict.json" --netuid "$netuid" --wallet-name "$wallet_name"
      --wallet-hotkey "$wallet_hotkey" --max-age-blocks "$max_age" -o "$e/weights.json.part")
  [[ -n "$wallet_path" ]] && sw+=(--wallet-path "$wallet_path")
  ((dry_run)) && sw+=(--dry-run)
  rc=0
  "$chain" "${net[@]}" "${sw[@]}" || rc=$?
  # Only a success becomes weights.json (the epoch's "set" mark); a failure's line is kept beside it.
  [[ -e "$e/weights.json.part" ]] && { if ((rc == 0)); then mv "$e/weights.json.part" "$e/weights.json"; else mv "$e/weights.json.part" "$e/set-weights-failed.json"; fi; }
  case $rc in
    0) [[ -s "$e/weights.json" ]] || { log "set-weights: exit 0 without a record"; stage_done set-weights failed; exit 14; } ;;
    3) log "set-weights: the verdict was refused; nothing set; this epoch is closed"; done_epoch; stage_done set-weights refused; exit 12 ;;
    4) log "set-weights: the chain rejected the weights; the next run tries again"; stage_done set-weights failed; exit 13 ;;
    5) log "set-weights: the chain could not be reached; the next run tries again"; stage_done set-weights failed; exit 14 ;;
    *) log "set-weights: failed (exit $rc); the next run tries again"; stage_done set-weights failed; exit 14 ;;
  esac
  log "set-weights: $(cat "$e/weights.json")"
fi
done_epoch
stage_done set-weights ok

# --- prune -------------------------------------------------------------------------------------
if [[ -n "$prune_min_free" || -n "$keep_epochs" ]]; then
  [[ -n "$bin" ]] || bin="$(cd "$root" && swift build --show-bin-path)"
  pr=(prune --state "$work/state.json" --commitments "$e/commitments.jsonl" --keep "$teacher" -o "$e/prune.jsonl")
  [[ -n "$prune_min_free" ]] && pr+=(--min-free "$prune_min_free")
  pr+=(--work "$work")
  [[ -n "$keep_epochs" ]] && pr+=(--keep-epochs "$keep_epochs")
  if ! "$bin/dl-fetch" "${pr[@]}"; then log "prune: FAILED"; stage_done prune failed; exit 15; fi
  log "prune: $(tail -n 1 "$e/prune.jsonl" 2>/dev/null || echo '(epoch folder pruned)')"
  stage_done prune ok
fi
log "done"

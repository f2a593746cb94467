#!/usr/bin/env bash
# Chaos test of pipelines/validator.sh: two cron runs of it on the demo (finalized block 123: epoch 120,
# the king alone; 203: epoch 200, king and challenger, the crown changes hands), killed with SIGKILL
# (the whole process group: validator.sh, epoch.sh, whichever dl-* tool or chain call is running) at
# many points, then run again as cron would (each run that had not completed, in order). Every rerun
# must complete, and every file of the work folder (commitments, ledger, every epoch artifact, verdicts,
# weights.json, state, registry, validator-last.json) must be byte-identical to an undisturbed run's,
# with no validator-pending.json, NAME.part or NAME.tmp-PID left.
#
# Weights: the chain's own record (every set-weights extrinsic included) must hold each epoch's
# weights, the undisturbed run's, exactly once — except after a kill between the extrinsic's inclusion
# and weights.json's rename (the adapter's answer not yet recorded), where the rerun sets the same
# weights a second time: nothing on the chain says they were set (see docs/RELIABILITY.md). The test
# knows which trials were killed in that window and requires exactly that.
#
# The chain is scripts/tests/lib/chain_standin.py (the adapter's subcommands, records, files and exit
# codes, answered in milliseconds with a 50 ms round trip); the real adapter over a replayed chain is
# scripts/tests/validator.sh's.
#
#   scripts/tests/chaos-validator.sh [POINTS]   (default CHAOS_POINTS or 30; CHAOS_JOBS trials at a time, default 3)
#
# Kill points: POINTS - 12 spread evenly over the undisturbed run, plus 12 aimed, for each epoch: the
# epoch begun (validator-pending.json) and the commitments being read, the commitments placed and
# epoch.sh starting, the verdict placed and set-weights not yet answered, the extrinsic included but unrecorded, the adapter's
# answer written (weights.json.part), weights.json placed but the epoch not yet closed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
points=${1:-${CHAOS_POINTS:-30}}
jobs=${CHAOS_JOBS:-3}
bin="${DISTIL_BIN:-$(cd "$root" && swift build --show-bin-path)}"
for t in dl-fetch dl-check dl-prompts dl-teacher dl-kl dl-judge; do
  [[ -x "$bin/$t" ]] || { echo "chaos-validator: $bin/$t is missing: swift build first" >&2; exit 1; }
done
# python3 itself, not a version manager's shim in front of it (pyenv's costs 0.1 s a call, and
# validator.sh and the chain stand-in start it about ten times an epoch).
PATH="$(dirname "$(python3 -c 'import sys; print(sys.executable)')"):$PATH"
((points >= 13)) || { echo "chaos-validator: POINTS must be at least 13 (12 are aimed)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/distil-chaos-validator.XXXXXX")
pids=()
source "$root/scripts/tests/lib/chaos-trials.sh"
cleanup() { for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
demo="$root/demo"
sed "s|\"repo\": \"demo/|\"repo\": \"$demo/|" "$demo/commitments.jsonl" > "$tmp/commitments.jsonl"

# run_all DIR [LAST]: the two cron runs (or up to the LAST-th) in DIR/work, the chain in DIR/chain; a run
# that completed is marked in DIR/done-N (cron's clock moved on), so a rerun after a kill starts at the
# first unfinished one.
run_all() {
  local d=$1 last=${2:-2} step finalized
  mkdir -p "$d/chain" "$d/tmp"
  export TMPDIR="$d/tmp" CHAIN_STANDIN_DIR="$d/chain"
  [[ -e "$d/chain/commitments.jsonl" ]] || cp "$tmp/commitments.jsonl" "$d/chain/commitments.jsonl"
  for step in 1:123 2:203; do
    finalized=${step#*:}
    [[ -e "$d/done-${step%:*}" ]] && continue
    ((${step%:*} <= last)) || break
    echo "$finalized" > "$d/chain/finalized"
    "$root/pipelines/validator.sh" --work "$d/work" --teacher "$demo/teacher" --wallet-name demo --wallet-hotkey validator \
      --chain "$root/scripts/tests/lib/chain_standin.py" --bin "$bin" --lag 3 --interval 50 "$demo/corpus.jsonl.zst" \
      -- --count 4 --max-new-tokens 24 --vocab-size 512 --max-params 5300000000 --threads 1
    : > "$d/done-${step%:*}"
  done
}

# The files compared: all of the work folder but the timings (durations), the logs, the locks and
# report.html (a page for people, drawn again at every judge run; see chaos.sh).
artifacts() { (cd "$1/work" && find . -type f ! -name timings.jsonl ! -name '*.log' ! -name .lock ! -name .validator.lock ! -name report.html | LC_ALL=C sort); }
leftovers() {
  (cd "$1" && { find work \( -name '*.part' -o -name '*.tmp-*' -o -name '*.part.*' -o -name validator-pending.json \) -print 2>/dev/null
                find chain -name '*.tmp-*' -print 2>/dev/null; find tmp -mindepth 1 -print 2>/dev/null; }) | LC_ALL=C sort
}
# submitted DIR: set-weights extrinsics on DIR's chain; recorded DIR: epochs with a weights.json.
submitted() { [[ -e "$1/chain/submitted.jsonl" ]] && wc -l < "$1/chain/submitted.jsonl" || echo 0; }
recorded() { find "$1/work" -name weights.json 2>/dev/null | wc -l; }

start=$SECONDS
# The undisturbed run, its first cron run timed apart: a trial killed in the second starts from a copy
# of the folder the first left (the same bytes an undisturbed run has there), not from the beginning.
t0=$(date +%s.%N)
run_all "$tmp/ref" 1 2> "$tmp/ref.log" || { cat "$tmp/ref.log" >&2; echo "chaos-validator: the undisturbed run failed" >&2; exit 1; }
t1=$(date +%s.%N)
cp -a "$tmp/ref" "$tmp/snap"
run_all "$tmp/ref" 2>> "$tmp/ref.log" || { cat "$tmp/ref.log" >&2; echo "chaos-validator: the undisturbed run failed" >&2; exit 1; }
first_s=$(echo "$t1 - $t0" | bc) ref_s=$(echo "$(date +%s.%N) - $t0" | bc)
artifacts "$tmp/ref" > "$tmp/ref.list"
[[ $(submitted "$tmp/ref") == 2 ]] || { echo "chaos-validator: the undisturbed run set weights $(submitted "$tmp/ref") times, not 2" >&2; exit 1; }
echo "chaos-validator: undisturbed run ${ref_s} s (epoch 120 ${first_s} s), $(wc -l < "$tmp/ref.list") files, weights set twice (one per epoch); $points kill points, $jobs at a time"

# The aimed moments, as conditions on the trial folder $w (polled every 2 ms).
aims=()
for e in 120 200; do
  aims+=("grep -q '\"block\":$e' \$w/work/validator-pending.json 2>/dev/null && [[ ! -e \$w/work/epoch-$e/commitments.jsonl ]]"
         "[[ -e \$w/work/epoch-$e/commitments.jsonl && ! -e \$w/work/epoch-$e/manifests.jsonl.part && ! -e \$w/work/epoch-$e/manifests.jsonl ]]"
         "[[ -e \$w/work/epoch-$e/verdict.json && ! -e \$w/work/epoch-$e/weights.json.part && ! -e \$w/work/epoch-$e/weights.json ]]"
         "grep -q '\"verdict_block\":$e' \$w/chain/submitted.jsonl 2>/dev/null && [[ ! -e \$w/work/epoch-$e/weights.json.part && ! -e \$w/work/epoch-$e/weights.json ]]"
         "[[ -e \$w/work/epoch-$e/weights.json.part ]]"
         "[[ -e \$w/work/epoch-$e/weights.json && -e \$w/work/validator-pending.json ]]")
done
names=("epoch begun, commitments being read" "commitments placed, epoch.sh starting" "verdict, set-weights running" "extrinsic included, unrecorded" "weights.json.part" "weights.json, epoch open")

# trial K: run, kill at its point, rerun, compare. Prints one line; exit 1 on a failure.
trial() {
  local k=$1 w="$tmp/t$1" how pid spread=$((points - ${#aims[@]}))
  # A point in the second cron run starts from the first run's folder and is timed from its start.
  local at="" run=first
  ((k <= spread)) && at=$(echo "scale=3; $ref_s * ($k - 0.5) / $spread" | bc)
  if { ((k > spread)) && ((k - spread > ${#aims[@]} / 2)); } || { [[ -n "$at" ]] && (($(echo "$at >= $first_s" | bc))); }; then
    cp -a "$tmp/snap" "$w"
    run=second
    [[ -n "$at" ]] && at=$(echo "scale=3; ($at - $first_s) / 1" | bc)
  fi
  mkdir -p "$w"
  # setsid: its own process group (a background job is no group leader, so the group id is $!).
  setsid bash -c "$(declare -f run_all); root='$root' demo='$demo' bin='$bin' tmp='$tmp'; run_all '$w'" 2> "$w.kill.log" & pid=$!
  if ((k > spread)); then
    local a=$((k - spread - 1))
    how="epoch $( ((a < 6)) && echo 120 || echo 200): ${names[$((a % 6))]}"
    while ! eval "${aims[$a]}"; do
      kill -0 "$pid" 2>/dev/null || { how="$how (never seen: the run ended)"; break; }
      sleep 0.002
    done
  else
    how="at ${at} s of the $run cron run"
    sleep "$at"
  fi
  kill_group "$pid"
  local half; half=$(leftovers "$w" | tr '\n' ' ')
  # Killed between an extrinsic's inclusion and its weights.json: the rerun sets those weights again.
  local again=$(($(submitted "$w") - $(recorded "$w")))
  if ! run_all "$w" 2> "$w.rerun.log"; then
    echo "chaos-validator trial $k ($how): the rerun FAILED:"; tail -5 "$w.rerun.log"; return 1
  fi
  if ! diff -q "$tmp/ref.list" <(artifacts "$w") > /dev/null; then
    echo "chaos-validator trial $k ($how): different files:"; diff "$tmp/ref.list" <(artifacts "$w") | head; return 1
  fi
  local f
  while read -r f; do   # (kl.done names its files by absolute path; a copy of the first run's names the reference's)
    cmp -s <(sed "s|$tmp/ref|@W|g" "$tmp/ref/work/$f") <(sed -e "s|$w|@W|g" -e "s|$tmp/ref|@W|g" "$w/work/$f") ||
      { echo "chaos-validator trial $k ($how): $f differs from the undisturbed run's"; return 1; }
  done < "$tmp/ref.list"
  if ! cmp -s <(uniq "$w/chain/submitted.jsonl") "$tmp/ref/chain/submitted.jsonl"; then
    echo "chaos-validator trial $k ($how): the chain's weights are not the undisturbed run's:"; cat "$w/chain/submitted.jsonl"; return 1
  fi
  local sets; sets=$(submitted "$w")
  ((sets == 2 + again)) || { echo "chaos-validator trial $k ($how): weights set $sets times (expected $((2 + again)))"; return 1; }
  local left; left=$(leftovers "$w")
  [[ -z "$left" ]] || { echo "chaos-validator trial $k ($how): left behind: $left"; return 1; }
  echo "chaos-validator trial $k: killed $how${half:+ (half-written: $half)}: rerun identical, weights set $( ((again)) && echo "twice for one epoch (killed after the extrinsic, before weights.json)" || echo "once per epoch")"
  rm -rf "$w"
}

run_trials
missed=$(cat "$tmp"/trial*.out | grep -c "never seen" || true)
twice=$(cat "$tmp"/trial*.out | grep -c "set twice" || true)
echo "chaos-validator: $points kill points ($missed of the aimed ones missed their moment; $twice reruns set one epoch's weights a second time), $failed failed, $((SECONDS - start)) s"
((failed == 0))

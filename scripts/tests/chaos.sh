#!/usr/bin/env bash
# Chaos test of the epoch pipeline: the demo's first two epochs (block 120: the king alone; block 200:
# king and challenger scored, the crown changes hands) run through pipelines/epoch.sh, killed with
# SIGKILL (the whole process group: epoch.sh and whichever dl-* tool is running) at many points, then
# run again undisturbed. Every rerun must complete, and every artifact it leaves (manifests, checks,
# plan, prompts, teacher.dlt, kl/*.jsonl, recheck, state-before, verdict, state, registry) must be
# byte-identical to an undisturbed run's: no partial file was taken as complete, the state was neither
# lost nor half-updated. No NAME.part or NAME.tmp-PID may be left behind after the rerun.
#
#   scripts/tests/chaos.sh [POINTS]        (default CHAOS_POINTS or 30; CHAOS_JOBS trials at a time, default 2)
#
# Kill points: POINTS - 5 spread evenly over the undisturbed run's duration, plus 5 aimed at a moment
# (polled every 2 ms): the teacher running (teacher.dlt.part exists; its zstd workers may hold the
# bytes until the end), a KL file being
# written (kl/UID.jsonl.tmp-PID), the re-check running (recheck.jsonl.part), the judge running
# (state.json.part: state and verdict being written) and the verdict just placed, before the state
# across epochs is (verdict.json). Each trial prints what was half-written when it was killed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
points=${1:-${CHAOS_POINTS:-30}}
jobs=${CHAOS_JOBS:-2}
bin="${DISTIL_BIN:-$(cd "$root" && swift build --show-bin-path)}"
for t in dl-fetch dl-check dl-prompts dl-teacher dl-kl dl-judge; do
  [[ -x "$bin/$t" ]] || { echo "chaos: $bin/$t is missing: swift build first" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/distil-chaos.XXXXXX")
pids=()
source "$root/scripts/tests/lib/chaos-trials.sh"
cleanup() { for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
demo="$root/demo"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }

# run_epochs DIR: the two epochs in DIR (resumable: nothing is removed first).
run_epochs() {
  local w=$1
  mkdir -p "$w/tmp"
  export TMPDIR="$w/tmp"
  [[ -e "$w/commitments-200.jsonl" ]] || {
    sed "s|\"repo\": \"demo/|\"repo\": \"$demo/|" "$demo/commitments.jsonl" > "$w/commitments-200.jsonl.part"
    head -n 1 "$w/commitments-200.jsonl.part" > "$w/commitments-120.jsonl"
    mv "$w/commitments-200.jsonl.part" "$w/commitments-200.jsonl"
  }
  local common=(--work "$w" --teacher "$demo/teacher" --count 4 --max-new-tokens 24 --vocab-size 512
                --max-params 5300000000 --threads 1 --bin "$bin")
  "$root/pipelines/epoch.sh" "${common[@]}" --commitments "$w/commitments-120.jsonl" --block 120 \
    --block-hash "$(hash 120)" "$demo/corpus.jsonl.zst" > /dev/null
  "$root/pipelines/epoch.sh" "${common[@]}" --commitments "$w/commitments-200.jsonl" --block 200 \
    --block-hash "$(hash 200)" "$demo/corpus.jsonl.zst" > /dev/null
}

# The artifacts compared: all but the timings (durations), the lock, and report.html (a page for
# people, drawn again at every judge run; it once differed after a kill, see docs/RELIABILITY.md).
artifacts() { (cd "$1" && find . -type f ! -name timings.jsonl ! -name '*.log' ! -name .lock ! -name report.html ! -path './tmp/*' | LC_ALL=C sort); }
leftovers() { (cd "$1" && find . \( -name '*.part' -o -name '*.tmp-*' -o -name '*.part.*' \) -print && find tmp -mindepth 1 -print 2>/dev/null) | LC_ALL=C sort; }

start=$SECONDS
t0=$(date +%s.%N)
run_epochs "$tmp/ref" 2> "$tmp/ref.log" || { cat "$tmp/ref.log" >&2; echo "chaos: the undisturbed run failed" >&2; exit 1; }
ref_s=$(echo "$(date +%s.%N) - $t0" | bc)
artifacts "$tmp/ref" > "$tmp/ref.list"
echo "chaos: undisturbed run ${ref_s} s, $(wc -l < "$tmp/ref.list") artifacts; $points kill points, $jobs at a time"

targets=("epoch-200/teacher.dlt.part" "epoch-200/kl/*.jsonl.tmp-*" "epoch-200/recheck.jsonl.part"
         "epoch-200/state.json.part" "epoch-200/verdict.json")
# trial K: run, kill at its point, rerun, compare. Prints one line; exit 1 on a failure.
trial() {
  local k=$1 w="$tmp/t$1" how pid
  mkdir -p "$w"
  # setsid: its own process group (a background job of this script is no group leader, so setsid
  # does not fork: the group id is $!), killed whole.
  setsid bash -c "$(declare -f run_epochs hash); root='$root' demo='$demo' bin='$bin'; run_epochs '$w'" \
     2> "$w.kill.log" & pid=$!
  if ((k > points - ${#targets[@]})); then
    local glob=${targets[$((k - points + ${#targets[@]} - 1))]} waited=0
    how="when $glob is being written"
    while :; do
      # shellcheck disable=SC2086
      if compgen -G "$w/$glob" > /dev/null; then break; fi
      kill -0 "$pid" 2>/dev/null || { how="$how (never seen: the run ended)"; break; }
      sleep 0.002; waited=$((waited + 1))
    done
  else
    local at; at=$(echo "scale=3; $ref_s * ($k - 0.5) / ($points - ${#targets[@]})" | bc)
    how="at ${at} s"
    sleep "$at"
  fi
  local half; half=$(leftovers "$w" | tr '\n' ' ')
  kill_group "$pid"
  if ! run_epochs "$w" 2> "$w.rerun.log"; then
    echo "chaos trial $k ($how): the rerun FAILED:"; tail -5 "$w.rerun.log"; return 1
  fi
  if ! diff -q "$tmp/ref.list" <(artifacts "$w") > /dev/null; then
    echo "chaos trial $k ($how): different artifacts:"; diff "$tmp/ref.list" <(artifacts "$w") | head; return 1
  fi
  local f
  while read -r f; do   # (kl.done names its files by absolute path: the folders' names are replaced)
    cmp -s <(sed "s|$tmp/ref|@W|g" "$tmp/ref/$f") <(sed "s|$w|@W|g" "$w/$f") ||
      { echo "chaos trial $k ($how): $f differs from the undisturbed run's"; return 1; }
  done < "$tmp/ref.list"
  local left; left=$(leftovers "$w")
  [[ -z "$left" ]] || { echo "chaos trial $k ($how): left behind: $left"; return 1; }
  echo "chaos trial $k: killed $how${half:+ (half-written: $half)}: rerun identical"
  rm -rf "$w"
}

run_trials
missed=$(cat "$tmp"/trial*.out | grep -c "never seen" || true)
echo "chaos: $points kill points ($missed of the aimed ones missed their moment: the run ended first), $failed failed, $((SECONDS - start)) s"
((failed == 0))

#!/usr/bin/env bash
# Two pipelines/epoch.sh on one work folder, and epochs run out of order, on the demo checkpoints:
#   - while one run holds DIR/.lock, a second (the same epoch or another) refuses at once: exit 3, one
#     line naming the lock, nothing written (no epoch folder, no timings line, no artifact);
#   - a run whose shell alone was killed (kill -9 of epoch.sh) keeps the folder locked while the tool it
#     started still runs; once that tool has exited, the next run takes the lock, resumes, and ends with
#     the undisturbed run's bytes;
#   - re-running an older epoch after a newer one (cached, or judged again) leaves DIR/state.json at the
#     newer epoch's state (it used to be copied back);
#   - a run killed between the verdict's rename and the copy of the state to DIR/state.json: the next
#     epoch takes the judged state before freezing its state-before, and ends with the undisturbed bytes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${DISTIL_BIN:-$(cd "$root" && swift build --show-bin-path)}"
[[ -x "$bin/dl-fetch" ]] || { echo "concurrency test: $bin/dl-fetch missing: run scripts/setup.sh" >&2; exit 1; }
t="$(mktemp -d /tmp/distil-concurrency.XXXXXX)"
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$t"; }
trap cleanup EXIT
fail() { echo "concurrency test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "concurrency test: ok: $*" >&2; }

source "$root/scripts/tests/lib/demo-epochs.sh"
epoch() { args "$@"; "${a[@]}" > /dev/null 2>> "$t/log"; }

# The undisturbed run: epochs 120 (the king crowned), 200 (the challenger takes the crown), 260 (nothing new).
ref="$t/ref"
epoch "$ref" 120 || fail "undisturbed epoch 120"; cp -a "$ref" "$t/ref-120"
epoch "$ref" 200 || fail "undisturbed epoch 200"; cp -a "$ref" "$t/ref-200"
epoch "$ref" 260 || fail "undisturbed epoch 260"
winner() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["winner"])' "$1"; }
[[ $(winner "$ref/epoch-120/verdict.json") == 1 && $(winner "$ref/epoch-200/verdict.json") == 2 ]] || fail "undisturbed winners"
! cmp -s "$t/ref-120/state.json" "$ref/state.json" || fail "the states after 120 and 260 are the same: the order checks below could not fail"

# --- two runs on one folder ----------------------------------------------------------------------
# A bin folder whose dl-fetch waits on a FIFO (opened by the test): the first run holds the lock there.
gate="$t/gate"
mkdir -p "$gate"
for tool in dl-check dl-prompts dl-teacher dl-kl dl-judge; do ln -s "$bin/$tool" "$gate/$tool"; done
mkfifo "$gate/fifo"
cat > "$gate/dl-fetch" <<EOF
#!/bin/sh
echo \$\$ > "$gate/fetch.pid.part" && mv "$gate/fetch.pid.part" "$gate/fetch.pid"
read go < "$gate/fifo"
exec "$bin/dl-fetch" "\$@"
EOF
chmod +x "$gate/dl-fetch"
w="$t/w"
args "$w" 120 "$gate"
"${a[@]}" > /dev/null 2> "$t/first.log" & first=$!
pids+=("$first")
for ((i = 0; i < 600; i++)); do [[ -e "$gate/fetch.pid" ]] && break; sleep 0.05; done
[[ -e "$gate/fetch.pid" ]] || { cat "$t/first.log" >&2; fail "the first run never reached dl-fetch"; }
fetch=$(cat "$gate/fetch.pid")
pids+=("$fetch")
# (The lock file itself is opened for writing by every run: its time changes.)
snapshot() { (cd "$w" && find . ! -name .lock -printf '%p %s %T@\n' | LC_ALL=C sort); }
before=$(snapshot)
for b in 120 260; do
  args "$w" "$b"
  s0=$(date +%s%N); rc=0
  "${a[@]}" > "$t/second.out" 2> "$t/second.log" || rc=$?
  ms=$((($(date +%s%N) - s0) / 1000000))
  [[ $rc == 3 ]] || fail "a second run (block $b) while the first holds the lock: exit $rc, not 3: $(cat "$t/second.log")"
  grep -qxF "epoch: another epoch run holds $w/.lock; not starting (exit 3)" "$t/second.log" || fail "second run's message: $(cat "$t/second.log")"
  [[ $(wc -l < "$t/second.log") == 1 && ! -s "$t/second.out" ]] || fail "the refusal is not one line: $(cat "$t/second.log")"
  [[ "$(snapshot)" == "$before" ]] || fail "the refused run (block $b) changed the work folder"
  ok "a second epoch.sh (block $b) while a run holds $w/.lock: refused in $ms ms, exit 3, one line, nothing written"
done

kill -9 "$first"; wait "$first" 2>/dev/null || true
kill -0 "$fetch" 2>/dev/null || fail "the tool the killed run started is gone already"
args "$w" 120
rc=0; "${a[@]}" > /dev/null 2> "$t/third.log" || rc=$?
[[ $rc == 3 ]] || fail "after kill -9 of epoch.sh alone, with its dl-fetch still running: exit $rc, not 3"
ok "epoch.sh killed alone: the dl-fetch it started still holds the lock, the next run is refused (exit 3)"
echo go > "$gate/fifo"
for ((i = 0; i < 600; i++)); do kill -0 "$fetch" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$fetch" 2>/dev/null || fail "the orphaned dl-fetch did not finish"
epoch "$w" 120 || fail "the run after the orphan finished: $(tail -3 "$t/log")"
same "$w" "$t/ref-120"
left=$(find "$w" -name '*.part' -o -name '*.tmp-*')
[[ -z "$left" ]] || fail "left behind: $left"
ok "once the orphan exited the next run took the lock and resumed: every artifact the undisturbed bytes, no temporary left"

# --- epochs out of order ---------------------------------------------------------------------------
o="$t/order"
cp -a "$ref" "$o"
: > "$t/log"
epoch "$o" 120 || fail "re-running epoch 120 after 260: $(tail -3 "$t/log")"
cmp -s "$o/state.json" "$ref/state.json" || fail "re-running epoch 120 (cached) after 260 moved $o/state.json back"
grep -q "judge: epoch 260 is newer and judged: $o/state.json stays its state" "$t/log" || fail "no line saying the state stays: $(cat "$t/log")"
rm "$o/epoch-120/verdict.json" "$o/epoch-120/state.json"
epoch "$o" 120 || fail "judging epoch 120 again after 260"
cmp -s "$o/epoch-120/verdict.json" "$ref/epoch-120/verdict.json" || fail "epoch 120 judged again: another verdict"
cmp -s "$o/state.json" "$ref/state.json" || fail "epoch 120 judged again after 260 moved the state back"
ok "epoch 120 re-run after 260 (cached, then judged again: the same verdict): $o/state.json stays epoch 260's"

# --- a run killed between the verdict and the state copy --------------------------------------------
c="$t/catchup"
cp -a "$t/ref-200" "$c"
cp "$c/epoch-200/state-before.json" "$c/state.json"
! cmp -s "$c/epoch-200/state.json" "$c/state.json" || fail "epoch 200 left the state unchanged: the catch-up check could not fail"
: > "$t/log"
epoch "$c" 260 || fail "epoch 260 after a run killed between 200's verdict and its state copy"
grep -q "plan: $c/state.json is still the state epoch 200 was judged against: taking epoch 200's judged state first" "$t/log" \
  || fail "no catch-up line: $(cat "$t/log")"
same "$c" "$ref"
ok "killed between epoch 200's verdict and its state copy: epoch 260 took 200's state first; every artifact the undisturbed bytes"
echo "concurrency test: $checks passed, 0 failed"

#!/usr/bin/env bash
# The Slurm driver (pipelines/slurm/) on a real Slurm on this one machine: installs Debian's slurm-wlm
# and munge (idempotent), starts munged, slurmctld and slurmd as this user with a generated one-node
# slurm.conf in a temporary folder, and checks:
#   1. the demo's epochs submitted with submit-epoch.sh --wait give verdict.json, state.json and every
#      kl/UID.jsonl byte-identical to pipelines/epoch.sh's (the demo's own commands, run the plain way
#      here), the empty-plan epoch included; reproduce.sh reproduces the Slurm-made epoch;
#   2. the block-200 epoch again from its cached prepare and teacher artifacts, with the dl-kl process
#      of one array task killed (SIGKILL) half-way through the teacher stream: the task's retry (the kl
#      stage runs a dl-kl killed by a signal once more) completes, the verdict is the same bytes, and
#      timings.jsonl shows the killed attempt (exit 137) and the retry (exit 0); a second submission to
#      the same work folder meanwhile is refused;
#   3. a student that fails twice (exit 1: no model's fault, e.g. a damaged teacher stream) fails the
#      epoch: no verdict.json, submit-epoch.sh exits 1, and so does a failed teacher job (the array and
#      the finish job never run).
# Every daemon it started is stopped by pid (also on failure), and nothing is left running.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
say() { echo "slurm test: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
# The daemons run as root (slurmd starts every job step as its submitter); not root: through sudo.
if [[ "$(id -u)" != 0 ]]; then
  sudo -n true 2>/dev/null || fail "needs root, or sudo without a password, to run slurmd"
  exec sudo -n -E env "PATH=$PATH" bash "$0" "$@"
fi

packages=(slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

tmp="$(mktemp -d /tmp/distil-slurm-test.XXXXXX)"
chmod 755 "$tmp"
pids=() subs=()
# stop: every daemon (and submission) this test started, by pid: slurmd and slurmctld first (their
# jobs are cancelled), then munged.
stop() {
  local p
  if ((${#pids[@]} > 1)) && kill -0 "${pids[1]}" 2>/dev/null; then
    scancel --quiet --user "$(id -un)" 2>/dev/null || true   # this cluster's jobs: only ours
    for _ in $(seq 100); do [[ -z "$(squeue -h 2>/dev/null)" ]] && break; sleep 0.1; done
  fi
  for p in "${subs[@]}" "${pids[@]:1}" "${pids[@]:0:1}"; do
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=() subs=()
}
trap 'stop; rm -rf "$tmp"' EXIT

# munged on its own key and socket (a system munged, if any, is left alone).
mkdir -p "$tmp/munge" "$tmp/spool" "$tmp/state" "$tmp/log"
chmod 711 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock="$tmp/munge/munge.socket"
munged --foreground --force --key-file "$tmp/munge/munge.key" --socket "$sock" \
  --pid-file "$tmp/munge/munged.pid" --log-file "$tmp/log/munged.log" --seed-file "$tmp/munge/seed" \
  2>> "$tmp/log/munged.log" &
pids+=($!)
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
[[ -S "$sock" ]] || fail "munged did not start: $(cat "$tmp/log/munged.log" 2>/dev/null)"

host=$(hostname -s)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mem=$(( $(awk '/MemTotal/ { print $2 }' /proc/meminfo) / 1024 / 2 ))
cat > "$tmp/slurm.conf" <<CONF
ClusterName=distiltest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/slurmd-%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$tmp/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >> "$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >> "$tmp/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  [[ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" == idle ]] && break
  sleep 0.2
done
[[ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" == idle ]] || {
  tail -5 "$tmp/log/slurmctld.log" "$tmp/log/slurmd.log" >&2 || true
  fail "the Slurm node did not come up"
}
say "slurmctld, slurmd and munged are up (pids ${pids[*]})"

bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
[[ -x "$bin/dl-kl" ]] || fail "$bin/dl-kl is missing: build first (scripts/setup.sh)"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }

# The plain way: the demo itself (pipelines/epoch.sh, three epochs, then its reproduction).
t0=$SECONDS
DISTIL_BIN="$bin" pipelines/demo.sh "$tmp/plain" > "$tmp/plain-verdict.json" 2> "$tmp/log/demo.log" \
  || { tail -20 "$tmp/log/demo.log" >&2; fail "pipelines/demo.sh failed"; }
say "the demo the plain way: $((SECONDS - t0)) s"

demo_args=(--teacher "$root/demo/teacher" --count 8 --max-new-tokens 40 --vocab-size 512 --max-params 5300000000)
# A one-node cluster with 2 cores: the two students run side by side, one thread each.
# The teacher's --mem comes from dl-teacher's memory plan where the build has `run --plan`.
plan=0
"$bin/dl-teacher" run --help 2>/dev/null | grep -q -- '--plan' && plan=1
slurm_args=(--cpus 1 --teacher-cpus "$(nproc)" --student-cpus 1 --student-mem 1G)
((plan)) || slurm_args+=(--teacher-mem 2G)
submit() { # WORK BLOCK [BIN [OPTION...]]: one epoch through submit-epoch.sh --wait
  local w=$1 b=$2 c=200 x=${3:-$bin}
  shift $(($# < 3 ? $# : 3))
  ((b == 120)) && c=120
  pipelines/slurm/submit-epoch.sh --wait "${slurm_args[@]}" "$@" --bin "$x" --work "$w" "${demo_args[@]}" \
    --commitments "$tmp/plain/commitments-$c.jsonl" --block "$b" --block-hash "$(hash "$b")" "$root/demo/corpus.jsonl.zst"
}
same() { # EPOCH-DIR-A EPOCH-DIR-B: verdict, state and every KL file the same bytes
  local f
  for f in verdict.json state.json; do cmp "$1/$f" "$2/$f" || fail "$2/$f differs from $1/$f"; done
  [[ "$(cd "$1/kl" && ls -- *.jsonl 2>/dev/null)" == "$(cd "$2/kl" && ls -- *.jsonl 2>/dev/null)" ]] \
    || fail "$2/kl/ holds other KL files than $1/kl/"
  for f in "$1"/kl/*.jsonl; do
    [[ -e "$f" ]] || continue   # no KL files: an epoch with nothing to score
    cmp "$f" "$2/kl/$(basename "$f")" || fail "$2/kl/$(basename "$f") differs"
  done
}

# 1. The demo's epochs on Slurm.
for b in 120 200 260; do
  t0=$SECONDS
  submit "$tmp/slurm" "$b" "$bin" --metrics "$tmp/slurm-$b.prom" > "$tmp/slurm-verdict-$b.json" 2> "$tmp/log/submit-$b.log" \
    || { cat "$tmp/log/submit-$b.log" "$tmp/slurm/epoch-$b"/slurm/*.log >&2 || true; fail "the Slurm epoch at block $b failed"; }
  same "$tmp/plain/epoch-$b" "$tmp/slurm/epoch-$b"
  cmp "$tmp/slurm-verdict-$b.json" "$tmp/slurm/epoch-$b/verdict.json" || fail "submit-epoch.sh --wait printed another verdict"
  [[ -s "$tmp/slurm/epoch-$b/report.html" ]] || fail "the finish job wrote no report.html"
  grep -qx 'distil_epoch_success 1' "$tmp/slurm-$b.prom" || fail "--metrics did not say the epoch succeeded"
  say "epoch $b on Slurm ($((SECONDS - t0)) s, jobs: $(awk '{ printf "%s %s; ", $1, $2 }' "$tmp/slurm/epoch-$b/slurm/jobs")): verdict, state and KL files byte-identical to the demo's"
done
cmp "$tmp/plain-verdict.json" "$tmp/slurm-verdict-200.json" || fail "the block-200 verdict differs from the demo's"
grep -q '^student ' "$tmp/slurm/epoch-200/slurm/jobs" || fail "the block-200 epoch ran no student array"
ls "$tmp/slurm/epoch-200/slurm/" | grep -q '^student-[0-9]*_2\.log$' || fail "no log of array task 2"
! grep -q '^teacher \|^student ' "$tmp/slurm/epoch-260/slurm/jobs" || fail "the empty-plan epoch ran teacher or student jobs"
t=$(awk '$1 == "teacher" { print $2 }' "$tmp/slurm/epoch-200/slurm/jobs")
got=$(scontrol -o show job "$t" | sed -n 's/.*MinMemoryNode=\([0-9]*\)\([MG]\).*/\1 \2/p' | awk '{ print ($2 == "G" ? $1 * 1024 : $1) }')
if ((plan)); then
  need=$("$bin/dl-teacher" run --plan --model "$root/demo/teacher" --max-new-tokens 40 --threads "$(nproc)" \
    "$tmp/plain/epoch-200/prompts.jsonl" 2>/dev/null | sed -n 's/.*"need_bytes" *: *\([0-9][0-9]*\).*/\1/p')
  want=$(( (need + need / 10 + 1048575) / 1048576 ))
else
  want=2048
fi
[[ "$got" == "$want" ]] || fail "the teacher job got --mem ${got:-?} MiB, not $want: $(scontrol -o show job "$t")"
say "the teacher job's --mem: $want MiB ($( ((plan)) && echo "dl-teacher's memory plan + 10%" || echo "--teacher-mem 2G: this build has no dl-teacher --plan"))"
DISTIL_BIN="$bin" pipelines/reproduce.sh --work "$tmp/slurm" --block 200 2> "$tmp/log/reproduce.log" \
  || { cat "$tmp/log/reproduce.log" >&2; fail "reproduce.sh on the Slurm-made epoch"; }
say "reproduce.sh: the Slurm-made block-200 epoch reproduces byte for byte"

# The block-200 epoch again, from its cached prepare and teacher artifacts (a resubmission resumes).
cached_epoch() {
  mkdir -p "$1/epoch-200"
  for f in manifests.jsonl checks.jsonl state-before.json plan.jsonl prompts.jsonl teacher.dlt; do
    cp "$tmp/slurm/epoch-200/$f" "$1/epoch-200/"
  done
}

# 2. One array task's dl-kl killed mid-run: the retry completes with the same bytes. To kill it while it
# is scoring, not before or after, a wrapper hands the first dl-kl of the epoch the teacher stream
# through a FIFO that stops half-way (the retry reads the file itself): the killed dl-kl has scored
# part of the prompts and waits for the rest.
hook="$tmp/hook"
mkdir -p "$hook" "$tmp/bin-kill"
for t in dl-fetch dl-check dl-prompts dl-teacher dl-judge; do ln -s "$bin/$t" "$tmp/bin-kill/$t"; done
cat > "$tmp/bin-kill/dl-kl" <<HOOK
#!/usr/bin/env bash
if mkdir "$hook/first" 2>/dev/null; then
  args=("\$@"); stream=\${args[-1]}; args[-1]="$hook/stream"
  mkfifo "$hook/stream"
  half=\$((\$(stat -c %s "\$stream") / 2))
  { head -c "\$half" "\$stream"; touch "$hook/half"
    while [[ ! -e "$hook/go" ]]; do sleep 0.05; done
    tail -c +\$((half + 1)) "\$stream"; } > "$hook/stream" 2>/dev/null &
  # The stage hands dl-kl its plan line through a pipe (/dev/fd/N): keep a copy the test can read.
  for ((k = 0; k < \${#args[@]} - 1; k++)); do
    [[ "\${args[k]}" == --checks ]] && { cat "\${args[k + 1]}" > "$hook/plan"; args[k + 1]="$hook/plan"; }
  done
  echo \$\$ > "$hook/pid.part" && mv "$hook/pid.part" "$hook/pid"
  exec "$bin/dl-kl" "\${args[@]}"
fi
exec "$bin/dl-kl" "\$@"
HOOK
chmod +x "$tmp/bin-kill/dl-kl"
cached_epoch "$tmp/kill"
submit "$tmp/kill" 200 "$tmp/bin-kill" > "$tmp/kill-verdict.json" 2> "$tmp/log/submit-kill.log" &
subs+=($!)
for _ in $(seq 600); do [[ -e "$hook/half" ]] && break; sleep 0.1; done
[[ -e "$hook/half" ]] || { tail -n 20 "$tmp/log/submit-kill.log" "$tmp/kill/epoch-200"/slurm/*.log >&2 || true; squeue >&2; fail "no array task's dl-kl read half the teacher stream"; }
pid=$(cat "$hook/pid")
[[ "$(readlink "/proc/$pid/exe")" == "$(realpath "$bin/dl-kl")" ]] || fail "pid $pid is not dl-kl"
cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
[[ "$cmd" == *"--threads 1 "* ]] || fail "the array task's dl-kl did not get --threads from SLURM_CPUS_PER_TASK (1): $cmd"
plan=$(sed 's/.*--checks \([^ ]*\) .*/\1/' <<< "$cmd")
[[ "$(cat "$plan")" =~ \"uid\":([0-9]+) ]] || fail "no uid in the task's plan $plan"
uid=${BASH_REMATCH[1]}
# While that epoch's jobs run, another submission to the same work folder is refused.
rc=0; submit "$tmp/kill" 260 > /dev/null 2> "$tmp/log/submit-busy.log" || rc=$?
((rc == 1)) && grep -q "still has jobs queued or running" "$tmp/log/submit-busy.log" \
  || { cat "$tmp/log/submit-busy.log" >&2; fail "a second epoch was submitted while the first one's jobs ran (exit $rc)"; }
[[ ! -e "$tmp/kill/epoch-260" ]] || fail "the refused submission left epoch-260"
say "a second submission to the work folder while its epoch runs is refused (exit 1)"
kill -KILL "$pid"
touch "$hook/go"   # the FIFO's writer finds no reader and ends
[[ ! -e "$tmp/kill/epoch-200/kl/$uid.jsonl" ]] || fail "dl-kl of uid $uid had finished before the kill"
say "killed dl-kl (pid $pid, uid $uid) of an array task mid-run, half-way through the teacher stream"
rc=0; wait "${subs[0]}" || rc=$?
subs=()
((rc == 0)) || { cat "$tmp/log/submit-kill.log" >&2; fail "the epoch with a killed task failed (exit $rc)"; }
cmp "$tmp/plain/epoch-200/verdict.json" "$tmp/kill/epoch-200/verdict.json" || fail "the retried epoch's verdict differs"
same "$tmp/plain/epoch-200" "$tmp/kill/epoch-200"
grep -q "kl (uid $uid): dl-kl was killed by signal 9 (attempt 1 of 2)" "$tmp/kill/epoch-200"/slurm/student-*.log \
  || fail "no task log shows the killed attempt"
grep -q "^{\"stage\":\"kl\",\"uid\":$uid,.*\"exit\":137}$" "$tmp/kill/epoch-200/timings.jsonl" || fail "timings.jsonl lacks the killed attempt"
[[ "$(grep "\"uid\":$uid," "$tmp/kill/epoch-200/timings.jsonl" | tail -1)" == *'"cached":false,"exit":0}' ]] \
  || fail "timings.jsonl lacks the retry of uid $uid"
grep -q '"stage":"teacher",.*"cached":true' "$tmp/kill/epoch-200/timings.jsonl" || fail "the resubmitted epoch ran the teacher again"
say "the killed task's retry completed: verdict, state and KL files byte-identical; timings show exit 137 then 0"

# 3. A student that fails twice fails the epoch: no verdict, no weights.
mkdir -p "$tmp/bin-broken"
for t in dl-fetch dl-check dl-prompts dl-teacher dl-judge; do ln -s "$bin/$t" "$tmp/bin-broken/$t"; done
printf '#!/bin/sh\necho "dl-kl: broken on purpose" >&2\nexit 1\n' > "$tmp/bin-broken/dl-kl"
chmod +x "$tmp/bin-broken/dl-kl"
cached_epoch "$tmp/broken"
rc=0; submit "$tmp/broken" 200 "$tmp/bin-broken" --metrics "$tmp/broken.prom" > /dev/null 2> "$tmp/log/submit-broken.log" || rc=$?
((rc == 1)) || fail "an epoch whose students fail exited $rc, not 1"
[[ ! -e "$tmp/broken/epoch-200/verdict.json" && ! -e "$tmp/broken/state.json" ]] || fail "a failed epoch wrote a verdict or state"
grep -q "no verdict, no weights" "$tmp/log/submit-broken.log" || fail "submit-epoch.sh did not say the epoch failed"
[[ $(grep -c "attempt [12] failed" "$tmp/broken/epoch-200"/slurm/student-*.log | awk -F: '{ s += $2 } END { print s }') == 4 ]] \
  || fail "the two failing tasks were not each tried twice"
! ls "$tmp/broken/epoch-200/slurm/" | grep -q '^finish-' || fail "the finish job ran after failed students"
grep -qx 'distil_epoch_success 0' "$tmp/broken.prom" || fail "--metrics did not say the failed epoch failed"
# ... and so does a failed teacher: the array never runs, nor the finish job.
mkdir -p "$tmp/bin-noteacher"
for t in dl-fetch dl-check dl-prompts dl-kl dl-judge; do ln -s "$bin/$t" "$tmp/bin-noteacher/$t"; done
printf '#!/bin/sh\necho "dl-teacher: broken on purpose" >&2\nexit 1\n' > "$tmp/bin-noteacher/dl-teacher"
chmod +x "$tmp/bin-noteacher/dl-teacher"
cached_epoch "$tmp/noteacher"
rm "$tmp/noteacher/epoch-200/teacher.dlt"
rc=0; submit "$tmp/noteacher" 200 "$tmp/bin-noteacher" --teacher-mem 1G > /dev/null 2> "$tmp/log/submit-noteacher.log" || rc=$?
((rc == 1)) || fail "an epoch whose teacher fails exited $rc, not 1"
[[ ! -e "$tmp/noteacher/epoch-200/verdict.json" ]] || fail "an epoch whose teacher failed wrote a verdict"
grep -q "broken on purpose" "$tmp/noteacher/epoch-200"/slurm/teacher-*.log || fail "the teacher job did not run"
! ls "$tmp/noteacher/epoch-200/slurm/" | grep -q '^student-\|^finish-' || fail "student or finish jobs ran after the teacher failed"
say "students failing twice, or the teacher failing, fail the epoch: exit 1, no verdict.json, the jobs after never ran"

stop
for _ in $(seq 100); do
  [[ -z "$(pgrep -f -- "$tmp" || true)$(pgrep -x slurmstepd || true)" ]] && break
  sleep 0.1
done
left="$(pgrep -a -f -- "$tmp" || true)$(pgrep -a -x slurmstepd || true)"
[[ -z "$left" ]] || fail "left running: $left"
say "all daemons stopped; nothing left running"

#!/usr/bin/env bash
# A memory limit: dl-teacher and dl-kl on the demo checkpoints refuse, before loading anything, a run the
# limit cannot hold, by its size (the memory plan, docs/FORMATS.md "Memory plan"), with one line and
# exit 1 — never killed or stuck halfway through writing:
#   - under `ulimit -v` (RLIMIT_AS): the limit at which each tool's plan stops refusing is found by
#     bisection (to 1 MiB); 1 MiB below it: exit 1, one error line ("... RLIMIT_AS is ...; not started"),
#     no output file and no NAME.tmp-PID; 1 MiB above it: the run completes with the unlimited run's
#     bytes. dl-teacher's threshold is its `--plan` address_space_need; dl-kl's moves with --chunk by the
#     chunk's logits and teacher rows.
#   - far below (150 MB, where OpenBLAS cannot even get its buffers): still refused and exited within
#     10 s (such a run used to hang at exit, in OpenBLAS's destructor).
#   - under a memory cgroup (v2 memory.max or v1 memory.limit_in_bytes, in a child of this process's
#     cgroup) where one can be made here: 8 MiB below dl-teacher's plan (need_bytes) refused, 64 MiB
#     above it the run completes. Where none can be made, the test says so and skips only that part.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${DISTIL_BIN:-$(cd "$root" && swift build --show-bin-path)}"
[[ -x "$bin/dl-teacher" ]] || { echo "memory test: $bin/dl-teacher missing: run scripts/setup.sh" >&2; exit 1; }
t="$(mktemp -d /tmp/distil-memory.XXXXXX)"
cg=""
cleanup() { [[ -n "$cg" && -d "$cg" ]] && rmdir "$cg" 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT
fail() { echo "memory test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "memory test: ok: $*" >&2; }

demo="$root/demo"
h=$(printf 'demo block 200' | sha256sum | cut -c1-64)
"$bin/dl-prompts" sample --block 200 --block-hash "$h" --count 4 "$demo/corpus.jsonl.zst" > "$t/prompts.jsonl" 2> /dev/null
teacher=("$bin/dl-teacher" --model "$demo/teacher" --max-new-tokens 24 --threads 1 --block 200 --block-hash "$h" "$t/prompts.jsonl")
kl=("$bin/dl-kl" --model "$demo/challenger" --threads 1 "$t/teacher.dlt")
"${teacher[@]}" -o "$t/teacher.dlt" 2> /dev/null || fail "dl-teacher without a limit"
"${kl[@]}" -o "$t/kl.jsonl" 2> /dev/null || fail "dl-kl without a limit"

# limited KB OUT CMD...: CMD -o OUT under ulimit -v KB (at most 60 s); prints "refused", "ran" or what
# else happened; the log is $t/run.log.
limited() {
  local kb=$1 out=$2 rc=0; shift 2
  rm -f "$out"
  (ulimit -v "$kb"; exec timeout 60 "$@" -o "$out") > /dev/null 2> "$t/run.log" || rc=$?
  if ((rc == 0)); then echo ran
  elif ((rc == 1)) && grep -q ': error: .*RLIMIT_AS is .*; not started$' "$t/run.log"; then echo refused
  else echo "exit $rc: $(tail -n 2 "$t/run.log" | tr '\n' ' ')"; fi
}
# threshold NAME CMD...: the smallest ulimit -v (KB, to 1 MiB) at which CMD's plan no longer refuses.
threshold() {
  local name=$1 lo=200000 hi=4000000 mid r; shift
  [[ $(limited "$lo" "$t/probe" "$@") == refused ]] || fail "$name runs under ulimit -v $lo"
  r=$(limited "$hi" "$t/probe" "$@"); [[ $r == ran ]] || fail "$name under ulimit -v $hi: $r"
  while ((hi - lo > 1024)); do
    mid=$(((lo + hi) / 2))
    r=$(limited "$mid" "$t/probe" "$@")
    case "$r" in ran) hi=$mid ;; refused) lo=$mid ;; *) fail "$name under ulimit -v $mid: $r" ;; esac
  done
  echo "$hi"
}
# around NAME OUT REF CMD...: 1 MiB below the threshold refused cleanly, 1 MiB above it the same bytes.
around() {
  local name=$1 out=$2 ref=$3 th r; shift 3
  th=$(threshold "$name" "$@")
  r=$(limited $((th - 1024)) "$out" "$@")
  [[ $r == refused ]] || fail "$name 1 MiB below its plan ($((th - 1024)) KB): $r"
  [[ $(grep -c ': error: ' "$t/run.log") == 1 ]] || fail "$name: not one error line: $(cat "$t/run.log")"
  [[ ! -e "$out" && -z "$(find "$t" -name "$(basename "$out").tmp-*")" ]] || fail "$name refused but left its output"
  local line; line=$(grep ': error: ' "$t/run.log")
  r=$(limited $((th + 1024)) "$out" "$@")
  [[ $r == ran ]] || fail "$name 1 MiB above its plan ($((th + 1024)) KB): $r"
  cmp -s "$out" "$ref" || fail "$name 1 MiB above its plan: not the unlimited run's bytes"
  ok "$name: its plan's limit is $th KB of address space; 1 MiB below: exit 1, '${line#*: error: }', nothing written; 1 MiB above: the unlimited run's bytes"
  eval "${name//-/_}_threshold=$th"
}
around dl-teacher "$t/teacher-limited.dlt" "$t/teacher.dlt" "${teacher[@]}"
plan=$("${teacher[@]}" --plan | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["address_space_need"], d["need_bytes"])')
read -r as_need need <<< "$plan"
# The plan's figure (without a limit) and the limit bisected agree to within 8 MiB (the process's own
# address space at plan time differs a little under a limit).
diff=$((dl_teacher_threshold * 1024 - as_need)); diff=${diff#-}
((diff <= 8 << 20)) || fail "dl-teacher --plan says $as_need bytes of address space, the refusals stop at $((dl_teacher_threshold * 1024))"
ok "dl-teacher --plan's address_space_need ($as_need bytes) is where the refusals stop (within $((diff >> 10)) KB)"
around dl-kl "$t/kl-limited.jsonl" "$t/kl.jsonl" "${kl[@]}"
# dl-kl's plan counts its --chunk: a chunk's logits (f32) and four chunks of encoded teacher rows
# (2 x vocab + 4 + 8 x min(vocab, 4096) bytes each). From the default chunk of 128 to 2048 the limit
# must move up by that much (vocab 512: 1920 x 22,544 bytes, 41 MiB), to within 2 MiB.
around dl-kl-chunk2048 "$t/kl-limited.jsonl" "$t/kl.jsonl" "${kl[@]}" --chunk 2048
grow=$(((dl_kl_chunk2048_threshold - dl_kl_threshold) * 1024)) want=$((1920 * (512 * 4 + 4 * (2 * 512 + 4 + 8 * 512))))
diff=$((grow - want)); diff=${diff#-}
((diff <= 2 << 20)) || fail "dl-kl --chunk 2048's limit is $grow bytes above --chunk 128's, not the $want its buffers take"
ok "dl-kl --chunk 2048 needs $grow bytes more address space than --chunk 128 (its logits and teacher rows: $want)"

for name in dl-teacher dl-kl; do
  if [[ $name == dl-teacher ]]; then cmd=("${teacher[@]}"); else cmd=("${kl[@]}"); fi
  s0=$SECONDS
  r=$(limited 150000 "$t/far" "${cmd[@]}")
  [[ $r == refused ]] || fail "$name under ulimit -v 150000: $r"
  ((SECONDS - s0 <= 10)) || fail "$name under ulimit -v 150000 took $((SECONDS - s0)) s to exit"
  ok "$name far below its plan (ulimit -v 150000): refused and exited in $((SECONDS - s0)) s"
done

# --- a memory cgroup ------------------------------------------------------------------------------
own=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup)
v1=$(sed -n 's/^[0-9]*:[^:]*\bmemory\b[^:]*:\(.*\)$/\1/p' /proc/self/cgroup)
if [[ -n "$own" && -w "/sys/fs/cgroup$own" && -e "/sys/fs/cgroup$own/memory.max" ]] && grep -qw memory "/sys/fs/cgroup$own/cgroup.subtree_control" 2>/dev/null; then
  cg="/sys/fs/cgroup${own%/}/distil-memory-test-$$" limit_file=memory.max
elif [[ -n "$v1" && -w "/sys/fs/cgroup/memory${v1%/}" ]]; then
  cg="/sys/fs/cgroup/memory${v1%/}/distil-memory-test-$$" limit_file=memory.limit_in_bytes
fi
if [[ -n "$cg" ]] && mkdir "$cg" 2>/dev/null; then
  # in_cgroup BYTES OUT CMD...: CMD -o OUT in the child cgroup limited to BYTES.
  in_cgroup() {
    local bytes=$1 out=$2 rc=0; shift 2
    echo "$bytes" > "$cg/$limit_file"
    rm -f "$out"
    bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec timeout 60 "$@"' _ "$cg" "$@" -o "$out" > /dev/null 2> "$t/run.log" || rc=$?
    echo "$rc"
  }
  below=$((need - (8 << 20))) above=$((need + (64 << 20)))
  rc=$(in_cgroup "$below" "$t/cg.dlt" "${teacher[@]}")
  [[ $rc == 1 ]] && grep -q ': error: .*(cgroup); not started$' "$t/run.log" || fail "dl-teacher in a cgroup 8 MiB below its plan: exit $rc: $(cat "$t/run.log")"
  [[ ! -e "$t/cg.dlt" ]] || fail "dl-teacher refused in a cgroup but left its output"
  line=$(grep ': error: ' "$t/run.log")
  rc=$(in_cgroup "$above" "$t/cg.dlt" "${teacher[@]}")
  [[ $rc == 0 ]] && cmp -s "$t/cg.dlt" "$t/teacher.dlt" || fail "dl-teacher in a cgroup 64 MiB above its plan: exit $rc: $(tail -n 2 "$t/run.log")"
  ok "dl-teacher in a memory cgroup ($limit_file): 8 MiB below its plan's need_bytes ($need): '${line#*: error: }'; 64 MiB above: the unlimited run's bytes"
else
  echo "memory test: no memory cgroup can be made here (cgroup v2 with the memory controller delegated, or v1, writable): the cgroup part is skipped" >&2
fi
echo "memory test: $checks passed, 0 failed"

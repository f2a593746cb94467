#!/usr/bin/env bash
# A full disk: a small tmpfs mounted here (needs root, as CI runs), filled up to a chosen number of free
# bytes, holds the outputs, the work folder and the Hub cache.
#   - every tool that writes a file (dl-fetch, dl-check, dl-prompts, dl-teacher, dl-kl, dl-judge), into a
#     named output (-o / --out / --out-dir / --state) and into stdout redirected to a file, with no room
#     or room for half of its output: exit 1, one error line naming the file and "No space left on
#     device", no output and no NAME.tmp-PID left (a redirected stdout's file is its caller's to remove);
#     dl-judge places neither the verdict nor the new state (the state stays as it was);
#   - after space is freed, the same command writes the undisturbed bytes;
#   - pipelines/epoch.sh on a work folder with room for a few sizes (so that it stops in different
#     stages): exit 1, the failing file named, no NAME.part / NAME.tmp-PID left, every artifact there
#     byte-identical to an undisturbed run's (state.json included); after space is freed the rerun
#     completes with the undisturbed bytes.
#   - dl-check with --registry: the verdicts and the registry placed together or neither (no room; room
#     for the verdicts only), the registry as it was; once freed, both;
#   - dl-fetch from a Hub (a stand-in server on loopback) into a Hub cache on the full disk (no room;
#     half the model's size): exit 1 with the cache file named (a full disk of ours is no model's
#     `transient`), no manifest, no blob or snapshot link placed for a file it could not write; after
#     space is freed it completes, the snapshot the model's bytes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${DISTIL_BIN:-$(cd "$root" && swift build --show-bin-path)}"
[[ -x "$bin/dl-fetch" ]] || { echo "diskfull test: $bin/dl-fetch missing: run scripts/setup.sh" >&2; exit 1; }
t="$(mktemp -d /tmp/distil-diskfull.XXXXXX)"
m="$t/mnt"
mkdir -p "$m"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null
  mountpoint -q "$m" && umount "$m"
  rm -rf "$t"
}
trap cleanup EXIT
mount -t tmpfs -o size=4m tmpfs "$m" || { echo "diskfull test: cannot mount a tmpfs (needs root)" >&2; exit 1; }
fail() { echo "diskfull test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "diskfull test: ok: $*" >&2; }

# full LEFT: the tmpfs filled until LEFT bytes are free; free: the filler removed.
full() {
  rm -f "$m/filler"
  local avail; avail=$(df -B1 --output=avail "$m" | tail -n 1)
  ((avail > $1)) || fail "the tmpfs has only $avail bytes free"
  head -c $((avail - $1)) /dev/zero > "$m/filler"
}
free_space() { rm -f "$m/filler"; }

source "$root/scripts/tests/lib/demo-epochs.sh"
ref="$t/ref"
for b in 120 200; do
  args "$ref" "$b"; "${a[@]}" > /dev/null 2> "$t/ref.log" || { cat "$t/ref.log" >&2; fail "undisturbed epoch $b"; }
  ((b == 120)) && cp -a "$ref" "$t/ref-120"
done
r="$ref/epoch-200"

# error_line LOG FILE: the log has exactly one error line, naming FILE and the full disk.
error_line() {
  local n; n=$(grep -c ': error: ' "$1" || true)
  ((n == 1)) || fail "$n error lines, not 1: $(cat "$1")"
  grep ': error: ' "$1" | grep -qF "$2" || fail "the error line does not name $2: $(grep ': error: ' "$1")"
  grep ': error: ' "$1" | grep -q "No space left on device" || fail "the error line does not say the disk is full: $(grep ': error: ' "$1")"
}

# tool NAME OUT LEFT stdout|named CMD...: CMD writes OUT (the word OUT in CMD stands for its path):
# once into the reference folder; on the tmpfs with LEFT bytes free (must fail as said above); and
# again there once the space is freed (must give the reference's bytes).
tool() {
  local name=$1 out=$2 left=$3 how=$4 rc=0 w; shift 4
  # @OUT@: the output's path; @DIR@: its folder.
  sub() { w=(); local x; for x in "$@"; do x=${x//@OUT@/$o}; w+=("${x//@DIR@/$(dirname "$o")}"); done; }
  local o="$t/refout/$out"; mkdir -p "$(dirname "$o")"; sub "$@"
  if [[ $how == stdout ]]; then "${w[@]}" > "$o" 2> "$t/tool.log" || rc=$?; else "${w[@]}" > /dev/null 2> "$t/tool.log" || rc=$?; fi
  ((rc == 0)) || { cat "$t/tool.log" >&2; fail "$name undisturbed: exit $rc"; }
  o="$m/out/$out"; mkdir -p "$(dirname "$o")"; sub "$@"
  full "$left"
  if [[ $how == stdout ]]; then "${w[@]}" > "$o" 2> "$t/tool.log" || rc=$?; else "${w[@]}" > /dev/null 2> "$t/tool.log" || rc=$?; fi
  ((rc == 1)) || { cat "$t/tool.log" >&2; fail "$name on a full disk ($left bytes free): exit $rc, not 1"; }
  local named=$o
  [[ $how == stdout ]] && named="stdout ($o)"
  error_line "$t/tool.log" "$named"
  local line; line=$(grep ': error: ' "$t/tool.log")
  if [[ $how == named ]]; then [[ ! -e "$o" ]] || fail "$name left $o on a full disk"; else rm -f "$o"; fi
  local left_over; left_over=$(find "$m/out" -name '*.tmp-*')
  [[ -z "$left_over" ]] || fail "$name left $left_over"
  free_space
  rc=0
  if [[ $how == stdout ]]; then "${w[@]}" > "$o" 2> "$t/tool.log" || rc=$?; else "${w[@]}" > /dev/null 2> "$t/tool.log" || rc=$?; fi
  ((rc == 0)) || { cat "$t/tool.log" >&2; fail "$name once space was freed: exit $rc"; }
  diff -r "$m/out" "$t/refout" >&2 || fail "$name once space was freed: the output differs from the undisturbed one"
  ok "$name ($how output, $left bytes free): exit 1, '${line#*: error: }', nothing left; once freed, the undisturbed bytes"
  rm -rf "$m/out" "$t/refout"
}

tool dl-fetch manifests.jsonl 0 named "$bin/dl-fetch" -o @OUT@ "$t/commitments-200.jsonl"
tool dl-fetch manifests.jsonl 0 stdout "$bin/dl-fetch" "$t/commitments-200.jsonl"
tool dl-check checks.jsonl 0 named "$bin/dl-check" --vocab-size 512 --max-params 5300000000 \
  --teacher-tokenizer "$demo/teacher" -o @OUT@ "$r/manifests.jsonl"
tool dl-check checks.jsonl 0 stdout "$bin/dl-check" --vocab-size 512 --max-params 5300000000 \
  --teacher-tokenizer "$demo/teacher" "$r/manifests.jsonl"
prompts=(sample --block 200 --block-hash "$(hash 200)" --count 4 "$demo/corpus.jsonl.zst")
tool dl-prompts prompts.jsonl 0 named "$bin/dl-prompts" "${prompts[@]}" -o @OUT@
tool dl-prompts prompts.jsonl 0 stdout "$bin/dl-prompts" "${prompts[@]}"
teacher=(--model "$demo/teacher" --max-new-tokens 24 --threads 1 --block 200 --block-hash "$(hash 200)" "$r/prompts.jsonl")
half=$(($(stat -c %s "$r/teacher.dlt") / 2))
tool dl-teacher teacher.dlt "$half" named "$bin/dl-teacher" "${teacher[@]}" -o @OUT@
tool dl-teacher teacher.dlt "$half" stdout "$bin/dl-teacher" "${teacher[@]}"
tool dl-kl kl.jsonl 0 named "$bin/dl-kl" --model "$demo/challenger" --threads 1 -o @OUT@ "$r/teacher.dlt"
tool dl-kl kl.jsonl 0 stdout "$bin/dl-kl" --model "$demo/challenger" --threads 1 "$r/teacher.dlt"
tool dl-kl kl/1.jsonl 0 named "$bin/dl-kl" --checks "$r/plan.jsonl" --threads 1 --out-dir @DIR@ "$r/teacher.dlt"

# paired NAME OUT KEPT BEFORE LEFT CMD...: CMD writes $m/out/OUT and rewrites $m/out/KEPT (which starts
# as a copy of BEFORE); with LEFT bytes free it must exit 1 with one line naming $m/out/, place
# neither (OUT absent, KEPT still BEFORE's bytes) and leave no temporary; then, once the space is
# freed, it runs again (the caller compares what it placed). Sets `line`: the error line.
paired() {
  local name=$1 out=$2 kept=$3 before=$4 left=$5 rc=0; shift 5
  mkdir -p "$m/out"
  cp "$before" "$m/out/$kept"
  full "$left"
  "$@" > /dev/null 2> "$t/tool.log" || rc=$?
  ((rc == 1)) || { cat "$t/tool.log" >&2; fail "$name on a full disk ($left bytes free): exit $rc"; }
  error_line "$t/tool.log" "$m/out/"
  [[ ! -e "$m/out/$out" ]] || fail "$name placed $out on a full disk ($left bytes free) without $kept"
  cmp -s "$m/out/$kept" "$before" || fail "$name changed $kept on a full disk ($left bytes free)"
  [[ -z "$(find "$m/out" -name '*.tmp-*')" ]] || fail "$name left $(find "$m/out" -name '*.tmp-*')"
  line=$(grep ': error: ' "$t/tool.log")
  free_space
  "$@" > /dev/null 2> "$t/tool.log" || { cat "$t/tool.log" >&2; fail "$name once space was freed"; }
}

# dl-check with a registry: the verdicts and the registry are placed together or not at all, with no room
# and with room for the verdicts but not the registry (it starts from epoch 120's).
check=("$bin/dl-check" --vocab-size 512 --max-params 5300000000 --teacher-tokenizer "$demo/teacher" "$r/manifests.jsonl")
mkdir -p "$t/refout"
cp "$t/ref-120/registry.json" "$t/refout/registry.json"
"${check[@]}" --registry "$t/refout/registry.json" -o "$t/refout/checks.jsonl" 2> "$t/tool.log" || { cat "$t/tool.log" >&2; fail "dl-check --registry undisturbed"; }
cmp -s "$t/refout/registry.json" "$t/ref-120/registry.json" && fail "the registry of epoch 120 did not change in epoch 200: the case tests nothing"
cpages=$((($(stat -c %s "$t/refout/checks.jsonl") + 4095) / 4096 * 4096))
for left in 0 "$cpages"; do
  paired "dl-check --registry" checks.jsonl registry.json "$t/ref-120/registry.json" "$left" \
    "${check[@]}" --registry "$m/out/registry.json" -o "$m/out/checks.jsonl"
  diff -r "$m/out" "$t/refout" >&2 || fail "dl-check --registry once space was freed: not the undisturbed verdicts and registry"
  ok "dl-check -o and --registry ($left bytes free: room for $( ((left)) && echo "the verdicts, not the registry" || echo "neither")): exit 1, '${line#*: error: }', neither placed, the registry as it was; once freed, both"
  rm -rf "$m/out"
done
rm -rf "$t/refout"

# dl-fetch from a Hub (a stand-in on loopback) into a Hub cache on the full disk: ours, not the model's,
# so not a `transient` manifest but exit 1 (docs/FORMATS.md, dl-fetch); nothing placed for the file it
# could not write (the .incomplete part stays for the next run to resume, as huggingface_hub's does).
python3 "$root/scripts/tests/lib/hub_standin.py" "$t/hub.port" demo/king="$demo/king" 2> "$t/hub.log" &
server=$!
for _ in $(seq 100); do [[ -s "$t/hub.port" ]] && break; sleep 0.1; done
[[ -s "$t/hub.port" ]] || fail "the Hub stand-in did not start"
king_bytes=$(du -sb --apparent-size "$demo/king" | cut -f1)
fetch=(env HF_ENDPOINT="http://127.0.0.1:$(cat "$t/hub.port")" HF_HUB_CACHE="$m/hf" "$bin/dl-fetch" --model demo/king
       --uid 1 --hotkey hk --block 100 --attempts 1)
for left in 0 $((king_bytes / 2)); do
  rm -rf "$m/hf" "$m/out"; mkdir -p "$m/out"
  full "$left"
  rc=0; "${fetch[@]}" -o "$m/out/manifests.jsonl" 2> "$t/tool.log" || rc=$?
  ((rc == 1)) || { cat "$t/tool.log" >&2; fail "dl-fetch into a full Hub cache ($left bytes free): exit $rc, not 1"; }
  error_line "$t/tool.log" "$m/hf/"
  [[ ! -e "$m/out/manifests.jsonl" && -z "$(find "$m/out" -name '*.tmp-*')" ]] || fail "dl-fetch into a full Hub cache left a manifest"
  # Every blob placed is whole and verified (its name is its SHA-256 or git blob id), every snapshot link leads to one.
  while read -r b; do
    name=$(basename "$b")
    [[ ${#name} == 64 ]] && { [[ $(sha256sum "$b" | cut -c1-64) == "$name" ]] || fail "dl-fetch placed a blob $b that is not whole"; }
  done < <(find "$m/hf" -path '*/blobs/*' -type f ! -name '*.incomplete' ! -name '*.part' ! -name '*.frontier' 2>/dev/null)
  [[ -z "$(find -L "$m/hf" -path '*/snapshots/*' -type l 2>/dev/null)" ]] || fail "dl-fetch left a snapshot link to a missing blob"
  line=$(grep ': error: ' "$t/tool.log")
  free_space
  "${fetch[@]}" -o "$m/out/manifests.jsonl" 2> "$t/tool.log" || { cat "$t/tool.log" >&2; fail "dl-fetch once space was freed"; }
  grep -q '"outcome":"ok"' "$m/out/manifests.jsonl" || fail "dl-fetch once space was freed: $(cat "$m/out/manifests.jsonl")"
  snap=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["path"])' "$m/out/manifests.jsonl")
  diff -r "$snap" "$demo/king" >&2 || fail "dl-fetch once space was freed: the snapshot is not demo/king"
  ok "dl-fetch into a full Hub cache ($left bytes free, the model is $king_bytes): exit 1, '${line#*: error: }', no manifest, no partial blob placed; once freed, fetched whole"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""

# dl-judge: the verdict and the new state are placed together or not at all, with no room, and with room
# for the verdict but not the state.
judge=(--checks "$r/checks.jsonl" --recheck "$r/recheck.jsonl" --block 200 --epsilon 0.01 "$r"/kl/*.jsonl)
vpages=$((($(stat -c %s "$r/verdict.json") + 4095) / 4096 * 4096))
for left in 0 "$vpages"; do
  paired dl-judge verdict.json state.json "$r/state-before.json" "$left" \
    "$bin/dl-judge" "${judge[@]}" --state "$m/out/state.json" --out "$m/out/verdict.json"
  cmp -s "$m/out/verdict.json" "$r/verdict.json" && cmp -s "$m/out/state.json" "$r/state.json" \
    || fail "dl-judge once space was freed: not the epoch's verdict and state"
  ok "dl-judge ($left bytes free: room for $( ((left)) && echo "the verdict, not the state" || echo "neither")): exit 1, '${line#*: error: }', neither placed, the state as it was; once freed, the epoch's verdict and state"
  rm -rf "$m/out"
done

# --- pipelines/epoch.sh on a full disk -----------------------------------------------------------------
# pages DIR FILE...: the tmpfs pages those files of DIR take.
pages() { local d=$1 f n=0; shift; for f in "$@"; do n=$((n + ($(stat -c %s "$d/$f") + 4095) / 4096 * 4096)); done; echo "$n"; }
# Room for LEFT bytes, chosen from the undisturbed artifacts' sizes (in the order the stages write
# them, with a page for timings.jsonl) so that each trial stops in another stage: the fetch (none
# free), the check, the teacher stream half-way, the first KL file, the recheck, the judge; in epoch
# 200 also the copy of the state to DIR/state.json, after the verdict.
prep=$(pages "$t/ref-120" epoch-120/{manifests.jsonl,fetch-stats.json,checks.jsonl,plan.jsonl,prompts.jsonl,state-before.json} registry.json)
teach=$(($(pages "$t/ref-120" epoch-120/teacher.dlt) + prep + 4096))
kl=$((teach + $(pages "$t/ref-120" epoch-120/kl/1.jsonl epoch-120/kl/1.done epoch-120/kl.done)))
# epoch 200 on top of epoch 120's folder (replacing its registry): up to its verdict and state.
judged=$(($(pages "$ref" epoch-200/{manifests.jsonl,fetch-stats.json,checks.jsonl,plan.jsonl,prompts.jsonl,state-before.json,teacher.dlt}) \
  + $(pages "$ref" epoch-200/kl/{1,2}.jsonl epoch-200/kl/{1,2}.done epoch-200/kl.done epoch-200/recheck.jsonl) + 4096))
judged=$((judged + $(pages "$ref" epoch-200/verdict.json epoch-200/state.json)))
declare -A stopped=()
# Epoch 120 on an empty work folder, and epoch 200 on epoch 120's, each with room for LEFT bytes.
for trial in 120:0 120:$((prep / 2)) "120:$(((prep + teach) / 2))" "120:$teach" "120:$kl" 200:0 "200:$judged"; do
  b=${trial%:*} left=${trial#*:} w="$m/w"
  rm -rf "$w"
  if ((b == 200)); then cp -a "$t/ref-120" "$w"; want=$ref; else want=$t/ref-120; fi
  full "$left"
  args "$w" "$b"
  rc=0; "${a[@]}" > /dev/null 2> "$t/epoch.log" || rc=$?
  ((rc == 1)) || { cat "$t/epoch.log" >&2; fail "epoch $b with $left bytes free: exit $rc, not 1"; }
  line=$(grep "No space left on device" "$t/epoch.log" | head -n 1)
  [[ -n "$line" ]] || fail "epoch $b with $left bytes free: no line says the disk is full: $(cat "$t/epoch.log")"
  grep -q "$m/w/" <<< "$line" || fail "epoch $b with $left bytes free: the line does not name the file: $line"
  stage=$(sed -n "s/^epoch $b: \([a-z]*\).* failed (exit [0-9]*)\$/\1/p" "$t/epoch.log" | tail -n 1)
  [[ -n "$stage" ]] || stage="(no stage line)"
  left_over=$(find "$w" -name '*.part' -o -name '*.tmp-*')
  [[ -z "$left_over" ]] || fail "epoch $b with $left bytes free: left $left_over"
  # Each artifact there is the undisturbed one; the folder's registry and state may still be those of
  # before the epoch (epoch 200 starts from epoch 120's folder), never anything else.
  mapfile -t files < <(list "$w" | grep -v '^\./\(registry\|state\)\.json$')
  same_files "$w" "$want" "${files[@]}"
  for f in registry.json state.json; do
    [[ -e "$w/$f" ]] || continue
    cmp -s "$w/$f" "$want/$f" || { ((b == 200)) && cmp -s "$w/$f" "$t/ref-120/$f"; } || fail "epoch $b with $left bytes free: $f is neither before nor after the epoch"
  done
  free_space
  "${a[@]}" > /dev/null 2> "$t/epoch.log" || { cat "$t/epoch.log" >&2; fail "epoch $b with $left bytes free: the rerun once freed failed"; }
  same "$w" "$want"
  stopped[$stage]=1
  ok "epoch.sh at block $b with $left bytes free: exit 1 in the $stage stage ('${line:0:160}'), nothing half-written, every artifact there the undisturbed bytes; once freed the rerun completes identical"
done
((${#stopped[@]} >= 4)) || fail "the full disk stopped only these stages: ${!stopped[*]}"
ok "the full disk stopped epoch.sh in ${#stopped[@]} different stages: ${!stopped[*]}"
echo "diskfull test: $checks passed, 0 failed"

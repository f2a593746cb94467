#!/usr/bin/env bash
# Failure isolation end to end (docs/FORMATS.md "Scoring failure"): pipelines/epoch.sh on the demo
# checkpoints plus one challenger that passes dl-check but cannot be scored.
#   - the checkpoint's fault: uid 3 is demo/challenger with its final norm's weights set to 3e38
#     (finite, so not NAN_WEIGHTS; far from the challenger's, so not COPY): its logits overflow and
#     its KL is not finite. The epoch completes, king and challenger are judged exactly as the judge
#     judges them without uid 3 (the demo's verdict), uid 3 is rejected (UNSCORABLE, no_weight, recorded in the state, never planned again),
#     and pipelines/reproduce.sh re-scores the epoch to a byte-identical verdict.
#   - ours: uid 2's weights file disappears after the check (a dangling link): its failure is ours,
#     the king keeps the crown, uid 2 is pending and not recorded; with the file back, the next epoch
#     plans it again, scores it and crowns it.
#   - a dl-kl killed by a signal twice: the task records a failure of ours and the epoch completes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
[[ -x "$bin/dl-kl" ]] || { echo "isolation test: $bin/dl-kl missing: run scripts/setup.sh" >&2; exit 1; }
t="$(mktemp -d /tmp/distil-isolation-test.XXXXXX)"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$t"' EXIT
fail() { echo "isolation test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "isolation test: ok: $*" >&2; }
start=$SECONDS

demo="$root/demo"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }
# epoch WORK BLOCK COMMITMENTS [epoch.sh options]: one epoch with the demo's settings.
epoch() {
  local w=$1 b=$2 c=$3; shift 3
  "$root/pipelines/epoch.sh" --work "$w" --teacher "$demo/teacher" --count 8 --max-new-tokens 40 --vocab-size 512 \
    --max-params 5300000000 --bin "$bin" --commitments "$c" --block "$b" --block-hash "$(hash "$b")" "$@" \
    "$demo/corpus.jsonl.zst" > /dev/null 2>> "$t/epochs.log" || { tail -20 "$t/epochs.log" >&2; fail "epoch $b in $w failed"; }
}
# field FILE EXPR: a Python expression over FILE's JSON lines ls (d: the only one), or its one
# pretty-printed JSON document d.
field() {
  python3 -c 'import json,sys
t = open(sys.argv[1]).read()
try: ls = [json.loads(l) for l in t.splitlines() if l.strip()]
except ValueError: ls = [json.loads(t)]
d = ls[0] if len(ls) == 1 else None
print(eval(sys.argv[2]))' "$1" "$2"
}

# The checkpoint that cannot be scored.
cp -r "$demo/challenger" "$t/bad"
python3 - "$t/bad/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
lo, hi = json.loads(b[8:8 + n])['model.norm.weight']['data_offsets']
big = struct.pack('<f', 3.0e38)[2:]   # bf16 is the top half of an f32
for o in range(8 + n + lo, 8 + n + hi, 2):
    b[o:o + 2] = big
open(p, 'wb').write(b)
EOF
king="{\"block\": 100, \"hotkey\": \"5DemoKingHotkey\", \"repo\": \"$demo/king\", \"uid\": 1}"
chal="{\"block\": 150, \"hotkey\": \"5DemoChallengerHotkey\", \"repo\": \"$demo/challenger\", \"uid\": 2}"
bad="{\"block\": 180, \"hotkey\": \"5BadHotkey\", \"repo\": \"$t/bad\", \"uid\": 3}"
printf '%s\n' "$king" > "$t/c-king.jsonl"
printf '%s\n' "$king" "$chal" > "$t/c-demo.jsonl"
printf '%s\n' "$king" "$chal" "$bad" > "$t/c-bad.jsonl"

# Every case starts from the demo's first epoch: the king alone, crowned at block 120.
epoch "$t/base" 120 "$t/c-king.jsonl"
# from_base DIR: a work folder holding that epoch (the paths inside stay valid: they name the models).
from_base() { cp -r "$t/base" "$1"; }

# 1. The checkpoint's fault.
w="$t/miner"
from_base "$w"
epoch "$w" 200 "$t/c-bad.jsonl"
e="$w/epoch-200"
[[ "$(field "$e/checks.jsonl" '[l["reason"] for l in ls]')" == "['OK', 'OK', 'OK']" ]] || fail "every model should pass dl-check"
[[ "$(field "$e/kl/3.jsonl" '(len(ls), d["fault"], d["uid"], "non-finite KL" in d["message"])')" == "(1, 'miner', 3, True)" ]] \
  || fail "kl/3.jsonl should hold one scoring failure of the miner's: $(cat "$e/kl/3.jsonl")"
[[ "$(field "$e/kl/3.done" 'd["failed"]')" == miner ]] || fail "kl/3.done should note the failure: $(cat "$e/kl/3.done")"
grep -q '"failed":"miner"' "$e/kl.done" || fail "kl.done should list the failed model"
[[ "$(field "$e/timings.jsonl" '[(l["uid"], l["exit"]) for l in ls if l["stage"] == "kl"]')" == "[(1, 0), (2, 0), (3, 0)]" ]] \
  || fail "every kl task should be a finished one: $(grep '"kl"' "$e/timings.jsonl")"
ok "a model whose KL is not finite gets a scoring-failure record (miner), its task finishes, the epoch completes"
# The reference: the judge over the same KL files of king and challenger, without uid 3 at all.
grep -v '"uid":3,' "$e/checks.jsonl" > "$t/checks-demo.jsonl"
"$bin/dl-judge" --checks "$t/checks-demo.jsonl" --state "$e/state-before.json" --no-state-update --block 200 \
  --out "$t/verdict-demo.json" "$e/kl/1.jsonl" "$e/kl/2.jsonl" 2>> "$t/epochs.log"
python3 - "$e/verdict.json" "$t/verdict-demo.json" <<'EOF' || fail "the verdict should judge king and challenger as without uid 3 and reject uid 3"
import json, sys
v, ref = (json.load(open(p)) for p in sys.argv[1:])
assert v["models"] == ref["models"] and v["winner"] == ref["winner"] == 2 and v["reason"] == ref["reason"], "models differ"
u = v["unscored"]
assert [(x["uid"], x["fault"], x["reason"], x["outcome"]) for x in u] == [(3, "miner", "UNSCORABLE", "no_weight")], u
assert "non-finite KL" in u[0]["message"], u
assert [(x["uid"], x["weight"]) for x in v["weights"]] == [(1, 0), (2, 1), (3, 0)], v["weights"]
assert "unscored" not in ref
EOF
python3 - "$w/state.json" <<'EOF' || fail "the state should record uid 3 as rejected"
import json, sys
s = json.load(open(sys.argv[1]))
m = [x for x in s["models"] if x["uid"] == 3]
assert len(m) == 1 and m[0]["outcome"] == "no_weight" and m[0]["flags"] == ["UNSCORABLE"] and m[0]["score"]["n_prompts"] == 0, m
assert s["king"]["uid"] == 2
EOF
ok "the judge scores the others exactly as without uid 3 and rejects uid 3 for good (UNSCORABLE, no_weight, in the state)"
grep -q 'UNSCORABLE' "$e/report.html" && grep -q 'its checkpoint could not be scored' "$e/report.html" \
  || fail "the report should show the scoring failure in words"
ok "the report lists the scoring failure with its reason in words"
"$root/pipelines/reproduce.sh" --work "$w" --block 200 --bin "$bin" 2>> "$t/epochs.log" || fail "reproduce.sh: the verdict is not byte-identical"
ok "reproduce.sh re-scores the epoch (the failure again) to a byte-identical verdict"
epoch "$w" 260 "$t/c-bad.jsonl"
[[ ! -s "$w/epoch-260/plan.jsonl" ]] || fail "the rejected model should never be planned again: $(cat "$w/epoch-260/plan.jsonl")"
ok "the next epoch plans nothing: the rejected model is not scored again"

# 2. Ours: the challenger's weights disappear after the check.
w="$t/ours"
cp -r "$demo/challenger" "$t/chal"
printf '%s\n' "$king" "${chal/$demo\/challenger/$t/chal}" > "$t/c-ours.jsonl"
from_base "$w"
epoch "$w" 200 "$t/c-ours.jsonl" --stage fetch,check,plan,prompts,teacher
mv "$t/chal/model.safetensors" "$t/chal.safetensors"
ln -s "$t/nowhere.safetensors" "$t/chal/model.safetensors"
epoch "$w" 200 "$t/c-ours.jsonl"
e="$w/epoch-200"
[[ "$(field "$e/kl/2.jsonl" '(d["fault"], d["message"].startswith("our copy of its files cannot be read: "))')" == "('ours', True)" ]] \
  || fail "kl/2.jsonl should hold a failure of ours: $(cat "$e/kl/2.jsonl")"
python3 - "$e/verdict.json" "$w/state.json" "$w/epoch-120/state.json" <<'EOF' || fail "uid 2 should be pending and the king keep the crown"
import json, sys
v, s, before = (json.load(open(p)) for p in sys.argv[1:])
assert v["winner"] == 1 and v["king_after"]["uid"] == 1, v["reason"]
assert [(x["uid"], x["fault"], x["reason"], x["outcome"]) for x in v["unscored"]] == [(2, "ours", "RETRY", "pending")], v["unscored"]
assert [m["uid"] for m in s["models"]] == [1] and s["king"] == before["king"], "uid 2 must not be recorded"
EOF
ok "a challenger whose weights cannot be read after the check: failure of ours, pending, not recorded; the king keeps the crown"
rm "$t/chal/model.safetensors"
mv "$t/chal.safetensors" "$t/chal/model.safetensors"
epoch "$w" 260 "$t/c-ours.jsonl"
[[ "$(field "$w/epoch-260/plan.jsonl" '[l["uid"] for l in ls]')" == "[1, 2]" ]] || fail "uid 2 should be planned again"
[[ "$(field "$w/epoch-260/verdict.json" 'd["winner"]')" == 2 ]] || fail "uid 2, scored at last, should take the crown"
ok "the next epoch plans it again, scores it, and it takes the crown"

# 3. A dl-kl killed by a signal, twice: recorded as ours; the epoch completes.
w="$t/signal"
from_base "$w"
mkdir -p "$t/segv"
for tool in "$bin"/dl-*; do ln -sf "$tool" "$t/segv/"; done
rm "$t/segv/dl-kl"
# A dl-kl that is killed by SIGSEGV on uid 2 and works on any other model (and records failures).
cat > "$t/segv/dl-kl" <<EOF
#!/usr/bin/env bash
line=\$(cat "\$2")   # the plan line (a pipe: read once, handed on)
if [[ " \$* " != *" --record-failure "* && "\$line" == *'"uid":2,'* ]]; then kill -SEGV \$\$; fi
exec "$bin/dl-kl" --checks <(printf '%s\n' "\$line") "\${@:3}"
EOF
chmod +x "$t/segv/dl-kl"
bin_real=$bin bin="$t/segv"
epoch "$w" 200 "$t/c-demo.jsonl"
bin=$bin_real
e="$w/epoch-200"
[[ "$(field "$e/kl/2.jsonl" '(d["fault"], d["message"])')" == "('ours', 'dl-kl was killed by signal 11 twice while scoring it')" ]] \
  || fail "kl/2.jsonl should hold a failure of ours: $(cat "$e/kl/2.jsonl")"
[[ "$(field "$e/timings.jsonl" '[(l["uid"], l["exit"]) for l in ls if l["stage"] == "kl"]')" == "[(1, 0), (2, 139), (2, 139), (2, 0)]" ]] \
  || fail "the timings should show two crashed runs and the recorded failure: $(grep '"kl"' "$e/timings.jsonl")"
[[ "$(field "$e/verdict.json" '(d["winner"], d["unscored"][0]["outcome"])')" == "(1, 'pending')" ]] || fail "uid 2 should be pending"
ok "dl-kl killed by SIGSEGV twice on a model: a failure of ours, timings say so, the epoch completes"

echo "isolation test: $checks checks passed in $((SECONDS - start)) s" >&2

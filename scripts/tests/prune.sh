#!/usr/bin/env bash
# dl-fetch prune on a Hub cache holding the teacher, a king, two losers, a half-downloaded model, a
# model no longer committed and an operator's own model, on a 16 MiB tmpfs (mounted here: needs root, as CI runs), pruned down to
# a floor; then huggingface_hub's own scan_cache_dir() (pinned in .venv-chain) must read it without
# a warning, the teacher and the king must still load (huggingface_hub offline, dl-fetch --offline
# verifying every hash, dl-check, dl-teacher on the teacher and dl-kl on the king), a huggingface_hub
# lock held on a blob must make dl-fetch wait, and old epoch folders go with --keep-epochs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
./scripts/setup-chain.sh
py="${DISTIL_CHAIN_VENV:-$root/.venv-chain}/bin/python"
bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
t="$(mktemp -d /tmp/distil-prune-test.XXXXXX)"
mnt="$t/mnt"
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$t"; }
trap cleanup EXIT
mount -t tmpfs -o size=16m tmpfs "$mnt" || { echo "prune test: cannot mount a tmpfs (needs root)" >&2; exit 1; }
cache="$mnt/hub"
fail() { echo "prune test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "prune test: ok: $*" >&2; }

# The cache, in huggingface_hub's layout (blobs named by SHA-256 for LFS weights, by git blob id
# otherwise; relative symlinks; refs/main), from the demo checkpoints.
"$py" - "$root/demo" "$cache" "$t" <<'EOF'
import hashlib, json, os, sys
demo, cache, t = sys.argv[1:4]
def put(repo, commit, src, half=False):
    folder = os.path.join(cache, "models--" + repo.replace("/", "--"))
    for d in ("blobs", "snapshots/" + commit, "refs"):
        os.makedirs(os.path.join(folder, d), exist_ok=True)
    for name in sorted(os.listdir(src)):
        data = open(os.path.join(src, name), "rb").read()
        lfs = name.endswith(".safetensors")
        etag = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if half and lfs:
            # A plain prefix, and what a killed segmented download of ours leaves beside it.
            open(os.path.join(folder, "blobs", etag + ".incomplete"), "wb").write(data[: len(data) // 2])
            open(os.path.join(folder, "blobs", etag + ".distil-part.incomplete"), "wb").write(data[: len(data) // 4])
            open(os.path.join(folder, "blobs", etag + ".distil-frontier.incomplete"), "w").write(str(len(data) // 8))
            continue
        open(os.path.join(folder, "blobs", etag), "wb").write(data)
        os.symlink("../../blobs/" + etag, os.path.join(folder, "snapshots", commit, name))
    open(os.path.join(folder, "refs", "main"), "w").write(commit)
put("Qwen/Qwen3.5-35B-A3B", "1" * 40, demo + "/teacher")
put("alice/king", "a" * 40, demo + "/king")
put("bob/loser", "b" * 40, demo + "/challenger")
put("carol/loser", "c" * 40, demo + "/king")
put("dave/half", "d" * 40, demo + "/challenger", half=True)
put("op/own", "e" * 40, demo + "/king")
# Fetched in an earlier epoch (its manifest is in the work folder), failed its check, and no longer committed.
put("frank/gone", "f" * 40, demo + "/challenger")
os.makedirs(t + "/work/epoch-50", exist_ok=True)
open(t + "/work/epoch-50/manifests.jsonl", "w").write(json.dumps({"uid": 5, "hotkey": "hk-f", "block": 40, "repo": "frank/gone",
    "revision": "f" * 40, "commit": "f" * 40, "files": [], "outcome": "ok", "tool": "distil/0.1.0"}) + "\n")
# The epoch at block 300 scored carol/loser: pipelines/reproduce.sh needs its snapshot while that epoch is kept.
os.makedirs(t + "/work/epoch-300", exist_ok=True)
open(t + "/work/epoch-300/plan.jsonl", "w").write(json.dumps({"uid": 3, "hotkey": "hk-c", "block": 120, "repo": "carol/loser",
    "revision": "c" * 40, "commit": "c" * 40, "ok": True, "reason": "OK"}) + "\n")
m = lambda uid, hk, repo, c, block: {"uid": uid, "hotkey": hk, "repo": repo, "revision": c * 40, "block": block}
commits = [m(1, "hk-a", "alice/king", "a", 100), m(2, "hk-b", "bob/loser", "b", 110), m(3, "hk-c", "carol/loser", "c", 120),
           m(4, "hk-d", "dave/half", "d", 130)]
open(t + "/commitments.jsonl", "w").write("".join(json.dumps(c) + "\n" for c in commits))
score = {"n_prompts": 8, "mean_kl": 1.0, "std": 0.1, "se": 0.03, "ci_low": 0.9, "ci_high": 1.1}
def rec(c, outcome, scored):
    return dict(c, commit=c["revision"], scored_block=scored, score=score, flags=[], outcome=outcome)
state = {"version": 1, "king": dict(commits[0], commit="a" * 40, crowned_block=200),
         "models": [rec(commits[0], "king", 200), rec(commits[1], "lost", 200), rec(commits[2], "lost", 300)]}
open(t + "/state.json", "w").write(json.dumps(state, indent=2, sort_keys=True) + "\n")
EOF
scan() {
  "$py" - "$cache" <<'EOF'
import sys
from huggingface_hub import scan_cache_dir
info = scan_cache_dir(sys.argv[1])
for w in info.warnings:
    print("WARNING", w)
print("REPOS", " ".join(sorted(r.repo_id for r in info.repos)))
print("INCOMPLETE", len(info.incomplete_files))
EOF
}
before=$(scan)
grep -q WARNING <<< "$before" && fail "the cache built for the test is not clean: $before"
grep -q "INCOMPLETE 3" <<< "$before" || fail "huggingface_hub does not see our partial files: $before"
grep -q "REPOS Qwen/Qwen3.5-35B-A3B alice/king bob/loser carol/loser dave/half frank/gone op/own" <<< "$before" || fail "scan before: $before"
teacher_snap="$cache/models--Qwen--Qwen3.5-35B-A3B/snapshots/$(printf '1%.0s' {1..40})"
common=(--cache-dir "$cache" --state "$t/state.json" --commitments "$t/commitments.jsonl" --work "$t/work" --keep "$teacher_snap" -q)

# A dry run removes nothing.
"$bin/dl-fetch" prune "${common[@]}" --dry-run > "$t/dry.jsonl"
[[ "$(scan)" == "$before" ]] || fail "--dry-run changed the cache"
[[ $(grep -c '"kind":"snapshot"' "$t/dry.jsonl") == 3 ]] || fail "dry run: $(cat "$t/dry.jsonl")"
ok "--dry-run lists the model no longer committed and the two losers, and removes nothing"

# A floor one byte above the free space now: the model no longer committed goes first, and that is enough.
free=$(df -B1 --output=avail "$mnt" | tail -n 1 | tr -d ' ')
"$bin/dl-fetch" prune "${common[@]}" --min-free $((free + 1)) > "$t/p0.jsonl"
[[ $(grep -c '"kind":"snapshot"' "$t/p0.jsonl") == 1 ]] && grep -q '"repo":"frank/gone".*' "$t/p0.jsonl" \
  && grep -q '"reason":"not_committed"' "$t/p0.jsonl" || fail "not committed first: $(cat "$t/p0.jsonl")"
ok "a floor just above the free space: the model no longer committed (only it) goes first"

# Again: now the loser scored first (bob, block 200) goes, and that is enough.
free=$(df -B1 --output=avail "$mnt" | tail -n 1 | tr -d ' ')
"$bin/dl-fetch" prune "${common[@]}" --min-free $((free + 1)) > "$t/p1.jsonl"
grep -q '"kind":"snapshot".*"repo":"bob/loser"' "$t/p1.jsonl" || fail "bob/loser not removed: $(cat "$t/p1.jsonl")"
grep -q 'carol/loser' "$t/p1.jsonl" && fail "carol/loser removed although the floor was met"
grep -q '"floor_met":true' "$t/p1.jsonl" || fail "floor not met: $(tail -n 1 "$t/p1.jsonl")"
[[ ! -e "$cache/models--bob--loser" ]] || fail "bob's repo folder is still there"
ok "a floor just above the free space: exactly one loser (the first scored) removed, floor met"

# With --keep-epochs 1 the epoch at block 300 stays, and so does the snapshot its plan scored.
"$bin/dl-fetch" prune "${common[@]}" --keep-epochs 1 --min-free 1G > "$t/p1b.jsonl" 2> /dev/null
grep -q '"kind":"snapshot"' "$t/p1b.jsonl" && fail "a snapshot removed although epoch 300 needs it: $(cat "$t/p1b.jsonl")"
grep -q "carol/loser@c\{40\} (reproduce.sh: epoch 300)" "$t/p1b.jsonl" || fail "carol not kept for reproduce.sh: $(tail -n 1 "$t/p1b.jsonl")"
[[ -e "$t/work/epoch-300/plan.jsonl" && ! -e "$t/work/epoch-50" ]] || fail "--keep-epochs 1: $(ls "$t/work")"
ok "--keep-epochs 1: the older epoch folder goes, the kept epoch's scored model (carol) stays for reproduce.sh"

# A floor that cannot be reached, without --keep-epochs: every loser goes, never the teacher, the king, the committed
# half-downloaded model or the operator's own model; a warning, exit 0.
"$bin/dl-fetch" prune "${common[@]}" --min-free 1G > "$t/p2.jsonl" 2> "$t/p2.err" || fail "prune exit $?"
grep -q '"repo":"carol/loser"' "$t/p2.jsonl" || fail "carol/loser not removed"
grep -q '"floor_met":false' "$t/p2.jsonl" && grep -q "below the --min-free floor" "$t/p2.err" || fail "unreachable floor not reported"
after=$(scan)
grep -q WARNING <<< "$after" && fail "huggingface_hub's scan after pruning: $after"
grep -q "REPOS Qwen/Qwen3.5-35B-A3B alice/king dave/half op/own$" <<< "$after" || fail "scan after: $after"
grep -q "INCOMPLETE 3" <<< "$after" || fail "the half-downloaded model's partial files (ours visible to the scan as incomplete) changed: $after"
hf="$(dirname "$py")/hf"
HF_HUB_DISABLE_TELEMETRY=1 "$hf" cache ls --cache-dir "$cache" --format json > "$t/hf-ls.json" 2> "$t/hf-ls.err" || fail "hf cache ls: $(cat "$t/hf-ls.err")"
"$py" -c 'import json,sys; ids=sorted(r["repo_id"] for r in json.load(open(sys.argv[1]))); assert ids==["Qwen/Qwen3.5-35B-A3B","alice/king","dave/half","op/own"], ids' "$t/hf-ls.json" \
  || fail "hf cache ls: $(head -c 600 "$t/hf-ls.json")"
grep -qi "corrupt\|warning" "$t/hf-ls.err" && fail "hf cache ls warns: $(cat "$t/hf-ls.err")"
ok "an unreachable floor: both losers gone, teacher/king/half-downloaded/operator's kept, warning; huggingface_hub's scan_cache_dir() and \`hf cache ls\` read it with no warning"
# The records are the documented ones (the committed sample's fields).
"$py" - "$root/Tests/DistilHubTests/Fixtures/prune.jsonl" "$t/dry.jsonl" "$t/p0.jsonl" "$t/p1.jsonl" "$t/p1b.jsonl" "$t/p2.jsonl" <<'EOF'
import json, sys
sample = [json.loads(l) for l in open(sys.argv[1])]
allowed = {k for r in sample for k in r}
for path in sys.argv[2:]:
    for line in open(path):
        r = json.loads(line)
        assert set(r) <= allowed, (path, set(r) - allowed)
        assert r["kind"] in {"snapshot", "partial", "epoch", "summary"}, r
EOF
ok "every record has only the fields of the committed sample (docs/FORMATS.md)"

# The teacher and the king still load: huggingface_hub offline, then our tools on the snapshots.
HF_HUB_OFFLINE=1 "$py" - "$cache" <<'EOF'
import sys
from huggingface_hub import hf_hub_download
for repo, commit in (("Qwen/Qwen3.5-35B-A3B", "1" * 40), ("alice/king", "a" * 40)):
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        hf_hub_download(repo, f, revision=commit, cache_dir=sys.argv[1], local_files_only=True)
EOF
printf '{"uid":1,"hotkey":"hk-a","block":100,"repo":"alice/king","revision":"%s"}\n' "$(printf 'a%.0s' {1..40})" > "$t/king.jsonl"
# huggingface_hub holds the lock of the king's weights blob for 2 s: dl-fetch waits for it.
blob=$(basename "$(readlink "$cache/models--alice--king/snapshots/$(printf 'a%.0s' {1..40})/model.safetensors")")
"$py" - "$cache/.locks/models--alice--king/$blob.lock" <<'EOF' &
import sys, time
from huggingface_hub.utils import WeakFileLock
with WeakFileLock(sys.argv[1]):
    open(sys.argv[1] + ".held", "w").close()
    time.sleep(2)
EOF
locker=$!
for _ in $(seq 100); do [[ -e "$cache/.locks/models--alice--king/$blob.lock.held" ]] && break; sleep 0.05; done
start=$(date +%s%N)
HF_HUB_OFFLINE=1 HF_HUB_CACHE="$cache" "$bin/dl-fetch" -q "$t/king.jsonl" > "$t/king-manifest.jsonl"
waited=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$locker"
grep -q '"outcome":"ok"' "$t/king-manifest.jsonl" || fail "the king does not load offline: $(cat "$t/king-manifest.jsonl")"
((waited >= 1000)) || fail "dl-fetch did not wait for huggingface_hub's lock (${waited} ms)"
ok "the king loads offline (every blob re-hashed), after waiting ${waited} ms on huggingface_hub's lock"
"$bin/dl-check" -q --vocab-size 512 --teacher-tokenizer "$teacher_snap" "$t/king-manifest.jsonl" > "$t/king-check.jsonl"
grep -q '"ok":true' "$t/king-check.jsonl" || fail "dl-check on the king: $(cat "$t/king-check.jsonl")"
h=$(printf 'prune test' | sha256sum | cut -c1-64)
"$bin/dl-prompts" sample -q --block 1 --block-hash "$h" --count 2 demo/corpus.jsonl.zst > "$t/prompts.jsonl"
"$bin/dl-teacher" -q --model "$teacher_snap" --max-new-tokens 8 --threads 2 --block 1 --block-hash "$h" "$t/prompts.jsonl" > "$t/teacher.dlt"
"$bin/dl-kl" -q --model "$(grep -o '"path":"[^"]*"' "$t/king-manifest.jsonl" | cut -d'"' -f4)" --threads 2 "$t/teacher.dlt" > "$t/king-kl.jsonl"
[[ $(wc -l < "$t/king-kl.jsonl") == 2 ]] || fail "dl-kl on the king: $(cat "$t/king-kl.jsonl")"
ok "dl-check passes the king; dl-teacher runs the teacher and dl-kl the king from the pruned cache"

# Old epoch folders: all but the last K go.
w="$t/epochs"
for b in 100 200 300 400; do mkdir -p "$w/epoch-$b"; echo '{}' > "$w/epoch-$b/verdict.json"; done
"$bin/dl-fetch" prune --cache-dir "$cache" --work "$w" --keep-epochs 2 -q > "$t/p3.jsonl"
[[ ! -e "$w/epoch-100" && ! -e "$w/epoch-200" && -e "$w/epoch-300/verdict.json" && -e "$w/epoch-400/verdict.json" ]] \
  || fail "--keep-epochs 2: $(ls "$w")"
[[ $(grep -c '"kind":"epoch"' "$t/p3.jsonl") == 2 ]] || fail "epoch records: $(cat "$t/p3.jsonl")"
ok "--keep-epochs 2 removes the two oldest epoch folders and keeps the last two whole"
echo "prune test: $checks passed, 0 failed"

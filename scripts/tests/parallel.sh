#!/usr/bin/env bash
# The GNU parallel driver (pipelines/parallel/epoch-parallel.sh) against pipelines/epoch.sh on the demo:
# the block-120 and block-200 epochs (the demo's commands) both ways (block 200 through --sshloginfile
# naming this box, ':'; real ssh hosts are not tested); verdict.json, state.json and
# every kl/UID.jsonl must be the same bytes, and the parallel driver writes report.html and --metrics as
# epoch.sh does. Also checks the committed timings sample
# (Tests/DistilFormatsTests/Samples/timings.jsonl) and the timings.jsonl of both runs against
# docs/FORMATS.md's table. Installs GNU parallel (Debian's `parallel`) if it is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
say() { echo "parallel test: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

if ! dpkg-query -W -f='${Status}' parallel 2>/dev/null | grep -q "install ok installed"; then
  say "installing parallel"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends parallel >&2
fi

# timings.jsonl against FORMATS.md: keys in order, types, a uid only on kl lines.
check_timings() {
  python3 - "$@" <<'PY'
import json, sys
stages = {"fetch", "check", "plan", "prompts", "teacher", "kl", "recheck", "judge"}
for path in sys.argv[1:]:
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines, f"{path}: empty"
    for n, line in enumerate(lines, 1):
        r = json.loads(line)
        keys = list(r)
        want = ["stage", "uid", "seconds", "cached", "exit"] if r.get("stage") == "kl" else ["stage", "seconds", "cached", "exit"]
        assert keys == want, f"{path}:{n}: keys {keys}, want {want}"
        assert r["stage"] in stages, f"{path}:{n}: stage {r['stage']!r}"
        assert type(r["seconds"]) is float and r["seconds"] >= 0, f"{path}:{n}: seconds {r['seconds']!r}"
        assert len(line.split('"seconds":')[1].split(",")[0].split(".")[1]) == 3, f"{path}:{n}: seconds not 3 decimals"
        assert type(r["cached"]) is bool and type(r["exit"]) is int, f"{path}:{n}: cached/exit types"
        assert "uid" not in r or type(r["uid"]) is int, f"{path}:{n}: uid"
PY
}
check_timings Tests/DistilFormatsTests/Samples/timings.jsonl || fail "the committed timings sample does not match FORMATS.md"

bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
[[ -x "$bin/dl-kl" ]] || fail "$bin/dl-kl is missing: build first (scripts/setup.sh)"
tmp="$(mktemp -d /tmp/distil-parallel-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
demo="$root/demo"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }
sed "s|\"repo\": \"demo/|\"repo\": \"$demo/|" "$demo/commitments.jsonl" > "$tmp/commitments-200.jsonl"
head -n 1 "$tmp/commitments-200.jsonl" > "$tmp/commitments-120.jsonl"
args() { # BLOCK: the demo's options for that epoch
  local c=200
  (($1 == 120)) && c=120
  echo --teacher "$demo/teacher" --count 8 --max-new-tokens 40 --vocab-size 512 --max-params 5300000000 \
    --bin "$bin" --commitments "$tmp/commitments-$c.jsonl" --block "$1" --block-hash "$(hash "$1")" "$demo/corpus.jsonl.zst"
}

for b in 120 200; do
  t0=$SECONDS
  # shellcheck disable=SC2046  # args prints words without spaces
  pipelines/epoch.sh --work "$tmp/plain" $(args "$b") > "$tmp/plain-$b.json" 2> "$tmp/plain-$b.log" \
    || { cat "$tmp/plain-$b.log" >&2; fail "epoch.sh at block $b"; }
  t1=$SECONDS
  # Block 120 on this box (--jobs); block 200 through --sshloginfile, whose ':' is this box without ssh
  # (the ssh hosts of a real cluster cannot be had here).
  where=(--jobs 2)
  ((b == 200)) && { echo : > "$tmp/hosts"; where=(--sshloginfile "$tmp/hosts" --jobs 2 --student-threads 1); }
  # shellcheck disable=SC2046
  pipelines/parallel/epoch-parallel.sh "${where[@]}" --metrics "$tmp/par-$b.prom" --work "$tmp/par" $(args "$b") \
    > "$tmp/par-$b.json" 2> "$tmp/par-$b.log" \
    || { cat "$tmp/par-$b.log" >&2; fail "epoch-parallel.sh at block $b"; }
  for f in verdict.json state.json; do
    cmp "$tmp/plain/epoch-$b/$f" "$tmp/par/epoch-$b/$f" || fail "epoch $b: $f differs"
  done
  cmp "$tmp/plain-$b.json" "$tmp/par-$b.json" || fail "epoch $b: the printed verdicts differ"
  [[ "$(cd "$tmp/plain/epoch-$b/kl" && ls -- *.jsonl)" == "$(cd "$tmp/par/epoch-$b/kl" && ls -- *.jsonl)" ]] || fail "epoch $b: other KL files"
  for f in "$tmp/plain/epoch-$b"/kl/*.jsonl; do cmp "$f" "$tmp/par/epoch-$b/kl/$(basename "$f")" || fail "epoch $b: kl/$(basename "$f") differs"; done
  check_timings "$tmp/plain/epoch-$b/timings.jsonl" "$tmp/par/epoch-$b/timings.jsonl" || fail "epoch $b: timings.jsonl"
  [[ -s "$tmp/par/epoch-$b/report.html" ]] || fail "epoch $b: the parallel driver wrote no report.html"
  grep -qx 'distil_epoch_success 1' "$tmp/par-$b.prom" || fail "epoch $b: --metrics did not say the epoch succeeded"
  say "epoch $b: epoch.sh ($((t1 - t0)) s) and GNU parallel ($((SECONDS - t1)) s): verdict, state and KL files byte-identical"
done
n=$(($(wc -l < "$tmp/par/epoch-200/parallel.joblog") - 1))
((n == 2)) || fail "GNU parallel ran $n student jobs at block 200, not 2"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["winner"] != 2)' "$tmp/par/epoch-200/verdict.json" || fail "the challenger did not win at block 200"
[[ $(grep -c '"stage":"kl"' "$tmp/par/epoch-200/timings.jsonl") == 2 ]] || fail "timings.jsonl: not one kl line per student"
say "GNU parallel ran the 2 students of block 200 as 2 jobs; the timings match FORMATS.md"

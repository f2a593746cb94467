#!/usr/bin/env bash
# pipelines/validator.sh end to end on the demo checkpoints, with the chain adapter on a replayed
# chain (DISTIL_CHAIN_REPLAY: the real adapter and SDK over pipelines/chain/replay_substrate.py; every
# submitted extrinsic is logged, so "weights set" is counted, not assumed):
#   - weights are set exactly once per successful epoch, never after a failed one (a failing
#     dl-teacher is injected), and a failed epoch is resumed at the same block;
#   - a run before --interval blocks passed does nothing; a second run holding the lock exits 3;
#     a chain that rejects the weights is exit 13 and the next run sets them; a verdict set-weights
#     refuses is exit 12;
#   - every command line of pipelines/cron.example runs as written (its settings pointed at the demo).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
./scripts/setup-chain.sh
bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
[[ -x "$bin/dl-fetch" ]] || { echo "validator test: $bin/dl-fetch missing: run scripts/setup.sh" >&2; exit 1; }
venv="${DISTIL_CHAIN_VENV:-$root/.venv-chain}"
t="$(mktemp -d /tmp/distil-validator-test.XXXXXX)"
hub_pid=
trap '[[ -z "$hub_pid" ]] || kill "$hub_pid" 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$t"' EXIT
fail() { echo "validator test: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); echo "validator test: ok: $*" >&2; }

# The validator's wallet (hotkey seed 07, registered at uid 0 in the replay) and the replayed chain:
# uid 1 committed demo/king at block 100, uid 2 demo/challenger at block 150 (only from block 150 on).
export BT_WALLET_PATH="$t/wallets"
"$venv/bin/python" - "$t" <<'EOF'
import json, sys
import bittensor as bt
t = sys.argv[1]
bt.Wallet("demo", "validator", path=t + "/wallets").regenerate_hotkey(seed="0x" + "07" * 32, suppress=True, overwrite=True)
EOF
# replay FINALIZED [challenger] [submit-fails] [reregistered]: the chain at that finalized block
# (with the challenger's commitment; the chain rejecting extrinsics; uid 2 taken by a new hotkey).
replay() {
  "$venv/bin/python" - "$root/pipelines/chain/samples/replay-97.json" "$t/replay.json" "$@" <<'EOF'
import json, sys
src, dst, finalized = sys.argv[1], sys.argv[2], int(sys.argv[3])
challenger, submit_fails, rereg = ("challenger" in sys.argv, "submit-fails" in sys.argv, "reregistered" in sys.argv)
d = json.load(open(src))
g = d["runtime"]["SubnetInfoRuntimeApi.get_metagraph"]["97"]
hk = g["hotkeys"][:3]
if rereg:
    hk[2] = g["hotkeys"][3]
n = len(hk)
for k, v in list(g.items()):
    if isinstance(v, list) and len(v) == len(g["hotkeys"]):
        g[k] = v[:n]
g["hotkeys"], g["num_uids"], g["block"] = hk, n, finalized
def plain(block, model):
    b = json.dumps({"model": model}).encode()
    return {"block": block, "deposit": 0, "info": {"fields": [{f"Raw{len(b)}": "0x" + b.hex()}]}}
c = [[hk[1], plain(100, "demo/king")]]
if challenger and not rereg:
    c.append([hk[2], plain(150, "demo/challenger")])
d["maps"]["Commitments.CommitmentOf"]["97"] = c
d["maps"]["Commitments.RevealedCommitments"]["97"] = []
d["maps"]["SubtensorModule.Uids"]["97"] = [[h, i] for i, h in enumerate(hk)]
d["head"], d["finalized"] = finalized + 2, finalized
d["storage"]["SubtensorModule.LastUpdate"]["[97]"] = [0] * n
if submit_fails:
    d["submit"] = [{"success": False, "message": "SubtensorModule.TxRateLimitExceeded"}]
json.dump(d, open(dst, "w"))
EOF
}
export DISTIL_CHAIN_REPLAY="$t/replay.json" DISTIL_CHAIN_REPLAY_LOG="$t/submitted.jsonl"
: > "$DISTIL_CHAIN_REPLAY_LOG"
set_count() { wc -l < "$DISTIL_CHAIN_REPLAY_LOG" | tr -d ' '; }

# The demo's models are committed as "demo/king" and "demo/challenger": Hub repo ids, so dl-fetch
# downloads them (and the recheck lists them) from a Hub stand-in on loopback serving the demo's
# folders under those ids. A committed owner/name is never read from the working directory, so the
# work folder holds no demo/ at all.
python3 scripts/tests/lib/hub_standin.py "$t/hub.port" demo/king=demo/king demo/challenger=demo/challenger &
hub_pid=$!
for _ in $(seq 100); do [[ -s "$t/hub.port" ]] && break; sleep 0.1; done
[[ -s "$t/hub.port" ]] || fail "the Hub stand-in did not start"
export HF_ENDPOINT="http://127.0.0.1:$(cat "$t/hub.port")" HF_HUB_CACHE="$t/hf"
unset HF_HUB_OFFLINE HF_TOKEN
work="$t/work"
mkdir -p "$work"
# A bin folder whose dl-teacher fails: the injected failing stage.
mkdir -p "$t/badbin"
for tool in dl-fetch dl-check dl-prompts dl-kl dl-judge; do ln -s "$bin/$tool" "$t/badbin/$tool"; done
printf '#!/bin/sh\necho "dl-teacher: injected failure" >&2\nexit 1\n' > "$t/badbin/dl-teacher"
chmod +x "$t/badbin/dl-teacher"

v() {
  local b=$1; shift
  rc=0
  pipelines/validator.sh --work "$work" --teacher demo/teacher --wallet-name demo --wallet-hotkey validator \
    --lag 3 --interval 50 --bin "$b" --metrics "$t/distil.prom" "$@" demo/corpus.jsonl.zst \
    -- --count 8 --max-new-tokens 40 --vocab-size 512 --threads 2 2>> "$t/log" || rc=$?
}
winner() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["uids"])' "$1"; }

replay 123
v "$bin"
[[ $rc == 0 ]] || { cat "$t/log" >&2; fail "first epoch exit $rc"; }
[[ $(set_count) == 1 && $(winner "$work/epoch-120/weights.json") == "[1]" ]] || fail "epoch 120: $(set_count) sets, $(cat "$work/epoch-120/weights.json")"
ok "epoch 120: the king crowned, weights set once (uid 1)"
grep -q '"commit":"[0-9a-f]\{40\}".*"repo":"demo/king"' "$work/epoch-120/manifests.jsonl" && ! grep -q '"commit":"local"' "$work/epoch-120/manifests.jsonl" \
  || fail "demo/king was not fetched from the Hub stand-in: $(cat "$work/epoch-120/manifests.jsonl")"
ok "the committed repo id demo/king came from the Hub (a 40-hex commit), not from a folder"
# metric LINE: the metrics file (--metrics) holds this sample line exactly.
metric() { grep -qxF "$1" "$t/distil.prom" || fail "metrics: no line '$1' in: $(grep -v '^#' "$t/distil.prom" | tr '\n' ' ')"; }
metric 'distil_validator_exit_status 0'; metric 'distil_epoch_block 120'; metric 'distil_king_uid 1'
metric 'distil_validator_stage_success{stage="set-weights"} 1'
# Bytes downloaded: what dl-fetch counted on the wire (fetch-stats.json), at least the king's files
# on this cold cache; the metric carries exactly that figure.
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_received"])' "$work/epoch-120/fetch-stats.json")
files=$(python3 -c 'import json,sys; print(sum(f["size"] for l in open(sys.argv[1]) for f in json.loads(l)["files"] if not f["name"].endswith(".bin")))' "$work/epoch-120/manifests.jsonl")
((got >= files && got < files + 65536)) || fail "fetch-stats.json: $got bytes received for $files bytes of files"
metric "distil_epoch_downloaded_bytes $got"
ok "bytes downloaded: $got received for $files bytes of files (cold cache), in the metrics"

replay 150 challenger
v "$bin"
[[ $rc == 0 && $(set_count) == 1 && ! -d "$work/epoch-147" ]] || fail "a run 27 blocks later: exit $rc, $(set_count) sets"
grep -q "nothing to do" "$t/log" || fail "no 'nothing to do' line"
ok "a run before --interval blocks: exit 0, nothing done, nothing set"
metric 'distil_validator_runs_total{result="success"} 2'; metric 'distil_epoch_block 120'; metric 'distil_epoch_runs_total{result="success"} 1'

replay 203 challenger
v "$t/badbin"
[[ $rc == 11 && $(set_count) == 1 && ! -e "$work/epoch-200/weights.json" ]] || fail "failing dl-teacher: exit $rc, $(set_count) sets"
[[ -s "$work/validator-pending.json" ]] || fail "the failed epoch is not pending"
ok "epoch 200 with a failing dl-teacher: exit 11, no weights set"
metric 'distil_validator_exit_status 11'; metric 'distil_validator_stage_success{stage="epoch"} 0'
metric 'distil_epoch_block 200'; metric 'distil_epoch_success 0'; metric 'distil_validator_runs_total{result="failure"} 1'

replay 210 challenger
v "$bin"
[[ $rc == 0 && $(set_count) == 2 && $(winner "$work/epoch-200/weights.json") == "[2]" && ! -d "$work/epoch-207" ]] \
  || fail "resumed epoch: exit $rc, $(set_count) sets"
ok "the next run resumes epoch 200 (same block), the challenger wins, weights set once (uid 2)"
metric 'distil_epoch_block 200'; metric 'distil_epoch_success 1'; metric 'distil_king_uid 2'
ok "--metrics: each run's exit status, stages and epoch figures (a not-due run keeps the last epoch's)"

# Exactly once: an epoch whose weights.json exists never sets again, even if it is resumed.
cp "$work/validator-last.json" "$work/validator-pending.json"
v "$bin"
[[ $rc == 0 && $(set_count) == 2 ]] || fail "resuming a done epoch: exit $rc, $(set_count) sets"
grep -q "already done for this epoch" "$t/log" || fail "no 'already done' line"
ok "an epoch resumed after its weights were set does not set them again"

exec 7>"$work/.validator.lock"; flock -n 7
replay 263 challenger
v "$bin"
[[ $rc == 3 && $(set_count) == 2 ]] || fail "locked: exit $rc"
exec 7>&-
ok "a second run while one holds the lock: exit 3"

replay 263 challenger submit-fails
v "$bin"
[[ $rc == 13 && $(set_count) == 3 && ! -e "$work/epoch-260/weights.json" ]] || fail "chain rejects: exit $rc, $(set_count) submits"
replay 266 challenger
v "$bin"
[[ $rc == 0 && $(set_count) == 4 && -s "$work/epoch-260/weights.json" ]] || fail "retry after rejection: exit $rc, $(set_count) submits"
ok "epoch 260: the chain rejects the weights (exit 13, one submit), the next run sets them"

replay 400 challenger
v "$bin" --dry-run
[[ $rc == 0 && $(set_count) == 4 ]] || fail "dry run: exit $rc, $(set_count) submits"
grep -q '"dry_run":true' "$work/epoch-397/weights.json" || fail "dry run record"
ok "--dry-run plans through the SDK and submits nothing"

# uid 2 (the king) re-registered by another hotkey: the epoch's verdict is refused by set-weights.
replay 460 challenger reregistered
v "$bin"
[[ $rc == 12 && $(set_count) == 4 && ! -e "$work/validator-pending.json" ]] || fail "refused verdict: exit $rc, $(set_count) submits"
grep -q "refused" "$t/log" || fail "no refusal line"
ok "a verdict set-weights refuses (uid 2 re-registered since): exit 12, nothing set, the epoch closed"

# --- every command line of pipelines/cron.example, as written --------------------------------
cron="$t/cron"
mkdir -p "$cron/work"
replay 723 challenger
# The settings lines, pointed at the demo; the command lines untouched.
declare -A settings=([DISTIL]="$root" [DISTIL_WORK]="$cron/work" [DISTIL_TEACHER]="$root/demo/teacher"
  [DISTIL_CORPUS]="$root/demo/corpus.jsonl.zst" [DISTIL_WALLET]=demo [DISTIL_HOTKEY]=validator
  [DISTIL_PRUNE_FLOOR]=1K [DISTIL_EPOCH_OPTIONS]="--count 8 --max-new-tokens 40 --vocab-size 512 --threads 2")
n=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  if [[ "$line" =~ ^([A-Z_]+)=(.*)$ ]]; then
    name=${BASH_REMATCH[1]}
    [[ $name == SHELL || -n "${settings[$name]+x}" ]] || fail "cron.example sets $name, which this test does not know"
    continue
  fi
  read -r m h dom mon dow cmd <<< "$line"
  [[ -n "$cmd" ]] || fail "cron.example: not a crontab line: $line"
  n=$((n + 1))
  rc=0
  env -i PATH="$PATH" HOME="$HOME" BT_WALLET_PATH="$BT_WALLET_PATH" DISTIL_BIN="$bin" HF_HUB_CACHE="$cron/hf" HF_ENDPOINT="$HF_ENDPOINT" \
    DISTIL_CHAIN_REPLAY="$DISTIL_CHAIN_REPLAY" DISTIL_CHAIN_REPLAY_LOG="$DISTIL_CHAIN_REPLAY_LOG" \
    DISTIL="${settings[DISTIL]}" DISTIL_WORK="${settings[DISTIL_WORK]}" DISTIL_TEACHER="${settings[DISTIL_TEACHER]}" \
    DISTIL_CORPUS="${settings[DISTIL_CORPUS]}" DISTIL_WALLET="${settings[DISTIL_WALLET]}" \
    DISTIL_HOTKEY="${settings[DISTIL_HOTKEY]}" DISTIL_PRUNE_FLOOR="${settings[DISTIL_PRUNE_FLOOR]}" \
    DISTIL_EPOCH_OPTIONS="${settings[DISTIL_EPOCH_OPTIONS]}" /bin/bash -c "$cmd" || rc=$?
  [[ $rc == 0 ]] || { tail -n 20 "$cron/work/validator.log" >&2; fail "cron.example line $n exited $rc: $cmd"; }
done < pipelines/cron.example
((n == 2)) || fail "cron.example: expected 2 command lines, ran $n"
[[ $(set_count) == 5 && -s "$cron/work/epoch-720/weights.json" ]] || fail "cron epoch: $(set_count) submits"
grep -q "prune:" "$cron/work/validator.log" || fail "cron run did not prune"
ok "every command line of pipelines/cron.example ran as written (an epoch, weights set once, pruned; the venv check)"
echo "validator test: $checks passed, 0 failed"

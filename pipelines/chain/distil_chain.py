"""The chain on both ends of an epoch, through the pinned bittensor SDK (pipelines/chain/requirements.txt).

    distil-chain commitments --netuid 97 [--network finney|URL] [--ledger FILE] [--rejects FILE] [-o FILE]
    distil-chain block [--lag N] [--network ...]
    distil-chain set-weights --verdict verdict.json --wallet-name W --wallet-hotkey H --netuid 97
                             [--max-age-blocks N] [--dry-run] [-o FILE]

Every command writes JSON lines (docs/FORMATS.md, "Chain adapter") to stdout or -o (temp file + rename:
nothing half-written), logs on stderr, and exits by outcome:

    0  done (set-weights: set, or planned with --dry-run)
    1  input or runtime error (an unreadable verdict, a file that cannot be written)
    2  usage
    3  set-weights refused the verdict (failed epoch, too old, a uid not in the metagraph, weights not summing to 1)
    4  the chain rejected the extrinsic (ExtrinsicResult.success is false, or a ChainError such as a rate limit)
    5  the chain could not be reached: RPC failures after the retries

``--replay FILE`` (or DISTIL_CHAIN_REPLAY) swaps the SDK's chain-access backend for replay_substrate.py,
which answers from recorded payloads: the SDK's own code runs unchanged above it. Tests and the
validator's stand-in mode use it; a validator never does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from typing import Any, Callable, Optional

import bittensor as bt

TOOL = "distil-chain/1"
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_REFUSED, EXIT_CHAIN, EXIT_RPC = 0, 1, 2, 3, 4, 5

# A Hub repo id as huggingface_hub validates it: one optional namespace, names of [A-Za-z0-9._-]
# up to 96 characters, no "--" or "..", not starting or ending with "-" or ".".
_REPO_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^(?:{_REPO_NAME}/)?{_REPO_NAME}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def log(msg: str) -> None:
    print(f"distil-chain: {msg}", file=sys.stderr, flush=True)


class Refused(Exception):
    """The verdict may not be set (exit 3)."""


class RpcFailed(Exception):
    """The chain could not be reached after the retries (exit 5)."""


def is_rpc_failure(e: BaseException) -> bool:
    # The SDK's public connection errors, plus the OS-level ones its transport can let through.
    return isinstance(e, (bt.RpcConnectionError, ConnectionError, TimeoutError, OSError))


def with_retries(what: str, fn: Callable[[], Any], attempts: int, delay: float) -> Any:
    """Runs fn, retrying RPC failures with exponential backoff; chain errors are not retried."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - classified below
            if not is_rpc_failure(e):
                raise
            if i == attempts - 1:
                raise RpcFailed(f"{what}: {type(e).__name__}: {e} (after {attempts} attempts)") from e
            wait = delay * (2 ** i)
            log(f"{what}: {type(e).__name__}: {e}; retrying in {wait:g} s ({i + 1}/{attempts})")
            time.sleep(wait)
    raise AssertionError("unreachable")


def write_lines(path: Optional[str], records: list[dict]) -> None:
    """JSON lines, keys sorted, compact; to a temp file renamed into place (or stdout).

    The temporary is PATH.tmp-PID, as the dl-* tools name theirs: one left by a run killed with
    SIGKILL is removed by the next writer of PATH once that PID is no live process (a random name
    would stay in the work folder for good)."""
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    remove_stale_temps(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_temps(path: str) -> None:
    """Removes PATH.tmp-PID files whose PID is no live process here (a zombie counts as gone)."""
    d, base = os.path.split(os.path.abspath(path))
    prefix = base + ".tmp-"
    for name in os.listdir(d):
        pid = name[len(prefix):]
        if not name.startswith(prefix) or not pid.isdigit() or str(int(pid)) != pid or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            alive = state not in ("Z", "X")
        except (OSError, IndexError):
            alive = False
        if not alive:
            try:
                os.unlink(os.path.join(d, name))
            except OSError:
                pass


def read_lines(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: invalid JSON ({e.msg})") from None
    return out


# --- commitments -------------------------------------------------------------------------------

def parse_payload(text: Optional[str]) -> tuple[Optional[dict], Optional[str]]:
    """A commitment's content → ({"repo", "revision"}, None) or (None, why it is rejected)."""
    if text is None or text == "":
        return None, "no readable content (sealed, failed or empty)"
    if len(text) > 1024:
        return None, f"payload of {len(text)} characters"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None, "payload is not JSON: " + json.dumps(text[:80])
    if not isinstance(obj, dict):
        return None, "payload is not a JSON object"
    model, revision = obj.get("model"), obj.get("revision")
    if not isinstance(model, str):
        return None, "payload has no string 'model'"
    if not REPO_ID.match(model) or "--" in model or ".." in model:
        return None, "invalid repo id " + json.dumps(model[:120])
    if revision is not None and (not isinstance(revision, str) or not COMMIT.match(revision)):
        return None, "revision is not a 40-hex commit: " + json.dumps(str(revision)[:80])
    return {"repo": model, "revision": revision}, None


def first_content(c: Any) -> tuple[int, Optional[str]]:
    """The first readable commitment of a hotkey the chain still shows: the oldest revealed
    payload when the commitment was timelocked, else the plain content at its commit block."""
    revealed = [(b, t) for b, t in (c.revealed or []) if t]
    if revealed:
        b, t = min(revealed)
        return b, t
    return c.block, c.value


def commitments(sub: Any, netuid: int, ledger: Optional[str]) -> tuple[list[dict], list[dict], int]:
    """(commitments, rejects, block): one commitment per registered hotkey, its first one."""
    graph = sub.subnets.metagraph(netuid)
    if graph is None:
        raise ValueError(f"netuid {netuid} does not exist on this chain")
    seen: dict[str, dict] = {}
    if ledger and os.path.exists(ledger):
        for r in read_lines(ledger):
            seen.setdefault(r["hotkey"], r)
    out, rejects = [], []

    def reject(hotkey: str, uid: Optional[int], block: Optional[int], why: str, content: Optional[str]) -> None:
        log(f"rejected: uid {uid} hotkey {hotkey}: {why}")
        rejects.append({"uid": uid, "hotkey": hotkey, "block": block, "reason": why,
                        "content": None if content is None else content[:200], "tool": TOOL})

    for n in graph.neurons:
        c = graph.commitments[n.uid]
        if n.hotkey in seen:
            # One commitment per hotkey, forever: what the ledger saw first stands, whatever the
            # chain shows now (the chain keeps only a hotkey's latest plain commitment).
            r = dict(seen[n.hotkey])
            r["uid"] = n.uid
            out.append(r)
            continue
        if c is None:
            continue
        block, content = first_content(c)
        payload, why = parse_payload(content)
        if payload is None:
            reject(n.hotkey, n.uid, block, why, content)
            continue
        out.append({"uid": n.uid, "hotkey": n.hotkey, "block": block, "repo": payload["repo"],
                    "revision": payload["revision"]})
    for hotkey, c in graph.unregistered_commitments.items():
        reject(hotkey, None, c.block, "hotkey no longer registered on the subnet", c.value)
    out.sort(key=lambda r: (r["block"], r["uid"]))
    if ledger:
        known = {r["hotkey"] for r in read_lines(ledger)} if os.path.exists(ledger) else set()
        new = [{k: r[k] for k in ("hotkey", "block", "repo", "revision")} for r in out if r["hotkey"] not in known]
        if new:
            old = read_lines(ledger) if os.path.exists(ledger) else []
            write_lines(ledger, old + new)
    return [{k: r.get(k) for k in ("uid", "hotkey", "block", "repo", "revision")} for r in out], rejects, graph.block


# --- block ---------------------------------------------------------------------------------------

def finalized_block(sub: Any, lag: int) -> dict:
    final = sub.finalized_block
    number = final - lag
    if number < 0:
        raise ValueError(f"--lag {lag} is beyond the finalized block {final}")
    info = sub.block_info(number)
    if info is None or info.hash is None or info.number != number:
        raise ValueError(f"block {number}: the chain returned no header")
    h = info.hash.lower()
    if not re.match(r"^0x[0-9a-f]{64}$", h):
        raise ValueError(f"block {number}: unexpected hash {info.hash!r}")
    return {"block": number, "block_hash": h[2:], "finalized": final, "tool": TOOL}


# --- set-weights -------------------------------------------------------------------------------

def check_verdict(v: Any, graph: Any, current_block: int, max_age: int) -> tuple[list[int], list[float]]:
    """The (uids, weights) a verdict may set, or Refused with the reason."""
    if not isinstance(v, dict) or v.get("format") != "distil-verdict/1":
        raise Refused("not a distil-verdict/1 document")
    uids, values = v.get("uids"), v.get("values")
    if not isinstance(uids, list) or not isinstance(values, list) or len(uids) != len(values):
        raise Refused("uids and values are not parallel arrays")
    if not all(isinstance(u, int) and not isinstance(u, bool) for u in uids) or len(set(uids)) != len(uids):
        raise Refused("uids are not distinct integers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in values):
        raise Refused("a weight is negative or not a finite number")
    if v.get("winner") is None and not any(values):
        raise Refused("the epoch failed to decide: nobody gets weight (" + str(v.get("reason", ""))[:200] + ")")
    total = math.fsum(values)
    if abs(total - 1.0) > 1e-6:
        raise Refused(f"weights sum to {total!r}, not 1")
    block = v.get("block")
    if not isinstance(block, int) or isinstance(block, bool):
        raise Refused("the verdict has no epoch block")
    if block > current_block:
        raise Refused(f"verdict of block {block} is ahead of the chain ({current_block})")
    if current_block - block > max_age:
        raise Refused(f"verdict of block {block} is {current_block - block} blocks old, more than --max-age-blocks {max_age}")
    hotkeys = {m.get("uid"): m.get("hotkey") for m in v.get("models") or [] if isinstance(m, dict)}
    n = len(graph.neurons)
    for u, x in zip(uids, values):
        if not 0 <= u < n:
            raise Refused(f"uid {u} is not in the metagraph of netuid {graph.netuid} ({n} uids)")
        if x > 0 and u in hotkeys and hotkeys[u] != graph.neurons[u].hotkey:
            raise Refused(f"uid {u} is now hotkey {graph.neurons[u].hotkey}, not the scored {hotkeys[u]}")
    nonzero = [(u, float(x)) for u, x in zip(uids, values) if x > 0]
    return [u for u, _ in nonzero], [x for _, x in nonzero]


def set_weights(sub: Any, args: argparse.Namespace) -> dict:
    try:
        with open(args.verdict, encoding="utf-8") as f:
            verdict = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{args.verdict}: cannot read the verdict ({e})") from None
    retry = lambda what, fn: with_retries(what, fn, args.attempts, args.retry_delay)  # noqa: E731
    current = retry("finalized block", lambda: sub.finalized_block)
    graph = retry("metagraph", lambda: sub.subnets.metagraph(args.netuid, commitments=False))
    if graph is None:
        raise ValueError(f"netuid {args.netuid} does not exist on this chain")
    uids, weights = check_verdict(verdict, graph, current, args.max_age_blocks)
    wallet = bt.Wallet(args.wallet_name, args.wallet_hotkey, path=args.wallet_path)
    intent = bt.SetWeights(netuid=args.netuid, uids=uids, weights=weights, version_key=args.version_key)
    # The SDK's plan: preflight (registration, rate limit), clip and u16 quantization, and the
    # path (plain set or timelocked commit-reveal) — what will be submitted, before anything is.
    plan = retry("plan set_weights", lambda: sub.plan(intent, wallet))
    if not plan.ok:
        raise bt.ChainError("the SDK's plan refused: " + "; ".join(map(str, plan.violations)))
    call = plan.call
    record = {"netuid": args.netuid, "uids": uids, "weights": weights, "verdict_block": verdict["block"],
              "block": current, "hotkey": plan.signer_address, "call": f"{call.module}.{call.function}",
              "u16": call.params.get("weights") if call.function == "set_mechanism_weights" else None,
              "reveal_round": plan.extras.get("reveal_round"), "dry_run": bool(args.dry_run), "tool": TOOL}
    if args.dry_run:
        record.update(success=True, message="dry run: planned, not submitted", block_hash=None, extrinsic_id=None)
        return record
    result = retry("set_weights", lambda: sub.execute(intent, wallet, retries=2))
    record.update(success=bool(result.success), message=result.message, block_hash=result.block_hash,
                  extrinsic_id=result.extrinsic_id)
    return record


# --- entry point -------------------------------------------------------------------------------

def connect(args: argparse.Namespace) -> Any:
    replay = args.replay or os.environ.get("DISTIL_CHAIN_REPLAY")
    if replay:
        from replay_substrate import ReplaySubstrate  # beside this file

        return bt.Subtensor(args.network, substrate=ReplaySubstrate.load(replay))
    return bt.Subtensor(args.network)


def main(argv: Optional[list[str]] = None, sub: Any = None) -> int:
    p = argparse.ArgumentParser(prog="distil-chain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    def chain_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
        # Accepted before or after the subcommand; a subcommand's copy only overrides when given.
        d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
        parser.add_argument("--network", default=d(os.environ.get("DISTIL_NETWORK", "finney")),
                            help="finney, test, local, or a ws:// / wss:// endpoint (default: finney)")
        parser.add_argument("--replay", default=d(None), help="answer from recorded chain payloads (tests; see replay_substrate.py)")
        parser.add_argument("--attempts", type=int, default=d(4), help="tries per chain read on RPC failures (4)")
        parser.add_argument("--retry-delay", type=float, default=d(2.0), help="first backoff in seconds, doubling (2)")

    chain_options(p, True)
    common = argparse.ArgumentParser(add_help=False)
    chain_options(common, False)
    s = p.add_subparsers(dest="cmd", required=True)
    c = s.add_parser("commitments", parents=[common], help="one commitment record per registered hotkey")
    c.add_argument("--netuid", type=int, required=True)
    c.add_argument("--ledger", help="first commitment of every hotkey ever seen (read and extended)")
    c.add_argument("--rejects", help="write rejected commitments here (JSON lines)")
    c.add_argument("-o", "--out")
    b = s.add_parser("block", parents=[common], help="a finalized block and its hash")
    b.add_argument("--lag", type=int, default=0, help="blocks behind the finalized head (0)")
    b.add_argument("-o", "--out")
    w = s.add_parser("set-weights", parents=[common], help="set the verdict's weights through the SDK")
    w.add_argument("--verdict", required=True)
    w.add_argument("--netuid", type=int, required=True)
    w.add_argument("--wallet-name", required=True)
    w.add_argument("--wallet-hotkey", required=True)
    w.add_argument("--wallet-path", default=os.environ.get("BT_WALLET_PATH", "~/.bittensor/wallets"))
    w.add_argument("--max-age-blocks", type=int, default=1080,
                   help="refuse a verdict whose epoch block is more than this many blocks behind the finalized head (1080, 3 tempos)")
    w.add_argument("--version-key", type=int, default=0)
    w.add_argument("--dry-run", action="store_true", help="plan through the SDK (preflight, conform, compose); submit nothing")
    w.add_argument("-o", "--out")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return EXIT_OK if e.code == 0 else EXIT_USAGE
    if args.attempts < 1 or args.retry_delay < 0 or getattr(args, "lag", 0) < 0:
        log("--attempts must be >= 1, --retry-delay and --lag >= 0")
        return EXIT_USAGE
    sub = sub if sub is not None else connect(args)
    retry = lambda what, fn: with_retries(what, fn, args.attempts, args.retry_delay)  # noqa: E731
    try:
        if args.cmd == "commitments":
            recs, rejects, block = retry("commitments", lambda: commitments(sub, args.netuid, args.ledger))
            if args.rejects:
                write_lines(args.rejects, rejects)
            write_lines(args.out, recs)
            log(f"netuid {args.netuid} at block {block}: {len(recs)} commitments, {len(rejects)} rejected")
        elif args.cmd == "block":
            r = retry("finalized block", lambda: finalized_block(sub, args.lag))
            write_lines(args.out, [r])
        else:
            r = set_weights(sub, args)
            write_lines(args.out, [r])
            if not r["success"]:
                log(f"set_weights failed on chain: {r['message']}")
                return EXIT_CHAIN
            log(("planned (dry run) " if args.dry_run else "set ") + f"weights {dict(zip(r['uids'], r['weights']))} on netuid {args.netuid}")
        return EXIT_OK
    except Refused as e:
        log(f"refused {args.verdict}: {e}")
        return EXIT_REFUSED
    except RpcFailed as e:
        log(f"chain unreachable: {e}")
        return EXIT_RPC
    except bt.ChainError as e:
        log(f"chain error: {e}")
        return EXIT_CHAIN
    except (ValueError, OSError, KeyError, bt.BittensorError) as e:
        log(str(e))
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())

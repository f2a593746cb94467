#!/usr/bin/env python3
"""A stand-in for the chain adapter (pipelines/chain/distil-chain), for the validator chaos test
(scripts/tests/chaos-validator.sh): the subcommands, options, records and exit codes that
pipelines/validator.sh uses, answered from a folder instead of a chain, in milliseconds instead of
the SDK's seconds of import, so that dozens of killed runs fit in a CI suite. The real adapter over
a replayed chain is tested by scripts/tests/validator.sh.

    CHAIN_STANDIN_DIR/finalized          the finalized block (a number), set by the test
    CHAIN_STANDIN_DIR/commitments.jsonl  every commitment; those with block <= the epoch block are on chain
    CHAIN_STANDIN_DIR/submitted.jsonl    the chain's own record: one line per set-weights extrinsic
                                         included (appended and synced before the adapter answers)

Every answer first waits CHAIN_STANDIN_LATENCY seconds (default 0.05), as a round trip would. Files
named by -o, --ledger and --rejects are written as the adapter writes them: a temporary file synced
and renamed into place (NAME.tmp-PID; one left by a killed run is removed by the next writer).
Exit status: 0 done, 2 usage, 3 set-weights refused the verdict (as the adapter's).
"""
import hashlib
import json
import os
import sys
import time

state = os.environ["CHAIN_STANDIN_DIR"]


def write_lines(path, records):
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records)
    if path in (None, "-"):
        sys.stdout.write(text)
        return
    d, base = os.path.split(os.path.abspath(path))
    for n in os.listdir(d):
        pid = n[len(base) + 5:] if n.startswith(base + ".tmp-") else ""
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            os.unlink(os.path.join(d, n))
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def option(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def main(argv):
    args = [a for i, a in enumerate(argv) if a != "--network" and (i == 0 or argv[i - 1] != "--network")]
    if not args:
        return 2
    time.sleep(float(os.environ.get("CHAIN_STANDIN_LATENCY", "0.05")))
    finalized = int(open(os.path.join(state, "finalized")).read())
    cmd, out = args[0], option(args, "-o")
    if cmd == "block":
        b = finalized - int(option(args, "--lag", "0"))
        write_lines(out, [{"block": b, "block_hash": hashlib.sha256(f"standin block {b}".encode()).hexdigest(),
                           "finalized": finalized, "tool": "chain-standin"}])
    elif cmd == "commitments":
        recs = [c for c in read_lines(os.path.join(state, "commitments.jsonl")) if c["block"] <= finalized]
        ledger = option(args, "--ledger")
        if ledger:
            old = read_lines(ledger) if os.path.exists(ledger) else []
            known = {r["hotkey"] for r in old}
            new = [r for r in recs if r["hotkey"] not in known]
            if new:
                write_lines(ledger, old + new)
        if option(args, "--rejects"):
            write_lines(option(args, "--rejects"), [])
        write_lines(out, recs)
    elif cmd == "set-weights":
        v = json.load(open(option(args, "--verdict")))
        pairs = [(u, x) for u, x in zip(v.get("uids", []), v.get("values", [])) if x > 0]
        if not pairs:
            print(f"chain-standin: refused {option(args, '--verdict')}: nobody gets weight", file=sys.stderr)
            return 3
        record = {"netuid": int(option(args, "--netuid")), "uids": [u for u, _ in pairs], "weights": [x for _, x in pairs],
                  "verdict_block": v["block"], "block": finalized, "success": True, "tool": "chain-standin"}
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        fd = os.open(os.path.join(state, "submitted.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, line.encode())
        os.fsync(fd)
        os.close(fd)
        # The extrinsic is in; the answer comes back one more round trip later.
        time.sleep(float(os.environ.get("CHAIN_STANDIN_LATENCY", "0.05")))
        write_lines(out, [record])
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

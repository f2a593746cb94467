"""Writes the replay file the adapter's tests read (pipelines/chain/samples/replay-97.json).

Dev-only: the committed JSON is what the tests use. The payload shapes are the decoded values the
SDK's RPC backend hands to its own decoders (bittensor 11.3.0: metagraph._build for the
SubnetInfoRuntimeApi.get_metagraph record, metagraph._commitments for Commitments.CommitmentOf and
Commitments.RevealedCommitments, intents.weights._preflight for the storage reads of SetWeights).
No live chain was recorded (none can be reached here): the shapes follow the SDK's decoders.

    .venv-chain/bin/python pipelines/chain/tests/make_replay.py > pipelines/chain/samples/replay-97.json
"""
import json
import sys

from bittensor.keyfiles import Keypair

NETUID = 97


def ss58(i: int) -> str:
    return Keypair.create_from_seed(bytes([i]) * 32).ss58_address


def raw(text: str) -> dict:
    b = text.encode()
    return {f"Raw{len(b)}": "0x" + b.hex()}


def scale_bytes(text: str) -> str:
    """A revealed payload as the chain stores it: SCALE Vec<u8> (compact length, then the bytes)."""
    b = text.encode()
    n = len(b)
    prefix = bytes([n << 2]) if n < 64 else ((n << 2) | 1).to_bytes(2, "little")
    assert n < 1 << 14
    return "0x" + prefix.hex() + b.hex()


V = ss58(7)                      # the validator (uid 0); its wallet's hotkey is the same seed
K1, C2, M3, R4, N5, O5, R6, S7, B8 = (ss58(i) for i in range(11, 20))
A = "a" * 40
hotkeys = [V, K1, C2, M3, R4, N5, R6, S7, B8]
reg = [10, 800, 900, 950, 960, 1100, 1200, 1210, 1220]
n = len(hotkeys)
graph = {
    "netuid": NETUID, "name": [ord(c) for c in "distil"], "symbol": [ord(c) for c in "d"],
    "block": 1400, "tempo": 360, "last_step": 1300, "blocks_since_last_step": 100,
    "owner_hotkey": V, "owner_coldkey": ss58(99), "network_registered_at": 5,
    "num_uids": n, "max_uids": 256, "hotkeys": hotkeys, "coldkeys": [ss58(100 + i) for i in range(n)],
    "active": [True] * n, "validator_permit": [True] + [False] * (n - 1), "last_update": [1000] + [0] * (n - 1),
    "block_at_registration": reg, "rank": [0] * n, "trust": [0] * n, "consensus": [0] * n,
    "incentives": [0] * n, "dividends": [0] * n, "pruning_score": [0] * n, "emission": [0] * n,
    "alpha_stake": [0] * n, "tao_stake": [0] * n, "total_stake": [0] * n,
    "axons": [{"ip": 0, "port": 0, "ip_type": 4}] * n, "identities": [None] * n,
    "tao_in": 0, "alpha_in": 0,
}


def plain(block: int, text: str) -> dict:
    return {"block": block, "deposit": 0, "info": {"fields": [raw(text)]}}


committed = [
    [K1, plain(900, json.dumps({"model": "alice/distil-king", "revision": "a" * 40}))],
    # Timelocked, revealed twice: the first reveal is the commitment that counts.
    [C2, {"block": 1290, "deposit": 0, "info": {"fields": [{"TimelockEncrypted": {"encrypted": "0x00", "reveal_round": 5000}}]}}],
    [M3, plain(960, "not json {")],
    [R4, plain(970, json.dumps({"model": "../etc/passwd"}))],
    [N5, plain(1150, json.dumps({"model": "new/model", "revision": "c" * 40}))],
    [O5, plain(800, json.dumps({"model": "old/model", "revision": "d" * 40}))],   # deregistered: uid 5 was re-registered by N5
    [R6, plain(1250, json.dumps({"model": "carol/second", "revision": "e" * 40}))],
    [S7, {"block": 1300, "deposit": 0, "info": {"fields": [{"TimelockEncrypted": {"encrypted": "0x00", "reveal_round": 9000}}]}}],
    [B8, plain(1230, json.dumps({"model": "dave/model", "revision": "main"}))],
]
revealed = [
    [C2, [[scale_bytes(json.dumps({"model": "bob/distil-challenger", "revision": "b" * 40})), 950],
          [scale_bytes(json.dumps({"model": "bob/other", "revision": "f" * 40})), 1300]]],
]
key = lambda *p: json.dumps(list(p), separators=(", ", ": "))
storage = {
    "SubtensorModule.Uids": {key(NETUID, V): 0},
    "SubtensorModule.CommitRevealWeightsEnabled": {key(NETUID): False},
    "SubtensorModule.WeightsSetRateLimit": {key(NETUID): 100},
    "SubtensorModule.LastUpdate": {key(NETUID): graph["last_update"]},
    "SubtensorModule.MinAllowedWeights": {key(NETUID): 1},
    "SubtensorModule.MaxWeightsLimit": {key(NETUID): 65535},
    "SubtensorModule.SubnetEpochConsensus": {key(NETUID): "Yuma"},
    "SubtensorModule.Tempo": {key(NETUID): 360},
    "SubtensorModule.RevealPeriodEpochs": {key(NETUID): 1},
    "SubtensorModule.LastEpochBlock": {key(NETUID): 1300},
    "SubtensorModule.PendingEpochAt": {key(NETUID): 0},
    "SubtensorModule.SubnetEpochIndex": {key(NETUID): 3},
    "SubtensorModule.BlocksSinceLastStep": {key(NETUID): 100},
}
json.dump({
    "head": 1402, "finalized": 1400, "block_time": 12.0, "spec_version": 400,
    "runtime": {"SubnetInfoRuntimeApi.get_metagraph": {str(NETUID): graph}},
    "maps": {"Commitments.CommitmentOf": {str(NETUID): committed},
             "Commitments.RevealedCommitments": {str(NETUID): revealed},
             "SubtensorModule.Uids": {str(NETUID): [[h, i] for i, h in enumerate(hotkeys)]}},
    "storage": storage,
    "submit": [{"success": True, "message": "included in a finalized block (replay)"}],
}, sys.stdout, indent=1, sort_keys=True)
print()

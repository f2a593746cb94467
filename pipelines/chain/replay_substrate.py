"""A stand-in for the chain at the bittensor SDK's own seam: the ``Substrate`` protocol that
``bt.Subtensor(network, substrate=...)`` accepts (bittensor/_substrate.py, 11.x; the SDK removed
MockSubtensor and ships no mock, only this injection point).

Everything above it is the SDK's code, unchanged: metagraph decoding (``metagraph._build``,
``_commitments``, revealed-commitment SCALE decoding), ``SetWeights`` (preflight, clip, u16
quantization, compose), the executor's plan/submit/retry. The stand-in answers the reads with
recorded decoded values — the shapes the RPC backend hands the SDK — and answers a submit with
the SDK's own ``ExtrinsicResult``.

A replay file (JSON) holds:

    {"finalized": 4998, "head": 5000, "block_time": 12.0,
     "runtime": {"SubnetInfoRuntimeApi.get_metagraph": {"97": {<decoded metagraph record>}}},
     "maps":    {"Commitments.CommitmentOf": {"97": [[HOTKEY, {"block", "deposit", "info": {"fields": [...]}}], ...]},
                 "Commitments.RevealedCommitments": {"97": [[HOTKEY, [[DATA, REVEAL_BLOCK], ...]], ...]}},
     "storage": {"SubtensorModule.Uids": {"[97, HOTKEY]": 3}, "SubtensorModule.CommitRevealWeightsEnabled": {"[97]": false}, ...},
     "submit":  [{"success": true, "message": "...", "block_hash": "0x..."}],   # one per submit, the last repeats
     "rpc_failures": {"finalized_block_number": 2}}                             # fail the first N calls of a method

Block hashes are ``0x`` + sha256("replay block N") unless "block_hashes" names them. Every
submitted call is appended, as one JSON line, to the file named by DISTIL_CHAIN_REPLAY_LOG (the
validator's stand-in tests count the weights set this way).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

import bittensor as bt
from bittensor.result import ExtrinsicResult


class ReplaySubstrate:
    def __init__(self, data: dict):
        self.data = data
        self.token_symbols: dict[int, str] = {}
        self.calls: list[dict] = []
        self._failures = dict(data.get("rpc_failures") or {})
        self._submits = 0

    @classmethod
    def load(cls, path: str) -> "ReplaySubstrate":
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    # -- plumbing ---------------------------------------------------------------------------------

    def _maybe_fail(self, method: str) -> None:
        left = self._failures.get(method, 0)
        if left:
            self._failures[method] = left - 1
            # The SDK's public error for a transport failure (what RpcSubstrate raises).
            raise bt.RpcConnectionError(f"replay: {method}: connection reset (injected)")

    def balance(self, rao: int, netuid: int = 0):
        return bt.Balance(int(rao), netuid, self.token_symbols.get(netuid) if netuid else None)

    async def connect(self) -> None:
        self._maybe_fail("connect")

    async def close(self) -> None:
        pass

    # -- reads ------------------------------------------------------------------------------------

    def _hash(self, block: int) -> str:
        named = (self.data.get("block_hashes") or {}).get(str(block))
        return named or "0x" + hashlib.sha256(f"replay block {block}".encode()).hexdigest()

    async def block_hash(self, block: Optional[int] = None) -> str:
        self._maybe_fail("block_hash")
        return self._hash(self.data.get("head", 0) if block is None else block)

    async def block_number(self) -> int:
        self._maybe_fail("block_number")
        return int(self.data.get("head", 0))

    async def finalized_block_number(self) -> int:
        self._maybe_fail("finalized_block_number")
        return int(self.data.get("finalized", self.data.get("head", 0)))

    async def block_time(self) -> float:
        return float(self.data.get("block_time", 12.0))

    async def spec_version(self) -> int:
        return int(self.data.get("spec_version", 400))

    async def get_block(self, block_number: Optional[int] = None, block_hash: Optional[str] = None) -> Optional[dict]:
        self._maybe_fail("get_block")
        n = self.data.get("head", 0) if block_number is None else block_number
        if n > self.data.get("head", 0):
            return None
        # A header as the RPC backend decodes it; the Timestamp.set inherent dates the block.
        ms = 1_700_000_000_000 + 12_000 * n
        return {"header": {"number": n, "hash": self._hash(n), "parentHash": self._hash(max(n - 1, 0))},
                "extrinsics": [{"call": {"call_module": "Timestamp", "call_function": "set",
                                         "call_args": [{"name": "now", "value": ms}]}}]}

    @staticmethod
    def _key(params: Optional[list]) -> str:
        return json.dumps(params or [], separators=(", ", ": "))

    async def query(self, module: str, storage_function: str, params: Optional[list] = None,
                    block_hash: Optional[str] = None) -> Any:
        self._maybe_fail("query")
        if (module, storage_function) == ("Timestamp", "Now"):
            return 1_700_000_000_000
        table = (self.data.get("storage") or {}).get(f"{module}.{storage_function}") or {}
        return table.get(self._key(params))

    async def map_has_entries(self, module: str, storage_function: str, params: list,
                              block_hash: Optional[str] = None) -> bool:
        return bool(await self.query_map(module, storage_function, params, block_hash))

    async def query_map(self, module: str, storage_function: str, params: Optional[list] = None,
                        block_hash: Optional[str] = None) -> list:
        self._maybe_fail("query_map")
        table = (self.data.get("maps") or {}).get(f"{module}.{storage_function}") or {}
        key = ",".join(str(p) for p in params or [])
        return [tuple(e) for e in table.get(key, [])]

    async def query_batch(self, module: str, storage_function: str, param_sets: list,
                          block_hash: Optional[str] = None) -> list:
        return [await self.query(module, storage_function, p, block_hash) for p in param_sets]

    async def runtime_call(self, api: str, method: str, params: list, block_hash: Optional[str] = None) -> Any:
        self._maybe_fail("runtime_call")
        table = (self.data.get("runtime") or {}).get(f"{api}.{method}") or {}
        return table.get(",".join(str(p) for p in params))

    async def constant(self, module: str, name: str) -> Any:
        return (self.data.get("constants") or {}).get(f"{module}.{name}")

    async def decode_scale(self, type_string: str, data: Any) -> Any:
        raise NotImplementedError("replay: decode_scale")

    async def events(self, block_hash: Optional[str] = None) -> list:
        return []

    # -- calls and writes -------------------------------------------------------------------------

    async def compose(self, call) -> Any:
        # A composed call: the generated (module, function, params) triple, kept as it is.
        return call

    async def estimate_fee(self, call, keypair):
        return bt.Balance(1000)

    async def estimate_weight(self, call, keypair) -> dict:
        return {"ref_time": 1, "proof_size": 1}

    async def account_next_index(self, address: str) -> int:
        return len(self.calls)

    async def mev_next_key(self) -> Optional[bytes]:
        return None

    async def submit(self, call, keypair, *, nonce=None, period=None, wait_for_inclusion=True,
                     wait_for_finalization=True) -> ExtrinsicResult:
        self._maybe_fail("submit")
        record = {"call": _describe(call), "signer": getattr(keypair, "ss58_address", None)}
        self.calls.append(record)
        log = os.environ.get("DISTIL_CHAIN_REPLAY_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        answers = self.data.get("submit") or [{"success": True, "message": "included (replay)"}]
        a = answers[min(self._submits, len(answers) - 1)]
        self._submits += 1
        n = int(self.data.get("head", 0)) + 1
        return ExtrinsicResult(success=bool(a.get("success")), message=a.get("message", ""),
                               block_hash=a.get("block_hash", self._hash(n) if a.get("success") else None),
                               extrinsic_id=f"{n}-1" if a.get("success") else None,
                               error=None if a.get("success") else bt.ChainError(a.get("message", "failed")))


def _describe(call: Any) -> Any:
    """A generated call as plain JSON: module, function and parameters."""
    for attrs in (("module", "function", "params"), ("call_module", "call_function", "call_args")):
        if all(hasattr(call, a) for a in attrs):
            return {k: _plain(getattr(call, a)) for k, a in zip(("module", "function", "params"), attrs)}
    if isinstance(call, (tuple, list)) and len(call) == 3:
        return {"module": call[0], "function": call[1], "params": _plain(call[2])}
    return _plain(call)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, (bytes, bytearray)):
        return "0x" + bytes(x).hex()
    return repr(x)

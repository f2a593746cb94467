"""The chain adapter on the pinned bittensor SDK, with the chain replaced only at the SDK's own
seam (bt.Subtensor(substrate=ReplaySubstrate)): the SDK's metagraph and commitment decoders, its
SetWeights preflight/quantization/commit-reveal and its executor all run for real.

    scripts/tests/chain.sh        (sets up .venv-chain, then runs this with unittest)
"""

import contextlib
import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHAIN = os.path.dirname(HERE)
SAMPLES = os.path.join(CHAIN, "samples")
sys.path.insert(0, CHAIN)

import bittensor as bt  # noqa: E402

import distil_chain  # noqa: E402
from replay_substrate import ReplaySubstrate  # noqa: E402

REPLAY = os.path.join(SAMPLES, "replay-97.json")
VERDICT = os.path.join(SAMPLES, "verdict-97.json")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class AdapterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="distil-chain-test-")
        self.dir = self.tmp.name
        self.data = load(REPLAY)
        # The validator's wallet: its hotkey is the seed the replay registered at uid 0.
        self.wallets = os.path.join(self.dir, "wallets")
        w = bt.Wallet("distil-test", "validator", path=self.wallets)
        w.regenerate_hotkey(seed="0x" + "07" * 32, suppress=True, overwrite=True)
        self.assertEqual(w.hotkey.ss58_address, self.data["runtime"]["SubnetInfoRuntimeApi.get_metagraph"]["97"]["hotkeys"][0])

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, argv, data=None):
        """main() against a ReplaySubstrate over `data`; returns (exit status, stdout, stderr, substrate)."""
        fake = ReplaySubstrate(copy.deepcopy(data if data is not None else self.data))
        sub = bt.Subtensor("finney", substrate=fake)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = distil_chain.main(["--retry-delay", "0"] + argv, sub=sub)
        return rc, out.getvalue(), err.getvalue(), fake

    def set_weights(self, verdict, data=None, extra=()):
        path = os.path.join(self.dir, "verdict.json")
        with open(path, "w") as f:
            json.dump(verdict, f)
        return self.run_cli(["set-weights", "--verdict", path, "--netuid", "97", "--wallet-name", "distil-test",
                             "--wallet-hotkey", "validator", "--wallet-path", self.wallets, *extra], data)

    # --- commitments ---------------------------------------------------------------------------

    def test_commitments_match_the_committed_samples(self):
        rej = os.path.join(self.dir, "rejects.jsonl")
        out = os.path.join(self.dir, "commitments.jsonl")
        rc, _, err, _ = self.run_cli(["commitments", "--netuid", "97", "--rejects", rej, "-o", out])
        self.assertEqual(rc, 0, err)
        for got, sample in ((out, "commitments.jsonl"), (rej, "rejects.jsonl")):
            with open(got, "rb") as a, open(os.path.join(SAMPLES, sample), "rb") as b:
                self.assertEqual(a.read(), b.read(), sample)
        recs = [json.loads(l) for l in text(out).splitlines()]
        by_uid = {r["uid"]: r for r in recs}
        # Exactly the Commitment record of docs/FORMATS.md.
        self.assertTrue(all(set(r) == {"uid", "hotkey", "block", "repo", "revision"} for r in recs))
        # Timelocked and revealed twice: the first reveal (block 950) counts, not the later one.
        self.assertEqual((by_uid[2]["repo"], by_uid[2]["block"]), ("bob/distil-challenger", 950))
        # uid 5 was re-registered: only the registered hotkey's commitment; the old one is rejected.
        self.assertEqual(by_uid[5]["repo"], "new/model")
        reasons = {r["hotkey"]: r["reason"] for r in map(json.loads, text(rej).splitlines())}
        self.assertIn("no longer registered", reasons.pop(self.hotkey("old")))
        self.assertEqual(sorted(by_uid), [1, 2, 5, 6])
        self.assertEqual(len(reasons), 4, reasons)       # malformed JSON, bad repo id, sealed, bad revision
        self.assertIn("rejected: uid 3", err)

    def hotkey(self, which):
        for hk, rec in self.data["maps"]["Commitments.CommitmentOf"]["97"]:
            if which in json.dumps(rec) or which in str(rec):
                return hk
        for hk, rec in self.data["maps"]["Commitments.CommitmentOf"]["97"]:
            raw = next(iter(rec["info"]["fields"][0].values()))
            if isinstance(raw, str) and which in bytes.fromhex(raw[2:]).decode(errors="replace"):
                return hk
        raise KeyError(which)

    def test_a_hotkey_keeps_its_first_commitment_forever(self):
        # uid 6's hotkey committed carol/first before (the ledger saw it) and re-registered; the chain
        # now shows only its latest commitment, carol/second. The first one stands, under the new uid.
        r6 = self.hotkey("carol/second")
        ledger = os.path.join(self.dir, "ledger.jsonl")
        with open(ledger, "w") as f:
            f.write(json.dumps({"hotkey": r6, "block": 700, "repo": "carol/first", "revision": "1" * 40}) + "\n")
        rc, out, err, _ = self.run_cli(["commitments", "--netuid", "97", "--ledger", ledger])
        self.assertEqual(rc, 0, err)
        by_uid = {r["uid"]: r for r in map(json.loads, out.splitlines())}
        self.assertEqual((by_uid[6]["repo"], by_uid[6]["block"], by_uid[6]["hotkey"]), ("carol/first", 700, r6))
        # The ledger now holds every hotkey's first commitment; a second run gives the same records.
        self.assertEqual(len(text(ledger).splitlines()), 4)
        rc2, out2, _, _ = self.run_cli(["commitments", "--netuid", "97", "--ledger", ledger])
        self.assertEqual((rc2, out2), (0, out))
        # Even after uid 2's hotkey commits something else, its ledger entry stands.
        data = copy.deepcopy(self.data)
        data["maps"]["Commitments.RevealedCommitments"]["97"] = []
        rc3, out3, _, _ = self.run_cli(["commitments", "--netuid", "97", "--ledger", ledger], data)
        self.assertEqual((rc3, out3), (0, out))

    def test_rpc_failures_are_retried_then_reported(self):
        data = copy.deepcopy(self.data)
        data["rpc_failures"] = {"runtime_call": 2}
        rc, out, err, _ = self.run_cli(["commitments", "--netuid", "97"], data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, text(os.path.join(SAMPLES, "commitments.jsonl")))
        self.assertEqual(err.count("retrying"), 2)
        data["rpc_failures"] = {"runtime_call": 10}
        target = os.path.join(self.dir, "c.jsonl")
        rc, out, err, _ = self.run_cli(["--attempts", "3", "commitments", "--netuid", "97", "-o", target], data)
        self.assertEqual(rc, distil_chain.EXIT_RPC)
        self.assertIn("chain unreachable", err)
        self.assertFalse(os.path.exists(target))
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith("c.jsonl")], [])

    # --- block ---------------------------------------------------------------------------------

    def test_block_is_a_finalized_block_and_its_hash(self):
        data = copy.deepcopy(self.data)
        data["rpc_failures"] = {"get_block": 1}
        rc, out, err, _ = self.run_cli(["block", "--lag", "3"], data)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["block"], 1397)           # finalized 1400, not the head 1402
        self.assertEqual(r["block_hash"], hashlib.sha256(b"replay block 1397").hexdigest())
        self.assertEqual(r["finalized"], 1400)
        self.assertEqual(set(json.loads(text(os.path.join(SAMPLES, "block.jsonl")))), set(r))
        self.assertEqual(self.run_cli(["block", "--lag", "5000"])[0], distil_chain.EXIT_INPUT)

    # --- set-weights -----------------------------------------------------------------------------

    def test_set_weights_through_the_sdk(self):
        rc, out, err, fake = self.set_weights(load(VERDICT))
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        sample = json.loads(text(os.path.join(SAMPLES, "set-weights.jsonl")))
        self.assertEqual(r, sample)
        self.assertEqual(r["call"], "SubtensorModule.set_mechanism_weights")
        self.assertEqual((r["uids"], r["u16"]), ([1], [65535]))    # the SDK's u16 quantization
        self.assertEqual(len(fake.calls), 1)
        self.assertEqual(fake.calls[0]["call"]["params"]["dests"], [1])

    def test_dry_run_plans_and_submits_nothing(self):
        rc, out, err, fake = self.set_weights(load(VERDICT), extra=["--dry-run"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(json.loads(out)["dry_run"])
        self.assertEqual(fake.calls, [])

    def test_commit_reveal_path_is_the_sdks_timelocked_commit(self):
        data = copy.deepcopy(self.data)
        data["storage"]["SubtensorModule.CommitRevealWeightsEnabled"]["[97]"] = True
        rc, out, err, fake = self.set_weights(load(VERDICT), data)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["call"], "SubtensorModule.commit_timelocked_mechanism_weights")
        self.assertIsInstance(r["reveal_round"], int)
        self.assertEqual(fake.calls[0]["call"]["function"], "commit_timelocked_mechanism_weights")

    def test_a_failed_extrinsic_is_exit_4_and_reported(self):
        data = copy.deepcopy(self.data)
        data["submit"] = [{"success": False, "message": "SubtensorModule.WeightVecLengthIsLow"}]
        rc, out, err, fake = self.set_weights(load(VERDICT), data)
        self.assertEqual(rc, distil_chain.EXIT_CHAIN, err)
        r = json.loads(out)
        self.assertFalse(r["success"])
        self.assertIn("WeightVecLengthIsLow", r["message"])
        self.assertEqual(len(fake.calls), 1)         # a chain-side failure is not resubmitted

    def test_rate_limit_and_unregistered_validator_are_the_sdks_preflight(self):
        data = copy.deepcopy(self.data)
        data["storage"]["SubtensorModule.LastUpdate"]["[97]"] = [1350] + [0] * 8
        rc, out, err, fake = self.set_weights(load(VERDICT), data)
        self.assertEqual((rc, out, fake.calls), (distil_chain.EXIT_CHAIN, "", []))
        self.assertIn("rate limit", err)
        data = copy.deepcopy(self.data)
        data["storage"]["SubtensorModule.Uids"] = {}
        rc, out, err, fake = self.set_weights(load(VERDICT), data)
        self.assertEqual((rc, fake.calls), (distil_chain.EXIT_CHAIN, []))
        self.assertIn("not registered", err)

    def test_rpc_failure_on_submit_is_retried(self):
        data = copy.deepcopy(self.data)
        data["rpc_failures"] = {"submit": 1, "finalized_block_number": 1}
        rc, out, err, fake = self.set_weights(load(VERDICT), data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(fake.calls), 1)
        data["rpc_failures"] = {"submit": 9}
        rc, out, err, fake = self.set_weights(load(VERDICT), data, extra=[])
        self.assertEqual((rc, out), (distil_chain.EXIT_RPC, ""))

    def test_refusals(self):
        v = load(VERDICT)
        cases = {
            "failed to decide": dict(v, winner=None, values=[0, 0], reason="no valid king and no records"),
            "blocks old": dict(v, block=100),
            "not in the metagraph": dict(v, uids=[1, 42], values=[0.5, 0.5]),
            "sum to": dict(v, values=[0.6, 0.3]),
            "is now hotkey": dict(v, models=[dict(v["models"][0], hotkey="5Someone")]),
            "not a distil-verdict/1": dict(v, format="other"),
            "ahead of the chain": dict(v, block=5000),
        }
        for why, verdict in cases.items():
            rc, out, err, fake = self.set_weights(verdict)
            self.assertEqual((rc, out, fake.calls), (distil_chain.EXIT_REFUSED, "", []), why)
            self.assertIn(why, err)

    def test_unreadable_verdict_is_an_input_error(self):
        path = os.path.join(self.dir, "half.json")
        with open(path, "w") as f:
            f.write('{"format": "distil-verdict/1", "uids": [1')
        rc, out, err, _ = self.run_cli(["set-weights", "--verdict", path, "--netuid", "97", "--wallet-name", "w",
                                        "--wallet-hotkey", "h"])
        self.assertEqual((rc, out), (distil_chain.EXIT_INPUT, ""))
        self.assertIn("cannot read the verdict", err)

    def test_chain_options_go_before_or_after_the_subcommand(self):
        rc, out, err, _ = self.run_cli(["commitments", "--netuid", "97", "--network", "finney", "--attempts", "2"])
        self.assertEqual((rc, out), (0, text(os.path.join(SAMPLES, "commitments.jsonl"))), err)
        # The real entry point, as validator.sh calls it: --replay after the subcommand, on the file.
        import subprocess
        r = subprocess.run([sys.executable, os.path.join(CHAIN, "distil_chain.py"), "block", "--lag", "3", "--replay", REPLAY],
                           capture_output=True, text=True, env=dict(os.environ, DISTIL_CHAIN_REPLAY=""))
        self.assertEqual((r.returncode, r.stdout), (0, text(os.path.join(SAMPLES, "block.jsonl"))), r.stderr)

    def test_a_killed_writers_temporary_is_removed_by_the_next_writer(self):
        # A PID that is no process (beyond pid_max) and this test's parent, which is alive.
        out = os.path.join(self.dir, "commitments.jsonl")
        dead, live = out + ".tmp-99999999", out + f".tmp-{os.getppid()}"
        for p in (dead, live):
            with open(p, "w") as f:
                f.write("half")
        distil_chain.write_lines(out, [{"uid": 1}])
        self.assertEqual(open(out).read(), '{"uid":1}\n')
        self.assertFalse(os.path.exists(dead))
        self.assertTrue(os.path.exists(live))
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(["commitments.jsonl", os.path.basename(live), "wallets"]))

    def test_usage(self):
        self.assertEqual(self.run_cli(["commitments"])[0], distil_chain.EXIT_USAGE)
        self.assertEqual(self.run_cli(["nope"])[0], distil_chain.EXIT_USAGE)


if __name__ == "__main__":
    unittest.main()

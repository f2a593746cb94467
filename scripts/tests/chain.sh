#!/usr/bin/env bash
# The chain adapter (pipelines/chain/) on the pinned bittensor SDK: sets up .venv-chain
# (scripts/setup-chain.sh, idempotent), then runs pipelines/chain/tests with unittest. The chain is
# replaced only at the SDK's Substrate seam (replay_substrate.py); no live chain is reached.
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/setup-chain.sh
venv="${DISTIL_CHAIN_VENV:-$PWD/.venv-chain}"
echo "chain: bittensor $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("bittensor"))'), replayed chain" >&2
"$venv/bin/python" -m unittest discover -v -s pipelines/chain/tests

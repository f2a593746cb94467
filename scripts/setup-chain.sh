#!/usr/bin/env bash
# One-time (idempotent) set-up of the chain adapter's Python venv (pipelines/chain/): the pinned
# bittensor SDK and huggingface_hub from PyPI (pipelines/chain/requirements.txt). The demo, the
# Swift build and the Swift tests never need it; pipelines/validator.sh and its tests do.
#
#   scripts/setup-chain.sh            venv at .venv-chain (or $DISTIL_CHAIN_VENV)
#
# A stamp (the requirements file's SHA-256) inside the venv makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${DISTIL_CHAIN_VENV:-$PWD/.venv-chain}"
req=pipelines/chain/requirements.txt
want=$(sha256sum "$req" | cut -c1-64)
if [[ -x "$venv/bin/python" && "$(cat "$venv/.distil-requirements" 2>/dev/null)" == "$want" ]]; then
  exit 0
fi
py=$(command -v python3 || true)
[[ -n "$py" ]] || { echo "setup-chain: python3 (3.10+) is not on PATH" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "setup-chain: bittensor 11 needs Python 3.10+" >&2; exit 1; }
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "setup-chain: installing python3-venv" >&2
  sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
  dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
    $sudo apt-get update -qq; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >&2; }
fi
echo "setup-chain: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
[[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
# uv resolves and downloads in parallel: ~30 s here where pip took 4.5 min (one index round trip per
# package, one after another). uv itself comes from PyPI too, pinned; pip is the fallback.
if "$venv/bin/pip" install -q --disable-pip-version-check uv==0.13.9 >&2 \
   && "$venv/bin/uv" pip install -q --python "$venv/bin/python" -r "$req" >&2; then
  :
else
  echo "setup-chain: uv failed; installing with pip" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
fi
"$venv/bin/python" -c 'import bittensor, huggingface_hub' 
echo "$want" > "$venv/.distil-requirements"

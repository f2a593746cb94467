#!/usr/bin/env bash
# One-time (idempotent) set-up: installs the Debian packages the build links against, then builds.
# Called first by both of the README's commands; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libcurl4-openssl-dev libopenblas-dev libzstd-dev pkg-config zstd python3 util-linux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v swift >/dev/null || { echo "setup: swift (6.x) is not on PATH" >&2; exit 1; }
echo "setup: building" >&2
swift build >&2

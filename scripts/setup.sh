#!/usr/bin/env bash
# Set up everything asr-pathways needs on a fresh machine: Debian packages (espeak-ng, tcmalloc)
# and a .venv with pinned Python packages. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1 || need+=(libtcmalloc-minimal4)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${need[*]}"
    echo "setup: run:  sudo apt-get update && sudo apt-get install -y ${need[*]}"
    if [[ " ${need[*]} " == *" espeak-ng "* ]]; then
      echo "setup: espeak-ng is required to build the synthetic corpus" >&2
      exit 1
    fi
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.installed-$(cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

#!/usr/bin/env bash
# Set-up for the README's two commands and CI: a virtual environment in .venv with ecowatch
# (editable) and its test dependencies. Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# A fresh environment is about 7 GiB (torch 2.14.1 brings its CUDA libraries even on a CPU machine)
# and pip unpacks into $TMPDIR on the way: stop early with a message rather than fail half-way with
# "No space left on device". ECOWATCH_SKIP_DISK_CHECK=1 skips the check.
NEED_GIB=${ECOWATCH_SETUP_NEED_GIB:-8}
free_gib() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {printf "%d", $4 / 1048576}'; }
if [ "${ECOWATCH_SKIP_DISK_CHECK:-0}" != 1 ] && ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  for dir in . "${TMPDIR:-/tmp}"; do
    free=$(free_gib "$dir")
    if [ -n "$free" ] && [ "$free" -lt "$NEED_GIB" ]; then
      echo "error: setting up ecowatch's environment needs about $NEED_GIB GiB free on the disk of $(cd "$dir" && pwd);" \
           "only $free GiB is free. Free some space (old virtual environments, pip's cache: pip cache purge)" \
           "or point TMPDIR at a roomier disk, then run this again." >&2
      exit 1
    fi
  done
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# Packages installed without their declared dependencies (see the file for why).
.venv/bin/python -m pip install --quiet --no-deps -r requirements/no-deps.txt

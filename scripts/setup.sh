#!/usr/bin/env bash
# Set-up for the README's two commands and CI: a virtual environment in .venv with ecowatch
# (editable) and its test dependencies. Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# Packages installed without their declared dependencies (see the file for why).
.venv/bin/python -m pip install --quiet --no-deps -r requirements/no-deps.txt

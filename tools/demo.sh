#!/usr/bin/env bash
# The main job on a fresh machine: bring up the local Cinder stack, store an
# image of known and one of unknown size with the cinder_ext store, download
# and verify them, print what happened. Arguments go to tools/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import cinder_ext_store' 2>/dev/null; then
    echo "[demo] installing cinder_ext_store into .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q -c tools/constraints.txt -e . > /dev/null
fi
tools/localstack.sh up
PYTHONWARNINGS=ignore .venv/bin/python tools/demo.py "$@"

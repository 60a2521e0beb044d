#!/usr/bin/env bash
# The benchmark (see tools/bench.py): brings up the full local stack if
# needed and runs in its Glance venv. Arguments go to tools/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/stack up >&2
PYTHONPATH=$PWD PYTHONWARNINGS=ignore .stack/venv-glance/bin/python tools/bench.py "$@"

#!/usr/bin/env bash
# The load run (see tools/load.py): brings up the full local stack if
# needed and runs in its Glance venv. Arguments go to tools/load.py.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/stack up >&2
PYTHONPATH=$PWD PYTHONWARNINGS=ignore .stack/venv-glance/bin/python tools/load.py "$@"

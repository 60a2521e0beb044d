#!/usr/bin/env bash
# The main job on a fresh machine: bring up the local stack (Keystone,
# Cinder, glance-api with the cinder_ext store), upload an image of known and
# one of unknown size through the Glance API, download and verify them, and
# print what happened. Arguments go to tools/demo.py (--size-mib N, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/stack up
PYTHONPATH=$PWD PYTHONWARNINGS=ignore .stack/venv-glance/bin/python tools/demo.py "$@"

#!/usr/bin/env bash
# Run every test of the project: style, unit tests, coverage, release notes.
#
# Installs what it needs (tox in ./.tools, test venvs in ./.tox); needs only
# python3 with venv and network access to PyPI. Extra arguments are passed to
# tox, e.g. `tools/run-tests.sh -e py3`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .tools/bin/tox ]; then
    python3 -m venv .tools
    .tools/bin/pip install -q -c tools/constraints.txt tox
fi

envs=(-e pep8,py3,cover,releasenotes)
[ $# -gt 0 ] && envs=("$@")

status=0
.tools/bin/tox "${envs[@]}" || status=$?

# One closing line for CI: the unit-test counts of the last stestr run.
if [ -d .stestr ]; then
    .tox/py3/bin/stestr last --subunit 2>/dev/null \
        | .tox/py3/bin/subunit-stats 2>/dev/null \
        | awk '/^Passed tests:/ {p=$3} /^Failed tests:/ {f=$3}
               END {if (p != "") printf "unit: %d passed, %d failed\n", p, f}'
fi
exit $status

#!/usr/bin/env bash
# Run every test of the project: style, unit tests, coverage, release notes,
# the documentation build, and the functional tests against a real Cinder
# (tools/stack).
#
# Installs what it needs (tox in ./.tools, test venvs in ./.tox, the stack's
# Debian packages and Cinder venv); runs as root on Debian 12. A stack that is
# already running is reused and left running; one started here is stopped at
# the end. Extra arguments are passed to tox instead, e.g.
# `tools/run-tests.sh -e py3`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .tools/bin/tox ]; then
    python3 -m venv .tools
    .tools/bin/pip install -q -c tools/constraints.txt tox
fi

# Without a stack: style, unit tests, coverage, notes, docs and the
# package (built, installed alone in a fresh venv, loaded), side by
# side (making their venvs is most of their time); then the functional
# suites, one after the other (they share the stack and its leak checks).
quick=(-e pep8,py3,cover,releasenotes,docs,package)
envs=(-e functional,functional-rbd)
everything=1
if [ $# -gt 0 ]; then quick=(); envs=("$@"); everything=; fi

started_stack=
up_pid=
if [[ " ${envs[*]} " == *functional* ]] && ! tools/stack health; then
    started_stack=1
    # Whatever happens next, stop what this script started.
    trap 'tools/stack down' EXIT
    # Made while the quick envs run (neither needs the other); its output
    # is shown when it is ready.
    up_log=$(mktemp)
    tools/stack up >"$up_log" 2>&1 &
    up_pid=$!
fi

status=0
SECONDS=0
if [ ${#quick[@]} -gt 0 ]; then
    # --parallel-live: their output in the log as they run.
    .tools/bin/tox --parallel auto --parallel-live "${quick[@]}" || status=$?
fi
if [ -n "$up_pid" ]; then
    up_status=0
    wait "$up_pid" || up_status=$?
    cat "$up_log"
    rm -f "$up_log"
    if [ "$up_status" != 0 ]; then
        echo "tools/stack up failed ($up_status)"
        exit "$up_status"
    fi
fi
.tools/bin/tox "${envs[@]}" || status=$?
echo "tox took ${SECONDS}s"
if [ -n "$started_stack" ]; then
    tools/stack down
    if [ -n "$everything" ]; then
        # The light stack (no Keystone, no Glance) gets a smoke test too.
        tools/stack up --noauth
        .tools/bin/tox -e functional-noauth || status=$?
    fi
fi

# One closing line for CI: unit (last run) + functional counts.
counts() {  # counts [stestr options]: "passed failed" of the last run
    .tox/py3/bin/stestr "$@" last --subunit 2>/dev/null \
        | .tox/py3/bin/subunit-stats 2>/dev/null \
        | awk '/^Passed tests:/ {p=$3} /^Failed tests:/ {f=$3}
               END {if (p != "") print p, f}'
}
if [ -x .tox/py3/bin/stestr ]; then
    read -r up uf <<< "$(counts) "
    fp=0 ff=0
    for repo in .stestr-functional .stestr-rbd .stestr-noauth; do
        [ -d "$repo/.stestr" ] || continue
        read -r p f <<< "$(counts --repo-url "$repo") "
        fp=$((fp + ${p:-0})) ff=$((ff + ${f:-0}))
    done
    echo "tests: $(( ${up:-0} + fp )) passed, $(( ${uf:-0} + ff )) failed"
fi
exit $status

#!/usr/bin/env bash
# Build the sdist and the wheel, check their metadata, and install the wheel
# alone into a fresh virtualenv (its dependencies from the package index, the
# project's constraints) to prove that what pip installs works outside a
# checkout: glance_store loads the store through its entry point, the console
# script answers --help, and the data files (rootwrap filters, sudoers
# example, sample configuration) are where the guide says.
#
# Run by `tox -e package` (part of the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m build --sdist --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
"$python" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
echo "built $(basename "$sdist") and $(basename "$wheel")"

# The data files (installed path: checkout file), in the wheel as pip will
# install them.
declare -A expected=(
    [etc/glance/rootwrap.d/cinder_ext_store.filters]=etc/glance/rootwrap.d/cinder_ext_store.filters
    [share/cinder-ext-store/glance-api.conf.sample]=etc/glance-api.conf.sample
    [share/cinder-ext-store/sudoers.d/glance-cinder-ext-store]=etc/sudoers.d/glance-cinder-ext-store
)
listing=$("$python" -m zipfile -l "$wheel")
for f in "${!expected[@]}"; do
    if ! grep -q "\.data/data/$f " <<<"$listing"; then
        echo "the wheel lacks the data file $f" >&2
        exit 1
    fi
done

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q -c "$top/tools/constraints.txt" "$wheel"
cd "$work"  # nothing of the checkout on the path
for f in "${!expected[@]}"; do
    cmp "$work/venv/$f" "$top/${expected[$f]}" \
        || { echo "installed $f differs from ${expected[$f]}" >&2; exit 1; }
done
"$work/venv/bin/cinder-ext-store" --help >/dev/null
"$work/venv/bin/python" - <<'EOF'
import os
import sys

from glance_store import driver
from glance_store import multi_backend
from oslo_config import cfg

import cinder_ext_store

assert cinder_ext_store.__file__.startswith(sys.prefix), (
    'imported from %s, not from the wheel' % cinder_ext_store.__file__)
# Loaded as glance-api loads the stores of a multi-store layout.
with open('glance-api.conf', 'w') as f:
    f.write('[DEFAULT]\nenabled_backends = images:cinder_ext\n'
            '[glance_store]\ndefault_backend = images\n'
            '[oslo_concurrency]\nlock_path = %s/locks\n' % os.getcwd())
conf = cfg.CONF
conf.register_opt(cfg.DictOpt('enabled_backends'))
conf(['--config-file', 'glance-api.conf'], project='glance')
multi_backend.register_store_opts(conf)
multi_backend.create_multi_stores(conf)
store = multi_backend.get_store_from_store_identifier('images')
assert isinstance(store, driver.Store), store
assert type(store).__module__ == 'cinder_ext_store.store', type(store)
assert 'cinder' in store.get_schemes(), store.get_schemes()
assert store.add.__func__ is type(store).add, 'configure disabled add'
print('glance_store loaded %s.%s for the scheme(s) %s; installed at %s' % (
    type(store).__module__, type(store).__name__,
    ', '.join(store.get_schemes()),
    os.path.dirname(cinder_ext_store.__file__)))
EOF
echo "package ok: the wheel installs alone and loads in glance_store"

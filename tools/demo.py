# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The main job, against the local stack: store images, read them back.

Loads the cinder_ext store the way Glance does (glance_store multi-store),
uploads one image of known size and one of unknown size (chunked, so the
volume grows while attached), downloads and verifies both, and prints what
happened. Usage: demo.py [--size-mib N] [--keep]
"""

import argparse
import hashlib
import logging
import os
import random
import sys
import tempfile
import time

from glance_store import location
from glance_store import multi_backend
from oslo_config import cfg
from oslo_context import context as oslo_context

STACK_DIR = os.environ.get('CINDER_EXT_STACK_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '.localstack'))


class Counting(logging.Handler):
    """Collects the store's own report lines."""

    def __init__(self):
        super(Counting, self).__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.name.startswith('cinder_ext_store'):
            self.lines.append(record.getMessage())


class Source(object):
    """Incompressible data, cheap to make: slices of a random pattern."""

    def __init__(self, size, seed):
        self.left = size
        self.rand = random.Random(seed)
        self.pattern = self.rand.randbytes(16 << 20)
        self.sha256 = hashlib.sha256()

    def read(self, n):
        n = min(n, self.left, 8 << 20)
        start = self.rand.randrange(len(self.pattern) - n + 1)
        chunk = self.pattern[start:start + n]
        self.left -= n
        self.sha256.update(chunk)
        return chunk


def load_store(env):
    conf = cfg.CONF
    conf.register_opt(cfg.DictOpt('enabled_backends'))
    conf([], project='glance')
    conf.set_override('enabled_backends', {'images': 'cinder_ext'})
    multi_backend.register_store_opts(conf)
    conf.set_override('default_backend', 'images', group='glance_store')
    conf.set_override('lock_path', tempfile.mkdtemp(prefix='ces-demo-'),
                      group='oslo_concurrency')
    for name, value in (
            ('cinder_endpoint_template', env['CINDER_EXT_ENDPOINT_TEMPLATE']),
            ('cinder_volume_type', env['CINDER_EXT_VOLUME_TYPE']),
            ('cinder_do_extend_attached', True)):
        conf.set_override(name, value, group='images')
    multi_backend.create_multi_stores(conf)
    multi_backend.verify_store()
    return conf, multi_backend.get_store_from_store_identifier('images')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1536)
    parser.add_argument('--keep', action='store_true',
                        help='keep the images (volumes) afterwards')
    args = parser.parse_args()
    with open(os.path.join(STACK_DIR, 'stack.env')) as f:
        env = dict(line.strip().split('=', 1) for line in f if '=' in line)
    report = Counting()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger('cinder_ext_store').setLevel(logging.INFO)
    logging.getLogger().addHandler(report)

    conf, store = load_store(env)
    ctx = oslo_context.RequestContext(user_id='demo',
                                      project_id=env['CINDER_EXT_PROJECT_ID'])
    size = args.size_mib * 1024 * 1024 + 12345
    failures = 0
    print('\ncinder_ext demo: %d-byte images into Cinder at %s\n'
          % (size, env['CINDER_EXT_CINDER_URL']))
    for label, declared in (('known size', size), ('unknown size', 0)):
        del report.lines[:]
        src = Source(size, seed=declared)
        t0 = time.monotonic()
        uri, written, md5, multihash, _ = store.add(
            'demo-%s' % label.replace(' ', '-'), src, declared, 'sha512',
            context=ctx)
        t_up = time.monotonic() - t0
        loc = location.get_location_from_uri_and_backend(uri, 'images',
                                                         conf=conf)
        t0 = time.monotonic()
        it, length = store.get(loc, context=ctx)
        down = hashlib.sha256()
        for chunk in it:
            down.update(chunk)
        t_down = time.monotonic() - t0
        ok = (written == size == length and
              down.hexdigest() == src.sha256.hexdigest())
        failures += not ok
        stored = [line for line in report.lines if 'stored in' in line]
        print('%-13s %s' % (label + ':', uri))
        print('    upload   %8.1f MiB/s  (%.1fs)' % (
            size / 1048576.0 / t_up, t_up))
        print('    download %8.1f MiB/s  (%.1fs)' % (
            size / 1048576.0 / t_down, t_down))
        print('    store    %s' % (stored[-1].split(': ', 1)[-1]
                                   if stored else '?'))
        for line in report.lines:
            if 'extended' in line or 'does not work' in line:
                print('    growth   %s' % line)
        print('    verify   sha256 %s' % ('OK' if ok else 'MISMATCH'))
        if not args.keep:
            store.delete(loc, context=ctx)
    print('\nThe stack keeps running: tools/localstack.sh status | down.')
    print('Its Cinder (noauth): export OS_AUTH_TYPE=noauth '
          'OS_VOLUME_API_VERSION=3.54 CINDERCLIENT_BYPASS_URL=%s '
          'OS_PROJECT_ID=%s OS_USER_ID=admin; cinder list'
          % (env['CINDER_EXT_CINDER_URL'], env['CINDER_EXT_PROJECT_ID']))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

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

"""Functional tests: the store against the real local Cinder stack.

The stack is reused when running, else started with tools/localstack.sh
(and left running; ``tools/localstack.sh down`` stops it). Stores are loaded
the way Glance loads them: glance_store's multi-store functions on the
process's ``ConfigOpts``.
"""

import hashlib
import logging
import os
import random
import subprocess
import sys
import tempfile
import time

from cinderclient import client as cinder_client
import fixtures
from glance_store import location
from glance_store import multi_backend
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint
from oslo_config import cfg
from oslo_context import context as oslo_context
import testtools

from cinder_ext_store import store as store_mod
from cinder_ext_store.tests.functional import stackenv

MiB = 1024 * 1024
GiB = 1024 * MiB

# backend id -> (store type, volume type key, extend attached)
BACKENDS = {
    'online': ('cinder_ext', 'CINDER_EXT_VOLUME_TYPE', True),
    'offline': ('cinder_ext', 'CINDER_EXT_VOLUME_TYPE', False),
    'nofeature': ('cinder_ext', 'CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND',
                  True),
    # No volume type: the in-tree driver crashes at start-up when it has a
    # type to check and no service credentials. Cinder's default applies.
    'intree': ('cinder', None, True),
}

_ENV = None


def stack_env():
    """The stack's settings, starting the local stack if needed."""
    global _ENV
    if _ENV is None:
        if not _stack_answers():
            subprocess.run([os.path.join(stackenv.REPO, 'tools',
                                         'localstack.sh'), 'up'],
                           check=True, stdout=sys.stderr)
        _ENV = stackenv.read_env()
    return _ENV


def _stack_answers():
    if not os.path.exists(stackenv.ENV_FILE):
        return False
    try:
        Inspector(stackenv.read_env()).volumes()
        return True
    except Exception:
        return False


class Context(oslo_context.RequestContext):
    """A Glance-like request context (Glance's carries a catalog)."""

    def __init__(self, **kwargs):
        super(Context, self).__init__(**kwargs)
        self.service_catalog = []


class Inspector(object):
    """Looks at Cinder and this host from outside the store."""

    def __init__(self, env):
        self.env = env
        self.local = env.get('CINDER_EXT_STACK') == 'local'
        if not stackenv.uses_keystone(env):
            url = env['CINDER_EXT_CINDER_URL']
            auth = token_endpoint.Token(
                url, 'admin:%s' % env['CINDER_EXT_PROJECT_ID'])
        else:
            from keystoneauth1 import identity
            auth = identity.V3Password(
                auth_url=env['CINDER_EXT_AUTH_URL'],
                username=env['CINDER_EXT_USERNAME'],
                password=env['CINDER_EXT_PASSWORD'],
                project_name=env['CINDER_EXT_PROJECT_NAME'],
                user_domain_name=env['CINDER_EXT_USER_DOMAIN_NAME'],
                project_domain_name=env['CINDER_EXT_PROJECT_DOMAIN_NAME'])
        self.session = ksa_session.Session(auth=auth)
        self.cinder = cinder_client.Client('3.54', session=self.session,
                                           region_name='RegionOne')

    def volumes(self):
        return {v.id: v for v in self.cinder.volumes.list()}

    def attachments(self):
        return {a.id for a in self.cinder.attachments.list()}

    def loops(self):
        """Loop devices backing the stack's volume files."""
        if not self.local:
            return set()
        out = subprocess.run(['losetup', '-a'], capture_output=True,
                             text=True, check=True).stdout
        vdir = self.env['CINDER_EXT_VOLUME_DIR']
        return {line.split(':', 1)[0] for line in out.splitlines()
                if vdir in line}

    def snapshot(self):
        return set(self.volumes()), self.attachments(), self.loops()


class Source(object):
    """Deterministic incompressible image data; hashes what it hands out.

    The bytes are a stream of fixed-size blocks, each a block counter and
    a slice at a random offset of a seeded random pattern: unique blocks,
    generated far faster than hashing, and independent of read sizes.

    :param fail_at: raise IOError once this many bytes were read (a client
        that disconnects)
    :param digests: hashlib names to compute over what was handed out
    """

    BLOCK = 1024 * 1024

    def __init__(self, size, seed=0, fail_at=None, digests=('sha256',)):
        self.size = size
        self._rand = random.Random(seed)
        self._pattern = self._rand.randbytes(4 * self.BLOCK)
        self._blocks = 0
        self._buf = b''
        self._left = size
        self._fail_at = fail_at
        self.given = 0
        self.digests = {name: hashlib.new(name) for name in digests}

    def read(self, n):
        if self._fail_at is not None and self.given >= self._fail_at:
            raise IOError('client disconnected after %d bytes' % self.given)
        n = min(n, self._left)
        if self._fail_at is not None:
            n = min(n, self._fail_at - self.given)
        while len(self._buf) < n:
            self._buf += self._block()
        chunk, self._buf = self._buf[:n], self._buf[n:]
        self._left -= n
        self.given += n
        for digest in self.digests.values():
            digest.update(chunk)
        return chunk

    def _block(self):
        self._blocks += 1
        start = self._rand.randrange(len(self._pattern) - self.BLOCK)
        return (self._blocks.to_bytes(8, 'little') +
                self._pattern[start:start + self.BLOCK - 8])

    def hexdigest(self, name='sha256'):
        return self.digests[name].hexdigest()

    @classmethod
    def data(cls, size, seed=0):
        src = cls(size, seed, digests=())
        return b''.join(iter(lambda: src.read(cls.BLOCK), b''))


_LOADED = False


def load_stores(env):
    """Register and create the test backends once per process."""
    global _LOADED
    conf = cfg.CONF
    if _LOADED:
        return conf
    try:
        conf.register_opt(cfg.DictOpt('enabled_backends'))
    except cfg.DuplicateOptError:
        pass
    conf([], project='glance')
    conf.set_override('enabled_backends', {k: v[0]
                                           for k, v in BACKENDS.items()})
    multi_backend.register_store_opts(conf)
    conf.set_override('default_backend', 'online', group='glance_store')
    conf.set_override('lock_path', tempfile.mkdtemp(prefix='ces-lock-'),
                      group='oslo_concurrency')
    for backend, (_type, vtype_key, extend) in BACKENDS.items():
        for name, value in stackenv.store_auth_options(env).items():
            conf.set_override(name, value, group=backend)
        if vtype_key and env.get(vtype_key):
            conf.set_override('cinder_volume_type', env[vtype_key],
                              group=backend)
        conf.set_override('cinder_do_extend_attached', extend, group=backend)
        conf.set_override('cinder_state_transition_timeout', 120,
                          group=backend)
    # As Glance deployments running as root do: start privsep-helper
    # directly (the in-tree driver would otherwise try sudo).
    import os_brick.privileged  # noqa: F401  (registers the group)
    conf.set_override('helper_command',
                      os.path.join(os.path.dirname(sys.executable),
                                   'privsep-helper'),
                      group='privsep_osbrick')
    multi_backend.create_multi_stores(conf)
    _LOADED = True
    return conf


class FunctionalTestCase(testtools.TestCase):

    def setUp(self):
        super(FunctionalTestCase, self).setUp()
        self.env = stack_env()
        self.conf = load_stores(self.env)
        self.inspect = Inspector(self.env)
        # With service credentials the context only names the owner.
        self.context = Context(user_id='glance',
                               project_id=self.env.get(
                                   'CINDER_EXT_PROJECT_ID', 'c0ffee00'))
        self.log = self.useFixture(fixtures.FakeLogger(
            level=logging.INFO, format='%(levelname)s %(name)s %(message)s'))
        for backend in BACKENDS:
            store = self.store(backend)
            if isinstance(store, store_mod.Store):
                store.configure()  # forget a remembered extend refusal
        self.before = self.inspect.snapshot()

    def store(self, backend):
        return multi_backend.get_store_from_store_identifier(backend)

    def location(self, uri, backend, image_id=None):
        store = self.store(backend)
        return location.Location('cinder', store.get_store_location_class(),
                                 self.conf, uri=uri, image_id=image_id,
                                 backend=backend)

    def add(self, backend, source, size, image_id='func-image'):
        result = self.store(backend).add(image_id, source, size, 'sha512',
                                         context=self.context)
        self.addCleanup(self._forget, result[0].rsplit('/', 1)[1])
        return result

    def _forget(self, volume_id):
        """Delete a test image's volume if a failed test left it."""
        try:
            self.inspect.cinder.volumes.delete(volume_id)
        except Exception:
            pass  # already deleted by the test

    def read_sha256(self, uri, backend, **kw):
        it, length = self.store(backend).get(
            self.location(uri, backend), context=self.context, **kw)
        digest = hashlib.sha256()
        total = 0
        for chunk in it:
            digest.update(chunk)
            total += len(chunk)
        self.assertEqual(length, total)
        return digest.hexdigest()

    def delete(self, uri, backend):
        self.store(backend).delete(self.location(uri, backend),
                                   context=self.context)

    def assertNoLeftovers(self, timeout=60):
        """Cinder and this host are as before the test (deletes are async)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.inspect.snapshot()
            if now == self.before or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        names = ('volumes', 'attachments', 'loop devices')
        for name, was, is_ in zip(names, self.before, now):
            self.assertEqual(was, is_, 'leftover %s' % name)

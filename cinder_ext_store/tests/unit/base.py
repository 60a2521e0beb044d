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

import hashlib
import io
import logging
import os

import fixtures
from glance_store import location
from oslo_concurrency import opts as concurrency_opts
from oslo_config import cfg
from oslo_utils import units
import testtools

from cinder_ext_store import options
from cinder_ext_store import store as store_mod
from cinder_ext_store.tests.unit import fakes
from cinder_ext_store import tuning

BACKEND = 'images'
#: Unit tests run with 1 MiB "GiB" so growth over many steps stays fast.
TEST_GIB = units.Mi
#: What the store's parts are given in unit tests: a 1 MiB GiB, many small
#: pipeline buffers (every test crosses buffer edges), and status polls
#: and attach retries that take no real seconds, and attachments of
#: unknown origin watched for a fifth of a second.
#: Seconds a unit test may take (OS_TEST_TIMEOUT overrides).
TEST_TIMEOUT = int(os.environ.get('OS_TEST_TIMEOUT') or 60)
TUNING = tuning.Tuning(gib=TEST_GIB, buffer_size=64 * units.Ki,
                       sleep=fakes.no_wait, attach_settle=0.2,
                       readers_leave=0.2)


def payload(size, seed=0):
    """Deterministic incompressible-looking bytes."""
    out = bytearray()
    block = hashlib.sha512(b'%d' % seed).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block * 16
    return bytes(out[:size])


def device_file(test, size=1 << 20, head=b'old-bytes-kept'):
    """A sparse file standing for an attached device; returns its path."""
    path = os.path.join(test.useFixture(fixtures.TempDir()).path, 'dev')
    with open(path, 'wb') as f:
        f.write(head)
        f.truncate(size)
    return path


class Context(object):
    def __init__(self, project_id='c0ffee00c0ffee00c0ffee00c0ffee00',
                 is_admin=False):
        self.project_id = project_id
        self.is_admin = is_admin
        self.user_id = 'user'
        self.auth_token = None
        self.service_catalog = None

    def to_dict(self):
        return {'tenant': self.project_id, 'project_id': self.project_id,
                'user': self.user_id}


class TestCase(testtools.TestCase):
    """A unit test, bounded in time (a hang fails, naming the test)."""

    def setUp(self):
        super(TestCase, self).setUp()
        self.useFixture(fixtures.Timeout(TEST_TIMEOUT, gentle=True))
        # A temporary directory of the test's own: the fakes write what
        # os-brick writes to /tmp (brickrbd_*), which the functional
        # tests' leak checks watch, maybe in a run going on meanwhile.
        self.useFixture(fixtures.MonkeyPatch(
            'tempfile.tempdir', self.useFixture(fixtures.TempDir()).path))
        # Each test its own process-wide transfer memory budget.
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.memory._PROCESS', None))


class StoreTestCase(TestCase):
    """A multi-store ``cinder_ext`` backend over a :class:`FakeCinder`."""

    extend_attached = True
    timeout = 5

    def setUp(self):
        super(StoreTestCase, self).setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cloud = fakes.FakeCinder(self.tmp, gib=TEST_GIB)
        self.host = fakes.FakeHost()
        self.conf = self.make_conf()
        self.store = self.make_store()
        self.context = Context()

    def make_conf(self, **overrides):
        conf = cfg.ConfigOpts()
        conf([], project='glance')
        for group, opts in concurrency_opts.list_opts():
            conf.register_opts(opts, group=group)
        conf.set_override('lock_path', os.path.join(self.tmp, 'lock'),
                          group='oslo_concurrency')
        conf.register_opts(options.OPTIONS, group=BACKEND)
        conf.register_opts(store_mod.Store.MULTI_BACKEND_OPTIONS,
                           group=BACKEND)
        values = dict(cinder_do_extend_attached=self.extend_attached,
                      cinder_state_transition_timeout=self.timeout,
                      # Reads that straddle buffer boundaries.
                      cinder_ext_read_size=7001)
        values.update(overrides)
        for name, value in values.items():
            conf.set_override(name, value, group=BACKEND)
        return conf

    def make_store(self, conf=None):
        store = store_mod.Store(conf or self.conf, backend=BACKEND,
                                tuning=TUNING)
        store.configure()
        store.cinder = fakes.FakeSession(self.cloud, self.timeout, TUNING)
        store.host = self.host
        # Small read chunks so a few MiB of data take many reads (uploads
        # are kept small by cinder_ext_read_size and BUFFER_SIZE above).
        store.READ_CHUNKSIZE = 256 * units.Ki
        return store

    def location(self, uri, image_id=None):
        loc_cls = self.store.get_store_location_class()
        return location.Location('cinder', loc_cls, self.conf, uri=uri,
                                 image_id=image_id, backend=BACKEND)

    def add(self, data, size=None, image_id='9f1c7b0e-image', source=None,
            store=None):
        size = len(data) if size is None else size
        return (store or self.store).add(
            image_id, source or io.BytesIO(data), size, 'sha512',
            context=self.context)

    def volume_id(self, uri):
        return uri.rsplit('/', 1)[1]

    def assertNothingLeft(self):
        """No volume, attachment, connection or file remains."""
        self.cloud.finish_transitions()  # Cinder deletes asynchronously
        self.assertEqual({}, self.cloud.volumes)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        self.assertEqual([], [f for f in os.listdir(self.tmp)
                              if f.startswith('volume-')])

    def assertStored(self, uri, data):
        vid = self.volume_id(uri)
        self.assertEqual(data, self.cloud.data(vid, len(data)))
        vol = self.cloud.volumes[vid]
        self.assertEqual(str(len(data)), vol['metadata']['image_size'])
        self.assertEqual('available', vol['status'])
        self.assertTrue(vol['readonly'])
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        return vol

    def read_all(self, uri, **kw):
        it, length = self.store.get(self.location(uri), context=self.context,
                                    **kw)
        data = b''.join(it)
        self.assertEqual(length, len(data))
        return data

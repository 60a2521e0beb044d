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

from concurrent import futures
import hashlib
import signal
import subprocess
import sys
import threading

import ddt
from glance_store import exceptions

from cinder_ext_store.tests.functional import base
from harness import images
from harness.stack import service

KNOWN = 300 * base.MiB + 123
# Unknown size: 1 -> 2 -> 3 GiB, two extensions.
UNKNOWN = 2 * base.GiB + 100 * base.MiB + 7


class TestRoundTrip(base.FunctionalTestCase):

    def test_known_size(self):
        src = images.ImageSource(KNOWN, seed=1,
                                 digests=('sha256', 'md5', 'sha512'))
        uri, written, md5, multihash, meta = self.add('online', src, KNOWN)
        self.assertEqual(KNOWN, written)
        self.assertEqual(src.hexdigest('md5'), md5)
        self.assertEqual(src.hexdigest('sha512'), multihash)
        self.assertEqual({'store': 'online'}, meta)
        vid = uri.rsplit('/', 1)[1]
        vol = self.inspect.volumes()[vid]
        self.assertEqual(1, vol.size)
        self.assertEqual(str(KNOWN), vol.metadata['image_size'])
        self.assertEqual('image-func-image', vol.name)
        self.assertEqual('available', vol.status)
        added = self.stats.last('add')
        self.assertEqual((KNOWN, 0, 1, vid),
                         (added.bytes, added.extends, added.attachments,
                          added.volume_id))
        self.assertTrue(added.succeeded)

        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'online'))
        for offset, length in ((0, 1000), (base.MiB - 5, 3 * base.MiB),
                               (KNOWN - 10, 10)):
            want = hashlib.sha256(src.expected(offset, length)).hexdigest()
            self.assertEqual(want, self.read_sha256(
                uri, 'online', offset=offset, chunk_size=length))
        self.assertEqual(KNOWN, self.store('online').get_size(
            self.location(uri, 'online'), context=self.context))

        self.delete(uri, 'online')
        self.assertNoLeftovers()
        self.assertRaises(exceptions.NotFound, self.store('online').get_size,
                          self.location(uri, 'online'), context=self.context)


class TestUnknownSize(base.FunctionalTestCase):

    def roundtrip(self, backend):
        src = images.ImageSource(UNKNOWN, seed=2)
        uri, written, _md5, _multihash, _meta = self.add(backend, src, 0)
        self.assertEqual(UNKNOWN, written)
        vol = self.inspect.volumes()[uri.rsplit('/', 1)[1]]
        self.assertEqual(3, vol.size)
        self.assertEqual(str(UNKNOWN), vol.metadata['image_size'])
        added = self.stats.last('add')
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, backend))
        self.delete(uri, backend)
        self.assertNoLeftovers()
        return added

    def test_online_extend(self):
        added = self.roundtrip('online')
        self.assertEqual((2, 1, ['online', 'online']),
                         (added.extends, added.attachments, added.growth))
        self.assertIsNone(self.store('online').online_extend.refused)

    def test_offline_loop(self):
        added = self.roundtrip('offline')
        self.assertEqual((2, 3, ['offline', 'offline']),
                         (added.extends, added.attachments, added.growth))

    def test_fallback_when_backend_refuses_online_extend(self):
        store = self.store('nofeature')
        added = self.roundtrip('nofeature')
        # The scheduler left the volume in-use at its old size: the first
        # step is retried offline (its in-use request counts as an extend),
        # and the second goes offline at once.
        self.assertEqual(['offline', 'offline'], added.growth)
        self.assertEqual(3, added.extends)
        self.assertIn('does not support online extend',
                      store.online_extend.refused)


class TestFailures(base.FunctionalTestCase):

    def test_client_disconnects_mid_upload(self):
        src = images.ImageSource(UNKNOWN, seed=3, fail_at=1 * base.GiB + 5)
        self.assertRaises(IOError, self.add, 'online', src, 0)
        self.assertNoLeftovers()
        failed = self.stats.last('add')
        self.assertFalse(failed.succeeded)
        self.assertIsInstance(failed.error, IOError)

    def test_declared_size_larger_than_data(self):
        src = images.ImageSource(64 * base.MiB, seed=4)
        self.assertRaises(exceptions.Invalid, self.add, 'online', src,
                          64 * base.MiB + 1)
        self.assertNoLeftovers()

    def test_more_data_than_declared(self):
        src = images.ImageSource(64 * base.MiB, seed=5)
        self.assertRaises(exceptions.Invalid, self.add, 'offline', src,
                          32 * base.MiB)
        self.assertNoLeftovers()


class TestDropIn(base.FunctionalTestCase):
    """Images written by either driver are read by the other."""

    SIZE = 100 * base.MiB + 1

    def test_intree_writes_ours_reads(self):
        src = images.ImageSource(self.SIZE, seed=6)
        uri = self.add('intree', src, self.SIZE)[0]
        self.assertTrue(uri.startswith('cinder://intree/'))
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'online'))
        self.delete(uri, 'online')
        self.assertNoLeftovers()

    def test_ours_writes_intree_reads(self):
        src = images.ImageSource(self.SIZE, seed=7)
        uri = self.add('online', src, self.SIZE)[0]
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'intree'))
        self.assertEqual(self.SIZE, self.store('intree').get_size(
            self.location(uri, 'intree'), context=self.context))
        self.delete(uri, 'intree')
        self.assertNoLeftovers()


@ddt.ddt
class TestConcurrentReaders(base.FunctionalTestCase):

    @ddt.data('online', 'multiattach')
    def test_readers_share_one_attachment(self, backend):
        if backend == 'multiattach' and not (
                self.cloud.storage_facts.volume_type_multiattach):
            self.skipTest('this cloud names no multiattach volume type')
        size = 100 * base.MiB + 9
        src = images.ImageSource(size, seed=9)
        uri = self.add(backend, src, size)[0]
        volume = self.inspect.volumes()[uri.rsplit('/', 1)[1]]
        self.assertEqual(backend == 'multiattach', volume.multiattach)
        opened = threading.Barrier(6)
        held = []

        def read():
            it, _ = self.store(backend).get(self.location(uri, backend),
                                            context=self.context)
            if opened.wait(30) == 0:
                held.append(self.inspect.attachments() -
                            self.before['attachments'])
            opened.wait(30)
            return hashlib.sha256(b''.join(it)).hexdigest()

        with futures.ThreadPoolExecutor(6) as pool:
            digests = list(pool.map(lambda _: read(), range(6)))
        self.assertEqual([src.hexdigest()] * 6, digests)
        self.assertEqual(1, len(held[0]))  # six readers, one attachment
        self.delete(uri, backend)
        self.assertNoLeftovers()


# A reader in another process: loads the stores as the tests do, starts
# reading, says so, and waits to be killed.
_READER = '''
import sys, time
from cinder_ext_store.tests.functional import base
from harness import stores
uri = sys.argv[1]
conf = stores.load(base.cloud(), base.backends(base.cloud()), 'online')
store = stores.get('online')
it, _ = store.get(stores.location(conf, uri, 'online'),
                  context=base.Context(user_id='glance'))
next(it)
print('reading', flush=True)
time.sleep(600)
'''


class TestReaderCrash(base.FunctionalTestCase):

    def test_killed_reader_process_does_not_pin_the_attachment(self):
        size = 64 * base.MiB + 3
        src = images.ImageSource(size, seed=8)
        uri = self.add('online', src, size)[0]
        volume_id = uri.rsplit('/', 1)[1]
        child = subprocess.Popen([sys.executable, '-c', _READER, uri],
                                 stdout=subprocess.PIPE, text=True,
                                 cwd=service.REPO)
        self.addCleanup(child.kill)
        self.assertEqual('reading\n', child.stdout.readline())
        held = self.inspect.attachments() - self.before['attachments']
        self.assertEqual(1, len(held))
        # Another reader joins the dead-to-be reader's attachment.
        self.assertEqual(src.hexdigest(), self.read_sha256(uri, 'online'))
        self.assertEqual(held, self.inspect.attachments() -
                         self.before['attachments'])
        child.send_signal(signal.SIGKILL)
        child.wait()
        # The next reader reclaims the dead process's reference and, as
        # the last one, releases the attachment.
        self.assertEqual(src.hexdigest(), self.read_sha256(uri, 'online'))
        self.assertIn('reclaiming 1 reference(s) of dead process %d'
                      % child.pid, self.log.output)
        self.assertEqual(set(), self.inspect.attachments() -
                         self.before['attachments'])
        self.assertEqual('available',
                         self.inspect.volumes()[volume_id].status)
        self.delete(uri, 'online')
        self.assertNoLeftovers()

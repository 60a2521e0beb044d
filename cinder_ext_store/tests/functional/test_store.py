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

from glance_store import exceptions

from cinder_ext_store.tests.functional import base

KNOWN = 300 * base.MiB + 123
# Unknown size: 1 -> 2 -> 3 GiB, two extensions.
UNKNOWN = 2 * base.GiB + 100 * base.MiB + 7


class TestRoundTrip(base.FunctionalTestCase):

    def test_known_size(self):
        src = base.Source(KNOWN, seed=1, digests=('sha256', 'md5', 'sha512'))
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
        self.assertIn('0 extend(s), 1 attachment(s)', self.log.output)

        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'online'))
        data = base.Source.data(KNOWN, seed=1)
        for offset, length in ((0, 1000), (base.MiB - 5, 3 * base.MiB),
                               (KNOWN - 10, 10)):
            want = hashlib.sha256(data[offset:offset + length]).hexdigest()
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
        src = base.Source(UNKNOWN, seed=2)
        uri, written, _md5, _multihash, _meta = self.add(backend, src, 0)
        self.assertEqual(UNKNOWN, written)
        vol = self.inspect.volumes()[uri.rsplit('/', 1)[1]]
        self.assertEqual(3, vol.size)
        self.assertEqual(str(UNKNOWN), vol.metadata['image_size'])
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, backend))
        self.delete(uri, backend)
        self.assertNoLeftovers()

    def test_online_extend(self):
        self.roundtrip('online')
        self.assertIn('2 extend(s), 1 attachment(s)', self.log.output)
        self.assertIn('extended in use from 2 to 3 GiB', self.log.output)
        self.assertIsNone(self.store('online').online_extend.refused)

    def test_offline_loop(self):
        self.roundtrip('offline')
        self.assertIn('2 extend(s), 3 attachment(s)', self.log.output)
        self.assertIn('extended offline from 2 to 3 GiB', self.log.output)

    def test_fallback_when_backend_refuses_online_extend(self):
        store = self.store('nofeature')
        self.roundtrip('nofeature')
        # The scheduler left the volume in-use at its old size.
        self.assertIn('does not support online extend', self.log.output)
        self.assertIn('extended offline from 1 to 2 GiB', self.log.output)
        self.assertIsNotNone(store.online_extend.refused)


class TestFailures(base.FunctionalTestCase):

    def test_client_disconnects_mid_upload(self):
        src = base.Source(UNKNOWN, seed=3, fail_at=1 * base.GiB + 5)
        self.assertRaises(IOError, self.add, 'online', src, 0)
        self.assertNoLeftovers()

    def test_declared_size_larger_than_data(self):
        src = base.Source(64 * base.MiB, seed=4)
        self.assertRaises(exceptions.Invalid, self.add, 'online', src,
                          64 * base.MiB + 1)
        self.assertNoLeftovers()

    def test_more_data_than_declared(self):
        src = base.Source(64 * base.MiB, seed=5)
        self.assertRaises(exceptions.Invalid, self.add, 'offline', src,
                          32 * base.MiB)
        self.assertNoLeftovers()


class TestDropIn(base.FunctionalTestCase):
    """Images written by either driver are read by the other."""

    SIZE = 100 * base.MiB + 1

    def test_intree_writes_ours_reads(self):
        src = base.Source(self.SIZE, seed=6)
        uri = self.add('intree', src, self.SIZE)[0]
        self.assertTrue(uri.startswith('cinder://intree/'))
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'online'))
        self.delete(uri, 'online')
        self.assertNoLeftovers()

    def test_ours_writes_intree_reads(self):
        src = base.Source(self.SIZE, seed=7)
        uri = self.add('online', src, self.SIZE)[0]
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'intree'))
        self.assertEqual(self.SIZE, self.store('intree').get_size(
            self.location(uri, 'intree'), context=self.context))
        self.delete(uri, 'intree')
        self.assertNoLeftovers()

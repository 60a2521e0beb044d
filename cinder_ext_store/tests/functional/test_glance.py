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

"""End to end: images uploaded through the real Glance API, as a user would.

glance-api (uWSGI, Keystone) stores into the cinder_ext backends ``images``
(default, extends attached volumes) and ``offline`` (second volume type,
detach-extend-reattach) of the local stack.
"""

import hashlib
import re
import socket
import time
import urllib.parse

from glanceclient import client as glance_client

from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import stackenv

KNOWN = 200 * base.MiB + 17
CHUNKED = base.GiB + 100 * base.MiB + 3  # one extension: 1 -> 2 GiB


class Unsized(object):
    """A file-like without a length: the client sends it chunked."""

    def __init__(self, source):
        self.source = source

    def read(self, n=-1):
        return self.source.read(n if n and n > 0 else base.MiB)


class GlanceTestCase(base.FunctionalTestCase):

    def setUp(self):
        super(GlanceTestCase, self).setUp()
        if not stackenv.uses_keystone(self.env) or not self.env.get(
                'CINDER_EXT_GLANCE_URL'):
            self.skipTest('the stack runs without Glance (up --noauth)')
        self.user = stackenv.demo_session(self.env)
        self.glance = glance_client.Client(
            '2', session=self.user, endpoint=self.env['CINDER_EXT_GLANCE_URL'])

    def create(self, name):
        image = self.glance.images.create(name=name, disk_format='raw',
                                          container_format='bare')
        self.addCleanup(self._delete_quietly, image.id)
        return image

    def _delete_quietly(self, image_id):
        try:
            self.glance.images.delete(image_id)
        except Exception:
            pass

    def store_report(self, image_id):
        return '\n'.join(stackenv.store_report(self.env, image_id))

    def volume_of(self, image_id):
        vols = [v for v in self.inspect.volumes().values()
                if v.name == 'image-%s' % image_id]
        self.assertEqual(1, len(vols))
        return vols[0]

    def download_sha256(self, image_id, byte_range=None):
        headers = {}
        if byte_range:
            headers['Range'] = 'bytes=%d-%d' % byte_range
        resp = self.user.get('%s/v2/images/%s/file' % (
            self.env['CINDER_EXT_GLANCE_URL'], image_id), headers=headers,
            stream=True)
        self.assertEqual(206 if byte_range else 200, resp.status_code)
        digest = hashlib.sha256()
        for chunk in resp.iter_content(4 * base.MiB):
            digest.update(chunk)
        return digest.hexdigest()

    def assertImage(self, image_id, src, size, store):
        image = self.glance.images.get(image_id)
        self.assertEqual('active', image.status)
        self.assertEqual(size, image.size)
        self.assertEqual(src.hexdigest('md5'), image.checksum)
        self.assertEqual('sha512', image.os_hash_algo)
        self.assertEqual(src.hexdigest('sha512'), image.os_hash_value)
        self.assertEqual(store, image.stores)
        self.assertEqual(src.hexdigest(), self.download_sha256(image_id))
        return image


class TestGlanceUploads(GlanceTestCase):

    def test_known_size_range_and_delete(self):
        image = self.create('known')
        src = base.Source(KNOWN, seed=11,
                          digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, Unsized(src), image_size=KNOWN)
        self.assertImage(image.id, src, KNOWN, 'images')
        report = self.store_report(image.id)
        self.assertIn('(%d bytes)' % KNOWN, report)
        self.assertIn('0 extend(s), 1 attachment(s)', report)

        data = base.Source.data(KNOWN, seed=11)
        for start, end in ((0, 99), (base.MiB - 3, 5 * base.MiB),
                           (KNOWN - 10, KNOWN - 1)):
            self.assertEqual(hashlib.sha256(data[start:end + 1]).hexdigest(),
                             self.download_sha256(image.id, (start, end)))

        volume = self.volume_of(image.id)
        self.assertEqual(self.user.get_project_id(),
                         volume.metadata['image_owner'])
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_chunked_unknown_size_extends_attached(self):
        image = self.create('chunked-online')
        src = base.Source(CHUNKED, seed=12,
                          digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, Unsized(src))
        self.assertImage(image.id, src, CHUNKED, 'images')
        report = self.store_report(image.id)
        # The store saw no size and grew the volume while attached.
        self.assertIn('(size unknown)', report)
        self.assertIn('extended in use from 1 to 2 GiB', report)
        self.assertIn('1 extend(s), 1 attachment(s)', report)
        self.assertEqual(str(CHUNKED),
                         self.volume_of(image.id).metadata['image_size'])
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_chunked_to_second_backend_offline(self):
        image = self.create('chunked-offline')
        src = base.Source(CHUNKED, seed=13,
                          digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, Unsized(src), backend='offline')
        self.assertImage(image.id, src, CHUNKED, 'offline')
        report = self.store_report(image.id)
        self.assertIn('(size unknown)', report)
        self.assertIn('extended offline from 1 to 2 GiB', report)
        self.assertIn('1 extend(s), 2 attachment(s)', report)
        self.assertEqual('loop-offline',
                         self.volume_of(image.id).volume_type)
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_glance_direct_import(self):
        image = self.create('imported')
        size = 32 * base.MiB + 1
        src = base.Source(size, seed=14, digests=('sha256', 'md5', 'sha512'))
        self.glance.images.stage(image.id, Unsized(src))
        self.glance.images.image_import(image.id, method='glance-direct')
        deadline = time.monotonic() + 120
        while self.glance.images.get(image.id).status != 'active':
            self.assertLess(time.monotonic(), deadline, 'import timed out')
            time.sleep(0.5)
        self.assertImage(image.id, src, size, 'images')
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()


class TestGlanceDisconnect(GlanceTestCase):

    def test_client_disconnects_half_way(self):
        image = self.create('disconnected')
        url = urllib.parse.urlsplit(self.env['CINDER_EXT_GLANCE_URL'])
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall((
            'PUT /v2/images/%s/file HTTP/1.1\r\nHost: %s\r\n'
            'X-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n'
            'Transfer-Encoding: chunked\r\n\r\n'
            % (image.id, url.netloc, self.user.get_token())).encode())
        src = base.Source(base.GiB, seed=15, digests=())
        for _ in range(600):  # 600 MiB of a 1 GiB image, then hang up
            chunk = src.read(base.MiB)
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
        sock.close()

        deadline = time.monotonic() + 120
        while True:
            report = self.store_report(image.id)
            if re.search('failed; deleting the volume', report):
                break
            self.assertLess(time.monotonic(), deadline, report)
            time.sleep(0.5)
        self.assertNotEqual('active', self.glance.images.get(image.id).status)
        self.assertNoLeftovers()

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

from concurrent import futures
import hashlib
import socket
import time
import urllib.parse

from cinder_ext_store.tests.functional import base
from harness import glance
from harness import images

KNOWN = 200 * base.MiB + 17
CHUNKED = base.GiB + 100 * base.MiB + 3  # one extension: 1 -> 2 GiB


class GlanceTestCase(base.FunctionalTestCase):

    def setUp(self):
        super(GlanceTestCase, self).setUp()
        if not self.cloud.keystone:
            self.skipTest('the stack runs without Glance (up --noauth)')
        self.user = glance.GlanceUser(self.cloud.user())
        self.glance = self.user.client
        #: This run's Glance backends (CINDER_EXT_STORAGE picks them)
        on = self.cloud.storage_facts
        self.backend = on.glance_backend or 'images'
        self.backend_offline = on.glance_backend_offline or 'offline'
        self.backend_intree = on.glance_backend_intree or 'intree'

    def user_of(self, backend):
        """The Glance API that serves ``backend``.

        The in-tree driver's backends have a glance-api of their own on the
        local stack (its user may chown devices as root; the store's may
        not); elsewhere one Glance serves all.
        """
        url = self.cloud.facts.glance and self.cloud.facts.glance.intree_url
        if backend == self.backend_intree and url:
            return glance.GlanceUser(self.cloud.user(), url)
        return self.user

    def create(self, name):
        image = self.user.create(name)
        self.addCleanup(self.user.delete_quietly, image.id)
        return image

    def store_report(self, image_id, operation='add'):
        """The store's stats of its last ``operation`` of the image.

        As glance-api logged them (local stack only: None elsewhere).
        """
        found = glance.store_reports(self.cloud, image_id)
        if found is None:
            return None
        found = [s for s in found if s.operation == operation]
        self.assertTrue(found, 'no %s of image %s in the log'
                        % (operation, image_id))
        return found[-1]

    def assertReport(self, image_id, extends, attachments, growth):
        report = self.store_report(image_id)
        if report is not None:  # an external cloud's log is out of reach
            self.assertEqual((extends, attachments, growth),
                             (report.extends, report.attachments,
                              report.growth))
            self.assertTrue(report.succeeded)

    def volume_of(self, image_id):
        vols = [v for v in self.inspect.volumes().values()
                if v.name == 'image-%s' % image_id]
        self.assertEqual(1, len(vols))
        return vols[0]

    def download_sha256(self, image_id, byte_range=None):
        status, sha256, _n = self.user.download(image_id, byte_range)
        self.assertEqual(206 if byte_range else 200, status)
        return sha256

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
        src = images.ImageSource(KNOWN, seed=11,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=KNOWN, backend=self.backend)
        self.assertImage(image.id, src, KNOWN, self.backend)
        self.assertReport(image.id, 0, 1, [])

        for start, end in ((0, 99), (base.MiB - 3, 5 * base.MiB),
                           (KNOWN - 10, KNOWN - 1)):
            want = src.expected(start, end + 1 - start)
            self.assertEqual(hashlib.sha256(want).hexdigest(),
                             self.download_sha256(image.id, (start, end)))

        volume = self.volume_of(image.id)
        self.assertEqual(str(KNOWN), volume.metadata['image_size'])
        self.assertEqual(self.user.project_id,
                         volume.metadata['image_owner'])
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def chunked_upload(self, backend, seed):
        """A chunked upload (no size) into ``backend``; returns the volume."""
        image = self.create('chunked-%s' % backend)
        src = images.ImageSource(CHUNKED, seed=seed,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  backend=backend)
        self.assertImage(image.id, src, CHUNKED, backend)
        volume = self.volume_of(image.id)
        self.assertEqual(2, volume.size)
        self.assertEqual(str(CHUNKED), volume.metadata['image_size'])
        self.addCleanup(self.assertNoLeftovers)
        self.addCleanup(self.glance.images.delete, image.id)
        return image, volume

    def test_chunked_unknown_size_extends_attached(self):
        image, _volume = self.chunked_upload(self.backend, seed=12)
        # The store saw no size and grew the volume while attached.
        self.assertReport(image.id, 1, 1, ['online'])

    def test_chunked_to_second_backend_offline(self):
        image, volume = self.chunked_upload(self.backend_offline, seed=13)
        self.assertReport(image.id, 1, 2, ['offline'])
        self.assertEqual(
            self.cloud.storage_facts.volume_type_glance_offline or
            'loop-offline', volume.volume_type)

    def test_glance_direct_import(self):
        image = self.create('imported')
        size = 32 * base.MiB + 1
        src = images.ImageSource(size, seed=14,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.stage(image.id, images.Unsized(src))
        self.glance.images.image_import(image.id, method='glance-direct',
                                        stores=[self.backend])
        deadline = time.monotonic() + 120
        while self.glance.images.get(image.id).status != 'active':
            self.assertLess(time.monotonic(), deadline, 'import timed out')
            time.sleep(0.5)
        self.assertImage(image.id, src, size, self.backend)
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()


class TestGlanceDisconnect(GlanceTestCase):

    def test_client_disconnects_half_way(self):
        image = self.create('disconnected')
        url = urllib.parse.urlsplit(self.user.url)
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall((
            'PUT /v2/images/%s/file HTTP/1.1\r\nHost: %s\r\n'
            'X-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n'
            'Transfer-Encoding: chunked\r\n\r\n'
            % (image.id, url.netloc, self.user.session.get_token())).encode())
        src = images.ImageSource(base.GiB, seed=15, digests=())
        for _ in range(600):  # 600 MiB of a 1 GiB image, then hang up
            chunk = src.read(base.MiB)
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
        sock.close()

        deadline = time.monotonic() + 120
        while True:
            # Until the store has given up on the upload.
            status = self.glance.images.get(image.id).status
            if status != 'saving':
                break
            self.assertLess(time.monotonic(), deadline, 'image still saving')
            time.sleep(0.5)
        self.assertNotEqual('active', status)
        self.assertNoLeftovers()
        found = glance.store_reports(self.cloud, image.id)
        if found is not None:
            self.assertFalse(found[-1].succeeded)
            # The client went away: not the store's failure (INFO).
            self.assertEqual('aborted', found[-1].result)
            self.assertIn('OSError', found[-1].error)
            self.assertLess(found[-1].bytes, base.GiB)


class TestGlanceReaders(GlanceTestCase):
    """Many readers at once, through glance-api's worker processes."""

    SIZE = 96 * base.MiB + 5

    def upload(self, name, seed):
        image = self.create(name)
        src = images.ImageSource(self.SIZE, seed=seed,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=self.SIZE, backend=self.backend)
        return image, src

    def test_eight_simultaneous_downloads(self):
        image, src = self.upload('eight-readers', seed=21)
        with futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: self.user.download(image.id),
                                    range(8)))
        self.assertEqual([(200, src.hexdigest(), self.SIZE)] * 8, results)
        reads = glance.store_reports(self.cloud, image.id)
        if reads is not None:
            gets = [r for r in reads if r.operation == 'get']
            self.assertEqual(8, len(gets))
            self.assertTrue(all(r.succeeded for r in gets), gets)
            # Eight at once need both workers (four threads each).
            self.assertEqual(2, len({r.pid for r in gets}))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_upload_download_delete_race(self):
        image, src = self.upload('race', seed=22)
        with futures.ThreadPoolExecutor(6) as pool:
            downloads = [pool.submit(self.user.download, image.id)
                         for _ in range(5)]
            time.sleep(0.3)  # some downloads are under way
            deleted = pool.submit(self._delete_status, image.id)
            outcomes = [d.result() for d in downloads]
            status = deleted.result()
        # A download is complete and exact, or it failed: never a short or
        # corrupt image reported as success.
        for code, sha256, nbytes in outcomes:
            if code == 200 and nbytes == self.SIZE:
                self.assertEqual(src.hexdigest(), sha256)
            else:
                self.assertNotEqual((200, self.SIZE), (code, nbytes))
        # Glance answers 409 while this host reads the image.
        self.assertIn(status, (204, 409))
        deadline = time.monotonic() + 60
        while self._delete_status(image.id) not in (204, 404):
            self.assertLess(time.monotonic(), deadline, 'delete refused')
            time.sleep(0.5)
        self.assertNoLeftovers()

    def _delete_status(self, image_id):
        resp = self.user.session.delete(
            '%s/v2/images/%s' % (self.user.url, image_id), raise_exc=False)
        return resp.status_code

    def test_stalled_download_blocks_no_reader_and_refuses_delete(self):
        image, src = self.upload('stalled', seed=23)
        stalled = self.user.session.get(
            '%s/v2/images/%s/file' % (self.user.url, image.id), stream=True)
        first = next(stalled.iter_content(base.MiB))
        self.assertEqual(src.expected(0, len(first)), first)
        try:
            # Others join the attachment the stalled reader holds.
            for _ in range(2):
                self.assertEqual((200, src.hexdigest(), self.SIZE),
                                 self.user.download(image.id))
            # Deleting under a reader: 409, and the image stays.
            self.assertEqual(409, self._delete_status(image.id))
            self.assertEqual('active',
                             self.glance.images.get(image.id).status)
        finally:
            stalled.close()
        deadline = time.monotonic() + 60
        while self._delete_status(image.id) != 204:
            self.assertLess(time.monotonic(), deadline, 'delete refused')
            time.sleep(0.5)
        self.assertNoLeftovers()

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

"""Cinder using what the store writes: volumes from images, images from
volumes (upload-to-image with the cinder backend)."""

import hashlib
import json
import logging
import subprocess
import time

from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_glance
from harness import clouds
from harness import glance
from harness import images
from harness import leaks

SIZE = 64 * base.MiB + 11


class CinderImagesTestCase(test_glance.GlanceTestCase):

    def setUp(self):
        super(CinderImagesTestCase, self).setUp()
        self.user_cinder = self.cloud.user().cinder()
        # Runs last: after every volume and image below is deleted.
        self.addCleanup(self.assertNoLeftovers)

    def upload(self, name, seed, backend=None, uploader=None):
        backend = backend or self.backend
        uploader = uploader or self.user_of(backend)
        image = uploader.create(name, owner=self.user.project_id)
        self.addCleanup(self._delete_image, self.user_of(backend), image.id)
        src = images.ImageSource(SIZE, seed=seed)
        uploader.client.images.upload(image.id, images.Unsized(src),
                                      image_size=SIZE, backend=backend)
        return image, src

    def volume_from(self, image_id, cinder=None, size=1, volume_type=None):
        cinder = cinder or self.user_cinder
        # On the image volume's backend: Cinder clones only there.
        volume = cinder.volumes.create(
            size, imageRef=image_id, name='from-%s' % image_id,
            volume_type=volume_type or self.cloud.storage_facts.volume_type)
        self.addCleanup(self._delete_volume, cinder, volume.id)
        deadline = time.monotonic() + 120
        while True:
            volume = cinder.volumes.get(volume.id)
            if volume.status not in ('creating', 'downloading'):
                break
            self.assertLess(time.monotonic(), deadline, volume.status)
            time.sleep(0.3)
        self.assertEqual('available', volume.status)
        return volume

    # Cleanups delete one volume at a time, clones before what they were
    # cloned from, each gone before the next: Cinder's RBD driver keeps a
    # deleted parent of live clones as "<name>.deleted" until its last
    # clone goes, and it loses track of such chains when they are deleted
    # concurrently (measured on Cinder 29: the .deleted images stay).
    def _delete_volume(self, cinder, volume_id):
        try:
            cinder.volumes.delete(volume_id)
        except Exception:
            pass
        self.inspect.wait_gone(volume_id)

    def _delete_image(self, user, image_id):
        volumes = [v.id for v in self.inspect.volumes().values()
                   if v.name == 'image-%s' % image_id]
        user.delete_quietly(image_id)
        for volume_id in volumes:
            self.inspect.wait_gone(volume_id)

    def _cinder_logged(self, message):
        """Whether cinder-volume logged ``message``; None if out of reach."""
        path = self.cloud.facts.cinder_volume_log
        if not path:
            return None
        with open(path) as f:
            return message in f.read()

    def cinder_cloned(self, image_volume_id):
        """Cinder's own account: it cloned this image volume (local)."""
        return self._cinder_logged(
            'Will clone a volume from the image volume %s' % image_volume_id)

    def cinder_skipped(self, image_volume_id):
        """Cinder's owner check refused this image volume (local)."""
        return self._cinder_logged(
            'Skipping image volume %s because it is not accessible by '
            'current Tenant' % image_volume_id)

    def reads_of(self, image_id, volume_id=None):
        found = glance.store_reports(self.cloud, image_id, volume_id)
        return None if found is None else [
            r for r in found if r.operation == 'get']

    def to_image(self, volume, cinder, user):
        """Upload-to-image; returns the active image once Glance hashed it."""
        reply = cinder.volumes.upload_to_image(
            volume, False, 'of-%s' % volume.id, 'bare', 'raw', 'private',
            False)
        image_id = reply[1]['os-volume_upload_image']['image_id']
        self.addCleanup(self._delete_image, user, image_id)
        deadline = time.monotonic() + 180
        while True:
            image = user.client.images.get(image_id)
            # Glance's location import hashes the data after activating.
            if image.status == 'active' and image.get('os_hash_value'):
                return image
            self.assertNotIn(image.status, ('killed', 'deleted'))
            self.assertLess(time.monotonic(), deadline, image.status)
            time.sleep(0.5)

    def assertHolds(self, volume, src, cinder=None, user=None, size=SIZE):
        """The volume holds the image (``size`` bytes), then zeros.

        Read back through an image of the volume: upload-to-image, Glance's
        hash pass over this store, a download.
        """
        cinder, user = cinder or self.user_cinder, user or self.user
        image = self.to_image(volume, cinder, user)
        want_sha256, want_md5 = hashlib.sha256(), hashlib.md5()
        for data in (src.expected(), bytes(base.GiB - size)):
            want_sha256.update(data)
            want_md5.update(data)
        self.assertEqual(base.GiB, image.size)
        self.assertEqual(want_md5.hexdigest(), image.checksum)
        self.assertEqual((200, want_sha256.hexdigest(), base.GiB),
                         user.download(image.id))
        return image


LOG = logging.getLogger('cinder_images')


class TestVolumeFromImage(CinderImagesTestCase):

    def test_ours_is_cloned(self):
        image, src = self.upload('clone-ours', seed=31)
        image_volume = self.volume_of(image.id)
        self.volume_from(image.id)
        self.assertIn(self.cinder_cloned(image_volume.id), (True, None))
        # No image download reached glance-api for the clone.
        self.assertIn(self.reads_of(image.id), ([], None))

    def reconcile(self):
        done = self.glance_command('reconcile', '--older-than', '0')
        text = '$ cinder-ext-store reconcile --older-than 0\n%s%s' % (
            done.stdout, done.stderr)
        LOG.warning('%s', text)
        leaks.record(self.cloud, 'reconcile-ceph.txt', text)
        self.assertEqual(0, done.returncode, text)
        return done.stdout

    def rbd(self, *args):
        """The rbd CLI as Ceph's admin (what an operator would type)."""
        return subprocess.run(
            ['rbd', '-c', self.cloud.facts.ceph_conf, '--id', 'admin'] +
            list(args), capture_output=True, text=True, check=True).stdout

    def test_reconcile_reports_what_cinder_leaves_in_ceph(self):
        image, src = self.upload('ceph-leftovers', seed=33)
        image_volume = self.volume_of(image.id)
        clone = self.volume_from(image.id)
        on_rbd = self.cloud.storage == 'rbd'
        if not on_rbd:
            # Nothing of Ceph where the backend's volumes are not RBD.
            self.assertNotIn('Ceph', self.reconcile())
            return
        pool = 'volumes'
        parent = '%s/volume-%s' % (pool, image_volume.id)
        # Cinder's snapshot for the clone has a child: not reported. A
        # snapshot named as Cinder names them, with no child (what Cinder
        # 29 leaves when it deletes a clone by its fast path): reported.
        stale = '%s@volume-%s.clone_snap' % (parent, 'f' * 8 + '-ffff-4fff'
                                             '-8fff-' + 'f' * 12)
        self.rbd('snap', 'create', stale)
        self.addCleanup(subprocess.run, ['rbd', '-c',
                                         self.cloud.facts.ceph_conf, '--id',
                                         'admin', 'snap', 'rm', stale],
                        capture_output=True)
        out = self.reconcile()
        self.assertIn('kept Ceph image %s: a snapshot Cinder made to clone '
                      'this image volume, which no clone uses' % stale, out)
        self.assertNotIn('volume-%s.clone_snap' % clone.id, out)
        self.rbd('snap', 'rm', stale)

        # The image goes while its clone lives: Cinder keeps the volume's
        # data as <name>.deleted, held by the clone.
        self.user.client.images.delete(image.id)
        self.inspect.wait_gone(image_volume.id)
        self.assertIn('volume-%s.deleted' % image_volume.id,
                      self.rbd('ls', pool).split())
        out = self.reconcile()
        self.assertIn('kept Ceph image %s.deleted: Cinder deleted this volume '
                      'and keeps its data while 1 clone(s) depend on it '
                      '(%s/volume-%s)' % (parent, pool, clone.id), out)
        # The clone goes: Cinder 29 removes it by its fast path and leaves
        # the parent behind with no clone left (see leaks.rbd_images):
        # reported, and removed as the note says.
        self._delete_volume(self.user_cinder, clone.id)
        deleted = '%s.deleted' % parent
        self.assertIn('volume-%s.deleted' % image_volume.id,
                      self.rbd('ls', pool).split())
        out = self.reconcile()
        self.assertIn('kept Ceph image %s: Cinder deleted this volume and no '
                      'clone depends on it any more' % deleted, out)
        for snap in json.loads(self.rbd('snap', 'ls', deleted, '--format',
                                        'json')):
            self.rbd('snap', 'unprotect', '%s@%s' % (deleted, snap['name']))
        self.rbd('snap', 'purge', deleted)
        self.rbd('rm', deleted)
        self.assertNotIn(deleted, self.reconcile())

    def test_intree_is_cloned(self):
        image, src = self.upload('clone-intree', seed=32,
                                 backend=self.backend_intree)
        image_volume = self.volume_of(image.id)
        volume = self.volume_from(image.id)
        self.assertIn(self.cinder_cloned(image_volume.id), (True, None))
        self.assertHolds(volume, src)

    def test_admin_upload_records_the_images_owner(self):
        # An admin uploads the data of demo's image: the image volume's
        # image_owner is demo's project (the image's owner, read from
        # Glance), so Cinder clones it for a user of a third project once
        # the image is public.
        admin = glance.GlanceUser(clouds.load(clouds.ADMIN_CLOUD))
        image, src = self.upload('admin-upload', seed=33, uploader=admin)
        image_volume = self.volume_of(image.id)
        self.assertEqual(self.user.project_id,
                         image_volume.metadata['image_owner'])
        admin.client.images.update(image.id, visibility='public')
        alt_cloud = self.alt_cloud()
        volume = self.volume_from(image.id, cinder=alt_cloud.cinder())
        self.assertIn(self.cinder_cloned(image_volume.id), (True, None))
        self.assertIn(self.reads_of(image.id), ([], None))
        self.assertHolds(volume, src, alt_cloud.cinder(),
                         glance.GlanceUser(alt_cloud))

    def test_download_path_when_cinder_refuses_the_clone(self):
        # The image changes hands after upload and is made public: its
        # volume's image_owner names the old owner, so Cinder's owner check
        # (requester or image_owner must own the image) skips the volume
        # for a third project, and copies the data through glance-api.
        admin = glance.GlanceUser(clouds.load(clouds.ADMIN_CLOUD))
        alt = glance.GlanceUser(self.alt_cloud())
        image, src = self.upload('clone-refused', seed=35)
        admin.client.images.update(image.id, owner=alt.project_id,
                                   visibility='public')
        self.addCleanup(self._delete_image, alt, image.id)
        volume = self.volume_from(image.id)  # by demo, no longer the owner
        image_volume = self.volume_of(image.id)
        self.assertIn(self.cinder_skipped(image_volume.id), (True, None))
        self.assertIn(self.cinder_cloned(image_volume.id), (False, None))
        reads = self.reads_of(image.id)
        if reads is not None:  # Cinder read the image through Glance
            self.assertEqual([SIZE], [r.bytes for r in reads])
        self.assertHolds(volume, src)

    def alt_cloud(self):
        return clouds.load(self.cloud.facts.alt_cloud or clouds.ALT_CLOUD)


class TestUploadToImage(CinderImagesTestCase):

    def test_image_volume_registered_with_the_store(self):
        image, src = self.upload('to-image-src', seed=34)
        volume = self.volume_from(image.id)
        new = self.assertHolds(volume, src)
        self.assertEqual(self.backend, new.stores)
        image_volume = self.volume_of(new.id)
        # Cinder registered a clone: no image_size, the volume's size.
        self.assertNotIn('image_size', image_volume.metadata)
        self.assertEqual(new.id, image_volume.metadata['glance_image_id'])
        reads = self.reads_of(new.id, image_volume.id)
        if reads is not None:  # the hash pass and the download
            self.assertEqual([base.GiB, base.GiB], [r.bytes for r in reads])
        deadline = time.monotonic() + 60
        while self._delete_status(new.id) != 204:
            self.assertLess(time.monotonic(), deadline, 'delete refused')
            time.sleep(0.5)
        # Deleting the image deleted its volume (Cinder does so async).
        self.assertTrue(self.inspect.wait_gone(image_volume.id, 60),
                        'volume left')

    def _delete_status(self, image_id):
        resp = self.user.session.delete(
            '%s/v2/images/%s' % (self.user.url, image_id), raise_exc=False)
        return resp.status_code

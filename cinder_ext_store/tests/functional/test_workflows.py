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

"""Glance's and Cinder's own workflows over the store, end to end.

What Glance does beyond upload-download-delete: copy-image imports into
other stores (and reads from the next location when one is gone), the
background hash pass after Cinder registers a location (and a delete that
cancels it), a format check that rejects data after the store wrote it.
"""

import hashlib
import os
import subprocess
import time

from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_cinder_images
from harness import clouds
from harness import glance
from harness import images

SIZE = 40 * base.MiB + 9


class WorkflowTestCase(test_cinder_images.CinderImagesTestCase):

    def setUp(self):
        super(WorkflowTestCase, self).setUp()
        self.admin = glance.GlanceUser(clouds.load(clouds.ADMIN_CLOUD))

    def uploaded(self, name, seed, size=SIZE, backend=None):
        image = self.create(name)
        src = images.ImageSource(size, seed=seed,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=size,
                                  backend=backend or self.backend)
        return image, src

    def wait_image(self, image_id, done, what, timeout=180):
        """The image once ``done(image)``; fails on killed or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.glance.images.get(image_id)
            if done(image):
                return image
            self.assertNotIn(image.status, ('killed', 'deleted'))
            self.assertLess(time.monotonic(), deadline,
                            '%s: image %s still %s, stores %s'
                            % (what, image_id, image.status,
                               image.get('stores')))
            time.sleep(0.5)

    def stores_of(self, image):
        return sorted((image.get('stores') or '').split(','))

    def _delete_status(self, image_id):
        resp = self.user.session.delete(
            '%s/v2/images/%s' % (self.user.url, image_id), raise_exc=False)
        return resp.status_code


class TestCopyImage(WorkflowTestCase):

    def targets(self):
        """The stores a copy goes to.

        This store's offline backend, and glance_store's rbd store where
        the stack has Ceph.
        """
        found = [self.backend_offline]
        if self.cloud.storage_facts.glance_rbd_store:
            found.append(self.cloud.storage_facts.glance_rbd_store)
        return found

    def test_copy_to_other_stores_then_read_the_next_location(self):
        image, src = self.uploaded('copied', seed=61)
        first = self.volume_of(image.id)
        targets = self.targets()
        # copy-image is an admin's import (Glance's default policy).
        self.admin.client.images.image_import(
            image.id, method='copy-image', stores=targets,
            allow_failure=False)
        want = sorted([self.backend] + targets)
        copied = self.wait_image(
            image.id, lambda i: self.stores_of(i) == want, 'copy-image')
        # The copies did not change what Glance recorded of the data.
        self.assertImage(image.id, src, SIZE, copied.stores)
        volumes = [v for v in self.inspect.volumes().values()
                   if v.name == 'image-%s' % image.id]
        self.assertEqual(2, len(volumes), volumes)
        # The first location's volume is lost behind Glance's back: the
        # download is served from the next location, byte-exact.
        self.inspect.cinder.volumes.delete(first.id)
        self.assertTrue(self.inspect.wait_gone(first.id, 60))
        self.assertEqual((200, src.hexdigest(), SIZE),
                         self.user.download(image.id))
        self.glance.images.delete(image.id)
        # assertNoLeftovers (a cleanup) covers the copies' volumes and, on
        # Ceph, the rbd store's image.


class TestCopyFromGlanceRbd(WorkflowTestCase):
    """Ceph only (functional-rbd): from glance_store's rbd store."""

    def test_copy_from_the_rbd_store_into_this_one(self):
        rbd_store = self.cloud.storage_facts.glance_rbd_store
        self.assertTrue(rbd_store, 'the stack has no glance rbd store')
        image = self.create('from-rbd')
        src = images.ImageSource(SIZE, seed=66,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=SIZE, backend=rbd_store)
        self.admin.client.images.image_import(
            image.id, method='copy-image', stores=[self.backend],
            allow_failure=False)
        want = sorted([rbd_store, self.backend])
        copied = self.wait_image(
            image.id, lambda i: self.stores_of(i) == want, 'copy-image')
        self.assertImage(image.id, src, SIZE, copied.stores)
        volume = self.volume_of(image.id)
        self.assertEqual(str(SIZE), volume.metadata['image_size'])
        self.glance.images.delete(image.id)


class TestMultiStoreImport(WorkflowTestCase):

    def staged(self, name, seed):
        image = self.create(name)
        src = images.ImageSource(SIZE, seed=seed,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.stage(image.id, images.Unsized(src))
        return image, src

    def image_volumes(self, image_id):
        return [v for v in self.inspect.volumes().values()
                if v.name == 'image-%s' % image_id]

    def test_glance_direct_to_two_stores_at_once(self):
        image, src = self.staged('two-stores', seed=62)
        stores = [self.backend, self.backend_offline]
        self.glance.images.image_import(image.id, method='glance-direct',
                                        stores=stores, allow_failure=False)
        done = self.wait_image(
            image.id, lambda i: i.status == 'active' and
            self.stores_of(i) == sorted(stores), 'import')
        self.assertImage(image.id, src, SIZE, done.stores)
        self.assertEqual(2, len(self.image_volumes(image.id)))
        self.glance.images.delete(image.id)

    def fail_offline_store(self):
        """The offline backend's creates fail as a full quota does.

        Cinder's per-volume-type quota of the store's project: 0 volumes
        of the offline backend's type, for this test (the suites run one
        test at a time).
        """
        vtype = self.cloud.storage_facts.volume_type_glance_offline
        self.assertTrue(vtype, 'no volume type of the offline backend')
        admin = clouds.load(clouds.ADMIN_CLOUD).cinder()
        project = self.cloud.session().get_project_id()
        admin.quotas.update(project, **{'volumes_%s' % vtype: 0})
        self.addCleanup(admin.quotas.delete, project)

    def import_done(self, image_id, want):
        """The image once its import task ended ``want`` (Glance's word).

        Not the image's status: a failed glance-direct import leaves the
        image ``importing`` in Glance 33 (the task that would put it back
        to queued never ran).
        """
        def ended():
            tasks = self.user.session.get(
                '%s/v2/images/%s/tasks' % (self.user.url, image_id)).json()
            states = [t['status'] for t in tasks.get('tasks', ())]
            return states and states[0] in ('success', 'failure') and states
        self.assertEqual([want], self.wait_for('import of %s' % image_id,
                                               ended, 180, 0.5))
        return self.glance.images.get(image_id)

    def test_one_store_failing_may_fail(self):
        # all_stores_must_succeed=false: the image is active in the store
        # that took it, the failing one is named in
        # os_glance_failed_import, and it left no volume.
        self.fail_offline_store()
        image, src = self.staged('one-fails-allowed', seed=67)
        self.glance.images.image_import(
            image.id, method='glance-direct',
            stores=[self.backend_offline, self.backend], allow_failure=True)
        done = self.import_done(image.id, 'success')
        self.assertEqual('active', done.status)
        self.assertEqual(self.backend_offline,
                         done.get('os_glance_failed_import'))
        self.assertImage(image.id, src, SIZE, self.backend)
        volumes = self.image_volumes(image.id)
        self.assertEqual([self.volume_type()],
                         [v.volume_type for v in volumes])
        self.assertAdds(image.id, {self.backend: 'ok',
                                   self.backend_offline: 'failed'})
        self.glance.images.delete(image.id)

    def test_one_store_failing_fails_the_import(self):
        # all_stores_must_succeed=true: the first store took the data, the
        # second fails; Glance takes the first location back (the store
        # deletes that volume). The image can be deleted.
        self.fail_offline_store()
        image, src = self.staged('one-fails-all-must', seed=68)
        self.glance.images.image_import(
            image.id, method='glance-direct',
            stores=[self.backend, self.backend_offline], allow_failure=False)
        done = self.import_done(image.id, 'failure')
        self.assertEqual('importing', done.status)  # Glance's; see above
        self.assertIn(self.backend_offline,
                      (done.get('os_glance_failed_import') or '').split(','))
        self.assertFalse(done.get('stores'))
        self.assertFalse(done.checksum)
        self.wait_for('the first store\'s volume deleted',
                      lambda: not self.image_volumes(image.id), 60)
        self.assertAdds(image.id, {self.backend: 'ok',
                                   self.backend_offline: 'failed'})
        self.assertEqual(204, self._delete_status(image.id))

    def assertAdds(self, image_id, want):
        """The store's add of each backend ended as ``want`` says.

        A store that failed says why (Cinder's quota: StorageFull).
        """
        reports = glance.store_reports(self.cloud, image_id)
        if reports is None:
            return  # an external cloud's log is out of reach
        adds = {r.store: r for r in reports if r.operation == 'add'}
        self.assertEqual(want, {k: r.result for k, r in adds.items()})
        for report in adds.values():
            if report.result == 'failed':
                self.assertIn('StorageFull', report.error)

    def volume_type(self):
        return self.cloud.storage_facts.volume_type


class TestHashPass(WorkflowTestCase):

    def test_delete_while_glance_hashes_a_cinder_location(self):
        # Cinder's upload-to-image registers its clone as the image's
        # location; Glance hashes it in the background (4 GiB: ~15 s, more
        # than a delete waits for readers). A delete at once cancels the
        # pass, whose reader lets the volume go: the image and its volume
        # are deleted, not refused with 409.
        image, _src = self.uploaded('hash-src', seed=63)
        volume = self.volume_from(image.id, size=4)
        reply = self.user_cinder.volumes.upload_to_image(
            volume, False, 'hashed-%s' % volume.id, 'bare', 'raw',
            'private', False)
        new_id = reply[1]['os-volume_upload_image']['image_id']
        self.addCleanup(self._delete_image, self.user, new_id)
        # Once the pass reads (its read share is on record): Glance cancels
        # only a pass that recorded its worker, which it does before it
        # reads (a delete racing its start waits for the store's readers,
        # 10 s, then gets 409; see the README).
        self.wait_image(new_id, lambda i: i.status == 'active',
                        'location add', 120)
        image_volume = self.volume_of(new_id)
        share = os.path.join(self.cloud.facts.glance.lock_path,
                             'cinder_ext_reads', '%s.json' % image_volume.id)
        self.wait_for('the hash pass reading', lambda: os.path.exists(share),
                      60, 0.1)
        self.assertFalse(self.glance.images.get(new_id).get('os_hash_value'))
        started = time.monotonic()
        status = self._delete_status(new_id)
        self.assertEqual(204, status)
        # Within Glance's 30 s wait for the pass to stop.
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(404, self._delete_status(new_id))
        reads = self.reads_of(new_id, image_volume.id)
        if reads is not None:
            # Glance stopped reading: an aborted read, not a failure.
            self.assertEqual(['aborted'], [r.result for r in reads])


class TestFormatRejected(WorkflowTestCase):

    def test_data_that_is_not_its_disk_format(self):
        # Glance inspects the data after the store wrote it: random bytes
        # are no qcow2, so it answers 415 once add() has returned.
        image = self.user.create('not-qcow2', disk_format='qcow2')
        self.addCleanup(self.user.delete_quietly, image.id)
        src = images.ImageSource(SIZE, seed=64,
                                 digests=('sha256', 'md5', 'sha512'))
        resp = self.user.session.put(
            '%s/v2/images/%s/file' % (self.user.url, image.id),
            data=images.Unsized(src),
            headers={'Content-Type': 'application/octet-stream',
                     'X-Image-Meta-Store': self.backend},
            raise_exc=False)
        self.assertEqual(415, resp.status_code, resp.text)
        self.assertIn('does not match', resp.text)
        image = self.glance.images.get(image.id)
        self.assertEqual('queued', image.status)
        # Glance 33 kept the location on the queued image, and the volume.
        volume = self.volume_of(image.id)
        self.assertEqual(self.backend, image.stores)
        # reconcile deletes what no one can read (after its grace period,
        # 0 here); the image stays for its owner to delete.
        done = self.glance_command('reconcile', '--apply', '--older-than',
                                   '0')
        out = done.stdout + done.stderr
        self.assertEqual(0, done.returncode, out)
        self.assertIn('done: delete volume %s' % volume.id, out)
        self.assertIn('Glance refused the data', out)
        self.assertTrue(self.inspect.wait_gone(volume.id, 60))
        self.assertEqual('queued', self.glance.images.get(image.id).status)
        self.assertEqual(204, self._delete_status(image.id))


class TestUploadToImageConverted(WorkflowTestCase):

    def upload_type(self):
        """A volume type on the store's backend that uploads to the store.

        Cinder sends an upload-to-image to the Glance store its volume
        type's ``image_service:store_id`` names (else Glance's default,
        which is on loop). Made here: Cinder asks Glance whether the store
        exists when the spec is set, and Cinder starts before Glance.
        """
        admin = clouds.load(clouds.ADMIN_CLOUD).cinder()
        backend = admin.volume_types.find(
            name=self.cloud.storage_facts.volume_type).get_keys()[
                'volume_backend_name']
        vtype = admin.volume_types.create(
            'upload-to-%s-%s' % (self.backend, os.urandom(4).hex()))
        self.addCleanup(admin.volume_types.delete, vtype)
        vtype.set_keys({'volume_backend_name': backend,
                        'image_service:store_id': self.backend})
        return vtype.name

    def test_qcow2_upload_arrives_without_a_size(self):
        # A disk format Cinder must convert to: no clone, Cinder writes a
        # qcow2 of the volume and sends it through glance-api chunked,
        # without a size (Nova's snapshot upload arrives the same way).
        image, src = self.uploaded('to-qcow2-src', seed=65)
        volume = self.volume_from(image.id, volume_type=self.upload_type())
        reply = self.user_cinder.volumes.upload_to_image(
            volume, False, 'qcow2-%s' % volume.id, 'bare', 'qcow2',
            'private', False)
        new_id = reply[1]['os-volume_upload_image']['image_id']
        self.addCleanup(self._delete_image, self.user, new_id)
        new = self.wait_image(new_id, lambda i: i.status == 'active',
                              'upload-to-image', 240)
        self.assertEqual('qcow2', new.disk_format)
        self.assertEqual(self.backend, new.stores)
        log = self.cloud.facts.glance and self.cloud.facts.glance.log
        if log:
            with open(log) as f:
                self.assertIn('Storing image %s (size unknown)' % new_id,
                              f.read())
        # Byte-exact: the download is what Glance hashed, and converted
        # back it is the volume (the image's bytes, then zeros).
        path = os.path.join(self.useFixture(base.fixtures.TempDir()).path,
                            'image.qcow2')
        md5, sha512 = hashlib.md5(), hashlib.sha512()
        resp = self.user.session.get(
            '%s/v2/images/%s/file' % (self.user.url, new_id), stream=True)
        with open(path, 'wb') as f:
            for chunk in resp.iter_content(4 * base.MiB):
                md5.update(chunk)
                sha512.update(chunk)
                f.write(chunk)
        self.assertEqual(new.size, os.path.getsize(path))
        self.assertEqual(new.checksum, md5.hexdigest())
        self.assertEqual(new.os_hash_value, sha512.hexdigest())
        raw = path + '.raw'
        subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw',
                        path, raw], check=True)
        want = hashlib.sha256(src.expected())
        want.update(bytes(base.GiB - SIZE))
        got = hashlib.sha256()
        with open(raw, 'rb') as f:
            for chunk in iter(lambda: f.read(4 * base.MiB), b''):
                got.update(chunk)
        self.assertEqual(want.hexdigest(), got.hexdigest())


class TestImageVolumeCache(WorkflowTestCase):
    """Cinder's image-volume cache on one backend of this store.

    On the stack: loop-offline, Glance backend ``offline``. A cache entry
    is a volume named ``image-<image id>`` in Cinder's internal tenant
    (here, as DevStack sets it, the service project where the store keeps
    its image volumes) of the type it was made for: the name, project and
    type of the image volume of that image.
    """

    def setUp(self):
        super(TestImageVolumeCache, self).setUp()
        facts = self.cloud.storage_facts
        self.cached = facts.glance_backend_image_cache
        self.cached_type = facts.volume_type_image_cache
        self.assertTrue(self.cached and self.cached_type,
                        'the cloud names no backend with the image cache')

    def image_volumes(self, image_id):
        return {v.id: v for v in self.inspect.volumes().values()
                if v.name == 'image-%s' % image_id}

    def test_this_stores_image_is_cloned_not_cached(self):
        image, _src = self.uploaded('cache-raw', seed=69, backend=self.cached)
        image_volume = self.volume_of(image.id)
        self.volume_from(image.id, volume_type=self.cached_type)
        self.assertIn(self.cinder_cloned(image_volume.id), (True, None))
        self.assertIn(self.reads_of(image.id), ([], None))
        self.assertEqual([image_volume.id], list(self.image_volumes(image.id)))

    def qcow2_uploaded(self, name, seed):
        """An image of qcow2 data (Cinder converts it: no clone)."""
        src = images.ImageSource(SIZE, seed=seed)
        tmp = self.useFixture(base.fixtures.TempDir()).path
        raw, qcow2 = os.path.join(tmp, 'raw'), os.path.join(tmp, 'qcow2')
        with open(raw, 'wb') as f:
            f.write(src.expected())
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, qcow2], check=True)
        image = self.user.create(name, disk_format='qcow2')
        self.addCleanup(self._delete_image, self.user, image.id)
        with open(qcow2, 'rb') as f:
            self.glance.images.upload(image.id, f,
                                      image_size=os.path.getsize(qcow2),
                                      backend=self.cached)
        return image, src

    def test_cache_entries_are_not_image_volumes(self):
        image, src = self.qcow2_uploaded('cache-qcow2', seed=70)
        image_volume = self.volume_of(image.id)
        # Cinder reads the image through glance-api once, converts it, and
        # keeps a clone of the result as the cache entry.
        self.volume_from(image.id, volume_type=self.cached_type)
        entries = self.image_volumes(image.id)
        del entries[image_volume.id]
        self.assertEqual(1, len(entries), entries)
        (entry_id, entry), = entries.items()
        self.addCleanup(self._delete_volume, self.inspect.cinder, entry_id)
        self.assertEqual(self.cached_type, entry.volume_type)
        reads = self.reads_of(image.id)
        if reads is not None:
            self.assertEqual(['ok'], [r.result for r in reads])
        # The next volume comes from the cache: no second read.
        volume = self.volume_from(image.id, volume_type=self.cached_type)
        if reads is not None:
            self.assertEqual(1, len(self.reads_of(image.id)))
        self.assertHolds(volume, src, size=SIZE)

        # reconcile names no cache entry, now or once the image is gone.
        self.assertReconcileSpares(entry_id)
        # Nor can the entry be made another image's location.
        locations = glance.GlanceUser(
            clouds.load(clouds.ADMIN_CLOUD),
            self.cloud.facts.glance.locations_url)
        other = locations.create('cache-entry-as-location')
        self.addCleanup(locations.delete_quietly, other.id)
        resp = locations.session.patch(
            '%s/v2/images/%s' % (locations.url, other.id),
            json=[{'op': 'add', 'path': '/locations/-',
                   'value': {'url': 'cinder://%s/%s' % (self.cached,
                                                        entry_id),
                             'metadata': {'store': self.cached}}}],
            headers={'Content-Type':
                     'application/openstack-images-v2.1-json-patch'},
            raise_exc=False)
        self.assertEqual(400, resp.status_code, resp.text)
        # Deleting the image deletes its volume, not Cinder's entry.
        self.glance.images.delete(image.id)
        self.assertTrue(self.inspect.wait_gone(image_volume.id, 60))
        self.assertEqual([entry_id], list(self.image_volumes(image.id)))
        self.assertReconcileSpares(entry_id)

    def assertReconcileSpares(self, entry_id):
        done = self.glance_command('reconcile', '--apply', '--older-than',
                                   '0')
        out = done.stdout + done.stderr
        self.assertEqual(0, done.returncode, out)
        self.assertNotIn(entry_id, out)
        self.assertIn(entry_id, self.inspect.volumes())

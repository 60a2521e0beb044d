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

import datetime
import io
import json
import os
import threading
import time

import fixtures
from glance_store import exceptions

from cinder_ext_store import cinder_api
from cinder_ext_store import host_records
from cinder_ext_store import reconcile
from cinder_ext_store import spare_volumes
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import test_reconcile

CREDENTIALS = dict(cinder_store_auth_address='http://keystone/v3',
                   cinder_store_user_name='glance',
                   cinder_store_password='secret',
                   cinder_store_project_name='service')


class SpareTestCase(test_reconcile.ReconcileTestCase):
    """A store with one spare volume, made by the test (no thread)."""

    def make_conf(self, **overrides):
        values = dict(CREDENTIALS, cinder_ext_spare_volumes=1)
        values.update(overrides)
        return super(SpareTestCase, self).make_conf(**values)

    def setUp(self):
        super(SpareTestCase, self).setUp()
        self.spares = self.store.spares
        self.spawned = []
        self.spares.spawn = self.spawned.append
        self.addCleanup(self.spares.release_all)

    def spare(self):
        """Fill the spares; the id of the one ready."""
        self.assertTrue(self.spares.fill())
        [spare] = list(self.spares._ready)
        return spare.volume.id

    def marker(self, volume_id):
        return self.store.uploads._load(volume_id)

    def assertSpareGone(self, volume_id):
        """The spare's volume, attachment, connection and record are gone."""
        self.cloud.finish_transitions()
        self.assertNotIn(volume_id, self.cloud.volumes)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        self.assertIsNone(self.marker(volume_id))


class TestSpares(SpareTestCase):

    def test_a_spare_is_an_attached_recorded_volume(self):
        vid = self.spare()
        vol = self.cloud.volumes[vid]
        self.assertEqual(spare_volumes.NAME, vol['name'])
        self.assertEqual(1, vol['size'])
        self.assertEqual('in-use', vol['status'])
        self.assertEqual([vid], [a['volume_id'] for a in
                                 self.cloud.attachments.values()])
        marker = self.marker(vid)
        self.assertTrue(marker['spare'])
        self.assertEqual('rw', marker['mode'])
        self.assertIn(vid, self.store.uploads.live())

    def test_upload_takes_the_spare(self):
        vid = self.spare()
        data = base.payload(base.TEST_GIB - 5)
        uri = self.add(data, image_id='small')[0]
        self.assertEqual(vid, self.volume_id(uri))
        vol = self.assertStored(uri, data)
        self.assertEqual('image-small', vol['name'])
        self.assertEqual('small', vol['metadata']['glance_image_id'])
        self.assertIn('image_owner', vol['metadata'])
        # The creation token stays (reconcile's proof the store made it).
        self.assertIn(cinder_api.CREATE_TOKEN, vol['metadata'])
        self.assertIsNone(self.marker(vid))
        # Taken: the store asked its thread for the next one, and neither
        # created nor attached for this upload.
        self.assertEqual(0, self.spares.ready)
        self.assertEqual([self.spares._run], self.spawned)
        self.assertTrue(self.spares._wanted.is_set())
        self.assertEqual(1, self.cloud.count('create'))
        self.assertIn('phases=claim:', self.log.output)
        self.assertEqual(data, self.read_all(uri))

    def test_marker_says_spare_until_the_upload_ends(self):
        # A crash mid-upload: reconcile deletes the volume only if Cinder
        # still shows a spare, whether or not the rename got through.
        vid = self.spare()
        seen = []
        data = io.BytesIO(base.payload(1000))

        class Source(object):
            def read(inner, n):
                seen.append(self.marker(vid))
                return data.read(n)
        self.add(b'', size=1000, image_id='watched', source=Source())
        self.assertTrue(seen)
        self.assertTrue(all(m['spare'] and m['attachment_id']
                            for m in seen), seen)
        self.assertIsNone(self.marker(vid))

    def test_larger_or_unsized_uploads_make_their_own_volume(self):
        vid = self.spare()
        big = base.payload(base.TEST_GIB + 1)
        self.add(big, image_id='big')
        self.add(base.payload(1000), size=0, image_id='chunked')
        self.assertEqual(1, self.spares.ready)
        self.assertEqual(spare_volumes.NAME, self.cloud.volumes[vid]['name'])

    def test_failed_upload_deletes_the_spare_it_took(self):
        vid = self.spare()
        self.assertRaises(exceptions.Invalid, self.add, base.payload(10),
                          size=20, image_id='short')
        self.assertSpareGone(vid)

    def test_failed_claim_releases_the_spare(self):
        vid = self.spare()
        self.cloud.fail('update', cinder_api.cinder_exc.ClientException(
            500, 'db down'), 10)
        self.assertRaises(exceptions.BackendException, self.add,
                          base.payload(10), image_id='claim')
        self.assertSpareGone(vid)

    def test_failure_before_the_write_releases_the_spare(self):
        vid = self.spare()

        def no_thread(*args):
            raise RuntimeError("can't start new thread")
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.spare_volumes.Claim', no_thread))
        self.assertRaises(RuntimeError, self.add, base.payload(10),
                          image_id='early')
        self.assertSpareGone(vid)

    def test_a_spare_that_cannot_be_attached_is_not_kept(self):
        self.host.fail('connect', OSError('no path'))
        self.assertFalse(self.spares.fill())
        self.assertEqual(0, self.spares.ready)
        self.assertIn('Could not make a spare volume', self.log.output)
        self.assertNothingLeft()
        self.assertEqual([], list(self.store.uploads.markers()))

    def test_process_end_deletes_the_spares(self):
        self.spare()
        self.spares.release_all()
        self.assertNothingLeft()
        self.assertEqual([], list(self.store.uploads.markers()))

    def test_a_spare_cinder_keeps_stays_for_reconcile(self):
        vid = self.spare()
        self.cloud.fail('delete', cinder_api.cinder_exc.ClientException(
            500, 'db down'), 20)
        self.spares.release_all()
        self.assertIn('stays for cinder-ext-store reconcile', self.log.output)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual([vid], [v for v, _ in self.store.uploads.dead()])
        self.cloud.faults.clear()  # Cinder is back
        actions = self.plan(test_reconcile.FakeGlance({}))
        self.assertIn('delete spare volume', [a.what for a in actions])
        self.assertEqual(0, self.run_plan(actions))
        self.assertNothingLeft()

    def test_no_spares_without_service_credentials(self):
        conf = super(SpareTestCase, self).make_conf(
            cinder_ext_spare_volumes=2)
        store = self.make_store(conf)
        self.assertIsNone(store.spares.take(1))
        self.assertIn('needs the service credentials', self.log.output)

    def test_off_by_default(self):
        store = self.make_store(
            super(SpareTestCase, self).make_conf(**CREDENTIALS))
        self.assertIsNone(store.spares.take(1))
        self.add(base.payload(10), store=store)
        self.assertEqual(1, self.cloud.count('create'))

    def test_a_forked_child_starts_without_the_parents_spares(self):
        self.spare()
        self.spares.take(2)  # starts this process's thread
        self.spares._pid = os.getpid() + 1  # as a child sees it
        self.assertIsNone(self.spares.take(1))
        self.assertEqual(2, len(self.spawned))
        self.spares._pid = os.getpid()

    def test_stop_waits_for_the_spare_being_made(self):
        gate = threading.Event()
        make = self.spares.make

        def slow_make():
            gate.wait(10)
            return make()
        self.spares.make = slow_make
        maker = threading.Thread(target=self.spares.fill)
        maker.start()
        stopper = threading.Thread(target=self.spares.stop)
        stopper.start()
        time.sleep(0.1)
        self.assertTrue(stopper.is_alive())  # waits for the create
        gate.set()
        maker.join(10)
        stopper.join(10)
        self.assertNothingLeft()
        self.assertEqual([], list(self.store.uploads.markers()))


class TestDeadSpares(SpareTestCase):

    def dead_spare(self):
        vid = self.spare()
        self.spares._ready.clear()  # the process "died" holding it
        self.kill(os.path.join(self.store.shares.dir, '%s.upload' % vid))
        return vid

    def test_reconcile_deletes_a_dead_processs_spare(self):
        self.dead_spare()
        actions = self.plan(test_reconcile.FakeGlance({}))
        self.assertEqual(['release upload attachment', 'delete spare volume'],
                         [a.what for a in actions])
        self.assertEqual(0, self.run_plan(actions))
        self.assertNothingLeft()

    def test_reconcile_judges_a_taken_spare_as_an_image_volume(self):
        # The process died after an upload renamed it: an image's volume
        # now, kept while an image names it.
        vid = self.dead_spare()
        self.api.rename(vid, 'image-young', {'glance_image_id': 'young',
                                             'image_size': '10'})
        actions = self.plan(test_reconcile.FakeGlance(
            {'young': ('active', {vid})}), later=datetime.timedelta())
        self.assertEqual(['release upload attachment'],
                         [a.what for a in actions])
        self.assertEqual(0, self.run_plan(actions))
        self.assertIn(vid, self.cloud.volumes)
        self.assertEqual({}, self.cloud.attachments)

    def test_a_spare_taken_after_the_plan_is_not_deleted(self):
        vid = self.dead_spare()
        actions = self.plan(test_reconcile.FakeGlance({}))
        self.api.rename(vid, 'image-late', {'glance_image_id': 'late'})
        self.assertEqual(1, self.run_plan(actions))
        self.assertIn(vid, self.cloud.volumes)
        self.assertIn('no longer a spare', self.out[-1])

    def unrecorded_spare(self, **made_by):
        """A spare whose process died between create and its record."""
        identity = dict(host_records.identity(), **made_by)
        return self.api.create(1, spare_volumes.NAME, {
            spare_volumes.MADE_BY: json.dumps(identity)}).id

    def test_reconcile_deletes_a_spare_its_dead_maker_never_recorded(self):
        vid = self.unrecorded_spare(start=-1)
        actions = self.plan(test_reconcile.FakeGlance({}))
        self.assertEqual([('delete spare volume', vid)],
                         [(a.what, a.target) for a in actions])
        self.assertIn('died making it', actions[0].reason)
        self.assertEqual(0, self.run_plan(actions))
        self.assertNothingLeft()

    def test_unrecorded_spares_kept_unless_their_maker_is_dead_here(self):
        self.unrecorded_spare()  # this process: recording it now
        self.unrecorded_spare(start=-1, host='another-host')
        self.unrecorded_spare(start=-1, pidns='pid:[1]')
        self.api.create(1, spare_volumes.NAME, {})  # maker unknown
        self.api.create(1, spare_volumes.NAME, {
            spare_volumes.MADE_BY: '{"pid": 1}'})
        self.assertEqual([], self.plan(test_reconcile.FakeGlance({})))

    def test_an_image_volume_does_not_keep_the_spares_maker(self):
        vid = self.spare()
        self.add(base.payload(10), image_id='taken')
        self.assertNotIn(spare_volumes.MADE_BY,
                         self.cloud.volumes[vid]['metadata'])

    def test_a_live_spare_is_kept(self):
        vid = self.spare()
        actions = reconcile.plan(self.store, test_reconcile.FakeGlance({}),
                                 test_reconcile.HOUR)
        self.assertEqual([], actions)
        self.assertIn(vid, self.cloud.volumes)

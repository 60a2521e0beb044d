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
import json
import os

from cinder_ext_store import attachments
from cinder_ext_store import cinder_api
from cinder_ext_store import reconcile
from cinder_ext_store.tests.unit import base

HOUR = 3600
LATER = datetime.timedelta(hours=2)


class FakeGlance(object):
    """Glance's images: id -> (status, volume ids of its locations)."""

    def __init__(self, images=None, reachable=True):
        self.images = images or {}
        self.reachable = reachable

    def image(self, image_id):
        return self.images.get(image_id)


class ReconcileTestCase(base.StoreTestCase):

    def setUp(self):
        super(ReconcileTestCase, self).setUp()
        self.api = self.store.cinder.api()
        self.out = []

    def plan(self, glance, older_than=HOUR, later=LATER):
        return reconcile.plan(self.store, glance, older_than,
                              now=cinder_api.utcnow() + later)

    def run_plan(self, actions, apply=True):
        return reconcile.run(actions, apply, self.out.append)

    def image_volume(self, image_id, status=None):
        vol = self.api.create(1, 'image-%s' % image_id,
                              {'glance_image_id': image_id,
                               'image_size': '10'})
        if status:
            self.cloud.volumes[vol.id]['status'] = status
        return vol.id

    def kill(self, path):
        """Make the process a state file names look dead."""
        with open(path) as f:
            state = json.load(f)
        for holder in [state] + list(state.get('readers', {}).values()):
            if 'start' in holder:
                holder['start'] = -1
        with open(path, 'w') as f:
            json.dump(state, f)


class TestHost(ReconcileTestCase):

    def crashed_upload(self):
        vid = self.image_volume('crashed')
        att = attachments.Attachment(self.api, self.host, vid, 'rw')
        att.open()
        self.store.shares.uploading(vid, att)
        self.kill(os.path.join(self.store.shares.dir, '%s.upload' % vid))
        return vid

    def test_crashed_upload(self):
        self.crashed_upload()
        # Young and the image still 'saving': only the dead writer says
        # it is garbage.
        actions = self.plan(FakeGlance({'crashed': ('saving', set())}),
                            later=datetime.timedelta())
        self.assertEqual(['release upload attachment', 'delete volume'],
                         [a.what for a in actions])
        self.assertIn('uploading process', actions[0].reason)
        self.assertIn('upload died', actions[1].reason)
        self.assertEqual(0, self.run_plan(actions, apply=False))
        self.assertEqual(1, len(self.cloud.attachments))  # dry run
        self.assertTrue(self.out[0].startswith(
            '[images] would release upload attachment'), self.out[0])
        self.assertEqual(0, self.run_plan(actions))
        self.assertNothingLeft()
        self.assertEqual([], list(self.store.shares.dead_uploads()))

    def test_upload_that_could_not_clean_up(self):
        # Cinder refuses every detach: the upload fails, its volume stays
        # attached; the live process flags its marker for reconcile.
        self.cloud.fail('attachment_delete', cinder_api.cinder_exc.
                        ClientException(503, 'busy'), 8)
        self.assertRaises(cinder_api.exceptions.BackendException, self.add,
                          base.payload(1000), image_id='stuck')
        self.assertEqual(1, len(self.cloud.volumes))
        actions = self.plan(FakeGlance({'stuck': ('queued', set())}),
                            later=datetime.timedelta())
        self.assertEqual(['release upload attachment', 'delete volume'],
                         [a.what for a in actions])
        self.assertIn('the upload failed and could not clean up',
                      actions[0].reason)
        self.assertEqual(0, self.run_plan(actions))
        self.assertNothingLeft()

    def test_host_state_is_planned_once(self):
        # Every store of the host shares the lock path: one plan takes it.
        self.crashed_upload()
        seen = set()
        first = reconcile.plan(self.store, FakeGlance(), HOUR, seen=seen)
        second = reconcile.plan(self.store, FakeGlance(), HOUR, seen=seen)
        self.assertEqual(['release upload attachment', 'delete volume'],
                         [a.what for a in first])
        self.assertEqual([], second)

    def test_live_upload_is_not_touched(self):
        vid = self.image_volume('live')
        att = attachments.Attachment(self.api, self.host, vid, 'rw')
        att.open()
        self.store.shares.uploading(vid, att)
        self.cloud.volumes[vid]['created_at'] = '2000-01-01T00:00:00'
        self.assertEqual([], self.plan(FakeGlance({'live': ('saving',
                                                            set())})))
        att.close(succeeded=True)

    def test_dead_read_share(self):
        uri = self.add(base.payload(3000), image_id='read')[0]
        vid = self.volume_id(uri)
        lease = self.store.shares.acquire(self.api, vid)
        self.kill(os.path.join(self.store.shares.dir, '%s.json' % vid))
        actions = self.plan(FakeGlance({'read': ('active', {vid})}))
        self.assertEqual(['release read attachment'],
                         [a.what for a in actions])
        self.assertIn('no reader process of this host is alive',
                      actions[0].reason)
        self.run_plan(actions)
        self.assertEqual({}, self.cloud.attachments)
        self.assertIn(vid, self.cloud.volumes)  # it backs an image
        lease.device.close()

    def test_failure_is_reported(self):
        vid = self.crashed_upload()
        self.cloud.fail('attachment_delete',
                        cinder_api.cinder_exc.ClientException(400, 'no'))
        actions = self.plan(FakeGlance({'crashed': ('saving', set())}))
        self.assertEqual(1, self.run_plan(actions[:1]))
        self.assertIn('FAILED: ', self.out[0])
        # The marker stays, so that the next run tries again.
        self.assertEqual([vid], [v for v, _ in
                                 self.store.shares.dead_uploads()])


class TestVolumes(ReconcileTestCase):

    def test_glance_decides(self):
        gone = self.image_volume('gone')
        unfinished = self.image_volume('queued')
        elsewhere = self.image_volume('moved')
        backing = self.image_volume('active')
        glance = FakeGlance({'queued': ('queued', set()),
                             'moved': ('active', {'another-volume'}),
                             'active': ('active', {backing})})
        actions = self.plan(glance)
        reasons = {a.target.split()[0]: a.reason for a in actions}
        self.assertEqual({gone, unfinished, elsewhere}, set(reasons))
        self.assertIn('image gone is gone from Glance', reasons[gone])
        self.assertIn('queued and never used', reasons[unfinished])
        self.assertIn('do not name this volume', reasons[elsewhere])
        self.run_plan(actions)
        self.cloud.settle()
        self.assertEqual([backing], list(self.cloud.volumes))

    def test_grace_period(self):
        self.image_volume('gone')
        self.assertEqual([], self.plan(FakeGlance(), later=datetime.timedelta(
            minutes=30)))
        self.assertEqual(1, len(self.plan(FakeGlance(), older_than=60,
                                          later=datetime.timedelta(
                                              minutes=30))))

    def test_attached_volume_is_left_to_its_host(self):
        vid = self.image_volume('gone')
        att = attachments.Attachment(self.api, self.host, vid, 'rw')
        att.open()
        self.assertEqual([], self.plan(FakeGlance()))
        att.close(succeeded=True)

    def test_without_glance_only_stuck_volumes(self):
        stuck = self.image_volume('a', status='error')
        self.image_volume('b')  # available: may back an image
        actions = self.plan(FakeGlance(reachable=False))
        self.assertEqual([stuck], [a.target.split()[0] for a in actions])
        self.assertIn("stuck in error", actions[0].reason)
        self.run_plan(actions)
        self.cloud.settle()
        self.assertNotIn(stuck, self.cloud.volumes)

    def test_in_use_without_attachments(self):
        # Cinder finished a queued extend after the last detach: the volume
        # is 'in-use' with no attachment, a plain delete is refused. The
        # legacy detach frees it without an admin.
        vid = self.image_volume('gone')
        self.cloud.volumes[vid]['status'] = 'in-use'
        actions = self.plan(FakeGlance())
        self.assertEqual(0, self.run_plan(actions))
        self.assertEqual(1, self.cloud.count('detach'))
        self.assertEqual(0, self.cloud.count('force_delete'))
        self.cloud.settle()
        self.assertEqual({}, self.cloud.volumes)

    def test_stuck_creating_needs_an_admin(self):
        self.api.timeout = 0.2  # nothing will change 'creating'
        vid = self.image_volume('gone')
        self.cloud.volumes[vid]['status'] = 'creating'
        actions = self.plan(FakeGlance())
        self.assertEqual(1, self.run_plan(actions))
        self.assertIn('openstack volume delete --force %s' % vid,
                      self.out[0], self.out)
        self.cloud.admin = True
        self.assertEqual(0, self.run_plan(self.plan(FakeGlance())))
        self.assertEqual(2, self.cloud.count('force_delete'))  # 403, done
        self.cloud.settle()
        self.assertEqual({}, self.cloud.volumes)

    def test_a_volume_is_planned_once(self):
        # Two backends on one volume type: the second plan leaves it.
        self.image_volume('gone')
        seen = set()
        first = reconcile.plan(self.store, FakeGlance(), HOUR,
                               now=cinder_api.utcnow() + LATER, seen=seen)
        second = reconcile.plan(self.store, FakeGlance(), HOUR,
                                now=cinder_api.utcnow() + LATER, seen=seen)
        self.assertEqual((1, 0), (len(first), len(second)))

    def test_foreign_volumes_are_never_touched(self):
        self.api.create(1, 'boot-disk', {})
        self.api.create(1, 'image-x', {'glance_image_id': 'y'})  # mismatch
        self.api.create(1, 'image-z', {'glance_image_id': 'z'},
                        volume_type='fast')  # another store's type
        self.assertEqual([], self.plan(FakeGlance()))
        self.assertEqual([], self.plan(FakeGlance(reachable=False)))

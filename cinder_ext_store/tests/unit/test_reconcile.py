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
import socket

import fixtures
import testtools

from cinder_ext_store import attachments
from cinder_ext_store import ceph_pool
from cinder_ext_store import cinder_api
from cinder_ext_store import host_records
from cinder_ext_store import reconcile
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes

HOUR = 3600
LATER = datetime.timedelta(hours=2)


LONG_AGO = datetime.datetime(2000, 1, 1)


def image(status, volumes=(), updated_at=LONG_AGO):
    return reconcile.ImageRecord(status, status == 'deleted', set(volumes),
                                 updated_at)


class FakeGlance(object):
    """Glance's images: id -> (status, volume ids of its locations)."""

    def __init__(self, images=None, reachable=True):
        self.images = {i: image(*v) if isinstance(v, tuple) else v
                       for i, v in (images or {}).items()}
        self.reachable = reachable

    def image(self, image_id):
        return self.images.get(image_id)

    def active_images_of(self, backend):
        return sorted((i, vid) for i, rec in self.images.items()
                      if rec.status == 'active' for vid in rec.volumes)

    def used_by(self, volume_id):
        # Live images only, as GlanceImages.used_by answers.
        return sorted(i for i, rec in self.images.items()
                      if not rec.deleted and volume_id in rec.volumes and
                      rec.status in ('active', 'pending_delete'))


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

    def crashed_upload(self):
        vid = self.image_volume('crashed')
        att = attachments.Attachment(self.api, self.host, vid, 'rw')
        att.open()
        self.store.uploads.uploading(vid, att)
        self.kill(os.path.join(self.store.shares.dir, '%s.upload' % vid))
        return vid

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
        self.assertEqual([], list(self.store.uploads.dead()))

    def test_upload_that_could_not_clean_up(self):
        # Cinder refuses every detach: the upload fails, its volume stays
        # attached; the live process flags its marker for reconcile.
        self.cloud.fail('attachment_delete', cinder_api.cinder_exc.
                        ClientException(503, 'busy'), 8)
        self.assertRaises(cinder_api.exceptions.BackendException, self.add,
                          base.payload(1000), image_id='stuck')
        self.assertEqual(1, len(self.cloud.volumes))
        # Detached from this host, still in Cinder: the marker names it.
        [(_vid, marker)] = list(self.store.uploads.dead())
        self.assertEqual(list(self.cloud.attachments),
                         [marker['attachment_id']])
        self.assertIsNone(marker['host_connection'])
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
        self.store.uploads.uploading(vid, att)
        self.cloud.volumes[vid]['created_at'] = '2000-01-01T00:00:00'
        self.assertEqual([], self.plan(FakeGlance({'live': ('saving',
                                                            set())})))
        att.close()

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
        self.assertEqual([vid], [v for v, _ in self.store.uploads.dead()])


class TestVolumes(ReconcileTestCase):

    def test_glance_decides(self):
        deleted = self.image_volume('deleted')
        unfinished = self.image_volume('queued')
        elsewhere = self.image_volume('moved')
        backing = self.image_volume('active')
        glance = FakeGlance({'deleted': ('deleted',),
                             'queued': ('queued',),
                             'moved': ('active', {'another-volume'}),
                             'active': ('active', {backing})})
        actions = self.plan(glance)
        reasons = {a.target.split()[0]: a.reason for a in actions}
        self.assertEqual({deleted, unfinished, elsewhere}, set(reasons))
        self.assertIn('image deleted was deleted in Glance', reasons[deleted])
        self.assertIn('queued and its locations do not name',
                      reasons[unfinished])
        self.assertIn('do not name this volume', reasons[elsewhere])
        self.run_plan(actions)
        self.cloud.finish_transitions()
        self.assertEqual([backing], list(self.cloud.volumes))

    def test_data_glance_refused_after_the_upload(self):
        # Glance's format check failed after add(): the image is back to
        # queued, its location still names the volume.
        vid = self.image_volume('refused')
        glance = FakeGlance({'refused': ('queued', {vid})})
        actions = self.plan(glance)
        self.assertEqual(['delete volume'], [a.what for a in actions])
        self.assertIn('Glance refused the data', actions[0].reason)
        # Not while the volume or the image's last change is recent.
        self.assertEqual([], self.plan(glance, later=datetime.timedelta()))
        glance.images['refused'] = image('queued', {vid},
                                         cinder_api.utcnow() + LATER)
        self.assertEqual([], self.plan(glance))
        # Nor while it is attached.
        glance.images['refused'] = image('queued', {vid})
        attachment = self.attach_elsewhere(vid, mode='rw')
        self.assertEqual([], [a for a in self.plan(glance)
                              if a.what == 'delete volume'])
        self.cloud.attachments.pop(attachment)
        # Nor once an active image names it.
        glance.images['refused'] = image('active', {vid})
        self.assertEqual([], self.plan(glance))

    def test_a_volume_judged_again_before_it_is_deleted(self):
        # The plan is made; the user uploads again before it runs: the
        # image is active and names the volume, which stays.
        vid = self.image_volume('again')
        glance = FakeGlance({'again': ('queued', {vid})})
        actions = self.plan(glance)
        self.assertEqual(['delete volume'], [a.what for a in actions])
        glance.images['again'] = image('active', {vid, 'another'})
        self.assertEqual(1, self.run_plan(actions))
        self.assertIn('no longer to be deleted', self.out[0])
        self.cloud.finish_transitions()
        self.assertIn(vid, self.cloud.volumes)

    def test_an_active_image_whose_volume_is_gone(self):
        vid = self.image_volume('kept')
        glance = FakeGlance({'kept': ('active', {vid}),
                             'lost': ('active', {'0d7c9e2a-gone'})})
        notes = []
        actions = reconcile.plan(self.store, glance, HOUR, notes=notes)
        self.assertEqual([], actions)
        [note] = notes
        self.assertEqual(('image lost', '0d7c9e2a-gone', False),
                         (note.target, note.volume_id, note.undecided))
        self.assertIn('which Cinder does not have', note.describe())

    def test_grace_period(self):
        self.image_volume('deleted')
        glance = FakeGlance({'deleted': ('deleted',)})
        self.assertEqual([], self.plan(glance, later=datetime.timedelta(
            minutes=30)))
        self.assertEqual(1, len(self.plan(glance, older_than=60,
                                          later=datetime.timedelta(
                                              minutes=30))))

    def attach_elsewhere(self, vid, host='glance-b', mode='ro'):
        """An attachment another process made (host ``host``)."""
        v = fakes.api_versions.APIVersion('3.54')
        made = self.cloud.attachment_create(v, vid, {'host': host}, mode)
        self.cloud.attachment_complete(v, made['id'])
        return made['id']

    def test_unrecorded_attachment_of_this_host(self):
        # A record lost in a crash: Cinder says the attachment is this
        # host's, nothing here names it. Released after the grace period,
        # the image's volume kept.
        vid = self.image_volume('live')
        self.cloud.volumes[vid]['multiattach'] = True
        aid = self.attach_elsewhere(vid, host=socket.gethostname())
        theirs = self.attach_elsewhere(vid)  # another host's: never
        glance = FakeGlance({'live': ('active', {vid})})
        self.assertEqual([], self.plan(glance, later=datetime.timedelta()))
        [action] = self.plan(glance)
        self.assertEqual(('release unrecorded attachment',
                          '%s of volume %s' % (aid, vid)),
                         (action.what, action.target))
        self.assertIn('named by no record', action.reason)
        self.assertEqual(0, self.run_plan([action]))
        self.assertEqual([theirs], list(self.cloud.attachments))
        self.assertIn(vid, self.cloud.volumes)

    def test_a_volume_with_a_record_keeps_its_attachments(self):
        # A record being made names no attachment yet (a reader between
        # recording and the answer, an upload between create and attach).
        vid = self.image_volume('live')
        aid = self.attach_elsewhere(vid, host=socket.gethostname())
        glance = FakeGlance({'live': ('active', {vid})})
        actions = self.plan(glance)
        self.assertEqual(1, len(actions))
        self.store.uploads.uploading(vid)  # made after the plan
        self.assertEqual(1, self.run_plan(actions))
        self.assertIn('has a record again', self.out[0])
        self.assertEqual([], self.plan(glance))
        self.assertEqual([aid], list(self.cloud.attachments))
        self.store.uploads.uploaded(vid)

    def test_a_record_that_cannot_be_read_keeps_the_attachment(self):
        # Refused (others may write it) or moved aside as corrupt: what it
        # named is not known, so nothing of its volume is released.
        vid = self.image_volume('live')
        self.attach_elsewhere(vid, host=socket.gethostname())
        glance = FakeGlance({'live': ('active', {vid})})
        self.store.shares.records.save('%s.json' % vid, {'readers': {}})
        os.chmod(self.store.shares.records.path('%s.json' % vid), 0o666)
        self.assertEqual([], self.plan(glance))
        os.rename(self.store.shares.records.path('%s.json' % vid),
                  self.store.shares.records.path('%s.json.corrupt-1' % vid))
        self.assertEqual([], [a for a in self.plan(glance)
                              if a.what == 'release unrecorded attachment'])

    def test_records_of_another_place_are_kept_and_said(self):
        # reconcile run outside glance-api's PID namespace (or another
        # container on this lock path): nothing its records name is
        # released or deleted, however dead its pids look from here.
        vid = self.crashed_upload()
        path = os.path.join(self.store.shares.dir, '%s.upload' % vid)
        with open(path) as f:
            marker = json.load(f)
        marker.update(pidns='pid:[1]', start=-1)
        with open(path, 'w') as f:
            json.dump(marker, f)
        read = self.image_volume('read')
        self.store.shares.records.save('%s.json' % read, {
            'attachment_id': self.attach_elsewhere(
                read, host=socket.gethostname()),
            'connection_info': {}, 'props': {}, 'host_connection': None,
            'readers': {'7@pid:[1]': dict(
                host_records.identity(), pidns='pid:[1]', start=1,
                count=1)}})
        notes = []
        glance = FakeGlance({'crashed': ('saving', set()),
                             'read': ('active', {read})})
        actions = reconcile.plan(self.store, glance, HOUR,
                                 now=cinder_api.utcnow() + LATER,
                                 notes=notes)
        self.assertEqual([], actions)
        self.assertEqual(['upload of volume %s' % vid,
                          'read share of volume %s' % read],
                         [n.target.split(' by ')[0].split(' held')[0]
                          for n in notes])
        self.assertIn('another PID namespace', notes[0].reason)
        self.assertIn('pid:[1]', notes[1].target)
        self.assertEqual(2, len(self.cloud.attachments))
        self.assertEqual(2, len(self.cloud.volumes))

    def test_attached_volume_is_left_to_its_host(self):
        vid = self.image_volume('deleted')
        self.attach_elsewhere(vid)
        self.assertEqual([], self.plan(FakeGlance({'deleted':
                                                   ('deleted',)})))

    def test_without_glance_no_image_volume_is_deleted(self):
        # A reader killed between attachment create and complete leaves an
        # active image's only volume 'attaching'; a failed extend leaves
        # 'error'-like states: none of it is garbage by itself.
        attaching = self.image_volume('a', status='attaching')
        error = self.image_volume('b', status='error')
        self.image_volume('c')  # available: may back an image
        notes = []
        actions = reconcile.plan(self.store, FakeGlance(reachable=False),
                                 HOUR, now=cinder_api.utcnow() + LATER,
                                 notes=notes)
        self.assertEqual([], actions)
        self.assertEqual({attaching, error}, {n.volume_id for n in notes})
        self.assertTrue(all(n.undecided for n in notes))
        self.assertIn('never deleted without it', notes[0].describe())
        self.assertEqual(3, len(self.cloud.volumes))

    def test_without_glance_a_crashed_upload_keeps_its_volume(self):
        vid = self.crashed_upload()
        notes = []
        actions = reconcile.plan(self.store, FakeGlance(reachable=False),
                                 HOUR, notes=notes)
        # The dead process's attachment is this host's to release.
        self.assertEqual(['release upload attachment'],
                         [a.what for a in actions])
        self.assertEqual([vid], [n.volume_id for n in notes])
        self.run_plan(actions)
        self.assertIn(vid, self.cloud.volumes)

    def test_live_upload_in_offline_growth_is_not_planned(self):
        # Between detach and re-attach the volume has no attachment; an
        # hour-old upload of a 'saving' image is still not garbage.
        vid = self.image_volume('growing')
        self.store.uploads.uploading(vid)
        self.cloud.volumes[vid]['created_at'] = '2000-01-01T00:00:00'
        self.assertEqual([], self.plan(FakeGlance(
            {'growing': ('saving', (), LONG_AGO)})))
        self.store.uploads.uploaded(vid)
        self.assertEqual(1, len(self.plan(FakeGlance(
            {'growing': ('saving', (), LONG_AGO)}))))

    def test_upload_of_another_host_is_judged_by_the_image(self):
        # No marker here (another host uploads): an image in 'saving' that
        # Glance updated within the grace period keeps its volume.
        vid = self.image_volume('elsewhere')
        self.cloud.volumes[vid]['created_at'] = '2000-01-01T00:00:00'
        now = cinder_api.utcnow()
        recent = FakeGlance({'elsewhere': ('saving', (), now)})
        self.assertEqual([], reconcile.plan(self.store, recent, HOUR,
                                            now=now))
        # A volume Cinder changed recently (an extend) is kept too.
        old = FakeGlance({'elsewhere': ('saving', (), LONG_AGO)})
        self.cloud.volumes[vid]['updated_at'] = now.isoformat()
        self.assertEqual([], reconcile.plan(self.store, old, HOUR, now=now))

    def test_volumes_that_are_not_this_glances(self):
        # Cinder's image-volume cache entry of an active image: Cinder made
        # it from the image (volume_image_metadata).
        cache = self.image_volume('cached')
        self.cloud.volumes[cache]['image_metadata'] = {'image_id': 'cached'}
        # An image this Glance never knew (another Glance on this project).
        foreign = self.image_volume('foreign')
        # An image volume this store did not make (no creation token).
        intree = self.image_volume('intree')
        del self.cloud.volumes[intree]['metadata'][cinder_api.CREATE_TOKEN]
        notes = []
        glance = FakeGlance({'cached': ('active', {'backing'}),
                             'intree': ('active', {'backing-2'})})
        actions = reconcile.plan(self.store, glance, HOUR,
                                 now=cinder_api.utcnow() + LATER,
                                 notes=notes)
        self.assertEqual([], actions)
        # (The images' own volumes, 'backing*', are not in this Cinder:
        # said too, see test_an_active_image_whose_volume_is_gone.)
        self.assertEqual({foreign, intree}, {
            n.volume_id for n in notes if n.target.startswith('volume')})
        self.assertFalse(any(n.undecided for n in notes))
        self.assertEqual(3, len(self.cloud.volumes))

    def test_a_volume_another_image_names_is_kept(self):
        # An admin pointed a second image at the first one's volume; the
        # first was deleted (the store kept the volume for the second).
        vid = self.image_volume('first')
        glance = FakeGlance({'first': ('deleted',),
                             'second': ('active', {vid})})
        self.assertEqual([], self.plan(glance))

    def test_in_use_without_attachments(self):
        # Cinder finished a queued extend after the last detach: the volume
        # is 'in-use' with no attachment, a plain delete is refused. The
        # legacy detach frees it without an admin.
        vid = self.image_volume('gone')
        self.cloud.volumes[vid]['status'] = 'in-use'
        actions = self.plan(FakeGlance({'gone': ('deleted',)}))
        self.assertEqual(0, self.run_plan(actions))
        self.assertEqual(1, self.cloud.count('detach'))
        self.assertEqual(0, self.cloud.count('force_delete'))
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_stuck_creating_needs_an_admin(self):
        self.api.timeout = 0.2  # nothing will change 'creating'
        vid = self.image_volume('gone')
        self.cloud.volumes[vid]['status'] = 'creating'
        glance = FakeGlance({'gone': ('deleted',)})
        actions = self.plan(glance)
        self.assertEqual(1, self.run_plan(actions))
        self.assertIn('openstack volume delete --force %s' % vid,
                      self.out[0], self.out)
        self.cloud.admin = True
        self.assertEqual(0, self.run_plan(self.plan(glance)))
        self.assertEqual(2, self.cloud.count('force_delete'))  # 403, done
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_a_volume_is_planned_once(self):
        # Two backends on one volume type: the second plan leaves it.
        self.image_volume('gone')
        glance = FakeGlance({'gone': ('deleted',)})
        seen = set()
        first = reconcile.plan(self.store, glance, HOUR,
                               now=cinder_api.utcnow() + LATER, seen=seen)
        second = reconcile.plan(self.store, glance, HOUR,
                                now=cinder_api.utcnow() + LATER, seen=seen)
        self.assertEqual((1, 0), (len(first), len(second)))

    def test_foreign_volumes_are_never_touched(self):
        self.api.create(1, 'boot-disk', {})
        self.api.create(1, 'image-x', {'glance_image_id': 'y'})  # mismatch
        self.api.create(1, 'image-z', {'glance_image_id': 'z'},
                        volume_type='fast')  # another store's type
        glance = FakeGlance({'x': ('deleted',), 'y': ('deleted',),
                             'z': ('deleted',)})
        self.assertEqual([], self.plan(glance))
        self.assertEqual([], self.plan(FakeGlance(reachable=False)))

    def test_files_of_volumes_that_are_gone_are_pruned(self):
        uri = self.add(base.payload(3000), image_id='files')[0]
        vid = self.volume_id(uri)
        b''.join(self.store.get(self.location(uri), context=self.context)[0])
        records = self.store.shares.records
        gone = '0b5e55ed-0000-4000-8000-000000000000'
        for name in ('cinder_ext-read-%s' % gone, '%s.json.1.tmp' % gone,
                     '%s.json.corrupt-1' % gone):
            open(records.path(name), 'w').close()
            os.utime(records.path(name), (0, 0))
        os.utime(records.path('cinder_ext-read-%s' % vid), (0, 0))
        actions = [a for a in self.plan(FakeGlance())
                   if a.what == 'remove files']
        self.assertEqual(1, len(actions))
        self.assertIn(gone, actions[0].target)
        self.run_plan(actions)
        left = os.listdir(records.dir)
        self.assertFalse([n for n in left if gone in n])
        self.assertIn('cinder_ext-read-%s' % vid, left)  # it exists


class TestCephLeftovers(ReconcileTestCase):
    """What Cinder's RBD driver leaves in the pool: reported, never acted on.

    The pool itself is Ceph's (ceph_pool.leftovers runs against a real
    cluster in the functional tests); here what reconcile makes of it.
    """

    RBD = {'driver_volume_type': 'rbd', 'cluster_name': 'ceph',
           'auth_username': 'cinder', 'hosts': ['10.0.0.1'],
           'ports': ['6789'],
           'name': 'volumes/volume-5d1c6f4e-0b7a-4c55-9d56-0f2e9c1b8a11'}

    def setUp(self):
        super(TestCephLeftovers, self).setUp()
        self.asked = []
        self.found = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.ceph_pool.leftovers', self.leftovers))

    def leftovers(self, facts, volume_ids):
        self.asked.append((facts, sorted(volume_ids)))
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    def notes(self):
        notes = []
        actions = reconcile.plan(self.store, FakeGlance({}), HOUR,
                                 notes=notes)
        self.assertEqual([], [a for a in actions
                              if a.what == 'delete volume'])
        return [n.describe() for n in notes]

    def test_not_rbd_not_asked(self):
        self.store.uploads.records.note_backend(
            self.store.record_name, {'driver_volume_type': 'iscsi'})
        self.assertEqual([], self.notes())
        self.assertEqual([], self.asked)

    def test_reported_from_the_recorded_pool(self):
        vid = self.image_volume('live')
        self.api.create(1, 'a-users-volume', {})
        self.store.uploads.records.note_backend(self.store.record_name,
                                                self.RBD)
        self.found = [
            ('deleted', 'volumes/volume-a.deleted', ['volumes/volume-c']),
            ('deleted', 'volumes/volume-b.deleted', []),
            ('clone_snap', 'volumes/volume-%s@volume-d.clone_snap' % vid,
             [])]
        notes = self.notes()
        [(facts, ids)] = self.asked
        self.assertEqual(('volumes', 'volume-%s', 'cinder'),
                         (facts['pool'], facts['name_template'],
                          facts['auth_username']))
        self.assertEqual([vid], ids)  # image volumes only
        name = self.store.record_name
        self.assertEqual([
            '[%s] kept Ceph image volumes/volume-a.deleted: Cinder deleted '
            'this volume and keeps its data while 1 clone(s) depend on it '
            '(volumes/volume-c); it goes with the last (delete or flatten '
            'them)' % name,
            '[%s] kept Ceph image volumes/volume-b.deleted: Cinder deleted '
            'this volume and no clone depends on it any more: Cinder lost '
            'track of it; an admin may remove it (rbd snap unprotect each '
            'snapshot, rbd snap purge, rbd rm)' % name,
            "[%s] kept Ceph image volumes/volume-%s@volume-d.clone_snap: a "
            'snapshot Cinder made to clone this image volume, which no '
            "clone uses any more: while it exists, deleting the image "
            "leaves the volume's data in Ceph (renamed .deleted) for good; "
            'an admin may remove it (rbd snap unprotect, rbd snap rm)'
            % (name, vid)], notes)

    def test_ceph_out_of_reach_is_a_note(self):
        self.store.uploads.records.note_backend(self.store.record_name,
                                                self.RBD)
        self.found = OSError('keyring not found')
        self.assertEqual(['[%s] kept Ceph pool volumes: not looked at: '
                          'keyring not found' % self.store.record_name],
                         self.notes())


class TestCephPool(testtools.TestCase):

    def test_name_template(self):
        self.assertEqual('volume-%s', ceph_pool.name_template(
            'volume-5d1c6f4e-0b7a-4c55-9d56-0f2e9c1b8a11'))
        self.assertIsNone(ceph_pool.name_template('not-a-volume'))
        self.assertIsNone(ceph_pool.name_template(None))

    def test_mon_host(self):
        self.assertEqual('10.0.0.1:6789,[fd00::2]:3300', ceph_pool.mon_host(
            ['10.0.0.1', 'fd00::2'], ['6789', '3300']))

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

"""The fault matrix: the store against a real Cinder that misbehaves.

The ``faults`` backend reaches cinder-api through :mod:`harness.faults`
(found in Keystone's catalog as ``volumev3-faults``), with a 3 s request
timeout. Every cell asserts the outcome (success, or the exact
glance_store error) and that Cinder and this host hold what they held
before: volumes and attachments counted by Cinder itself, loop devices,
RBD images and os-brick's RBD files counted on the host. Each cell logs
one ``fault-matrix`` line, which the session note quotes.
"""

import _thread
import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import time

import ddt
from glance_store import exceptions

from cinder_ext_store import reconcile
from cinder_ext_store.tests.functional import base
from harness import clouds
from harness import faults
from harness import images
from harness import leaks
from harness.stack import service

LOG = logging.getLogger('fault-matrix')
SIZE = 8 * base.MiB + 5


class FaultTestCase(base.FunctionalTestCase):
    backend = 'faults'

    def setUp(self):
        super(FaultTestCase, self).setUp()
        if 'faults' not in self.backends:
            self.fail('the cloud has no fault proxy settings (the local '
                      'stack with Keystone has them)')
        self.proxy = base.fault_proxy(self.cloud)
        self.proxy.clear()
        self.addCleanup(self.proxy.clear)
        # One host: no other host completes an attachment here, so a lost
        # create's attachment is known for one after a short watch (the
        # full 10 s is test_hosts' concern, through glance-api).
        for name in ('faults', 'faults-multiattach'):
            store = self.store(name)
            was = store.tuning
            store.tuning = store.cinder.tuning = was.replace(
                attach_settle=2.0)
            self.addCleanup(setattr, store.cinder, 'tuning', was)
            self.addCleanup(setattr, store, 'tuning', was)
        self.image_id = 'fault-%s' % self.id().rsplit('.', 1)[-1][-40:]

    def upload(self, size=SIZE, declared=None, backend=None):
        src = images.ImageSource(size, seed=3)
        result = self.add(backend or self.backend, src,
                          size if declared is None else declared,
                          image_id=self.image_id)
        return src, result[0]

    def image_volumes(self):
        name = 'image-%s' % self.image_id
        return [v for v in self.inspect.volumes().values()
                if v.name == name and v.id not in self.before['volumes']]

    def assertOneCleanVolume(self, uri):
        """No duplicate: one volume of the image, no attachment left."""
        vols = self.image_volumes()
        self.assertEqual([uri.rsplit('/', 1)[1]], [v.id for v in vols])
        self.assertEqual('available', vols[0].status)
        self.assertEqual([], vols[0].attachments)

    def cell(self, name, outcome):
        leftovers = self.leftovers()
        line = '%-55s | %-42s | leaks=%d' % (
            name, outcome, sum(len(v) for v in leftovers.values()))
        LOG.warning('fault-matrix %s', line)
        leaks.record(self.cloud, 'fault-matrix.txt', line)
        self.assertEqual({}, leftovers)

    def leftovers(self, timeout=90):
        now = self.inspect.wait_until(self.before, timeout)
        return {k: now[k] ^ self.before[k] for k in self.before
                if now[k] != self.before[k]}

    def roundtrip_then_clean(self, name, rule):
        src, uri = self.upload()
        self.assertOneCleanVolume(uri)
        self.assertEqual(src.hexdigest(), self.read_sha256(uri,
                                                           self.backend))
        self.assertGreaterEqual(rule.hits, 1, 'the fault never fired')
        self.delete(uri, self.backend)
        self.cell(name, 'ok after retry')


class _NoImages(object):
    """Glance's database as it answers for images it never registered."""

    reachable = True

    def image(self, image_id):
        return None

    def used_by(self, volume_id):
        return []

    def active_images_of(self, backend):
        return []


REQUESTS = {
    'volume-create': faults.VOLUME_CREATE,
    'volume-get': faults.VOLUME_GET,
    'attachment-create': faults.ATTACHMENT_CREATE,
    'attachment-complete': faults.ATTACHMENT_COMPLETE,
    'attachment-delete': faults.ATTACHMENT_DELETE,
    'volume-action': faults.VOLUME_ACTION,
}


@ddt.ddt
class TestTransient(FaultTestCase):
    """Each call failing once: retried (or recovered), then success."""

    @ddt.data(*sorted(REQUESTS))
    def test_503_once(self, request):
        rule = self.proxy.add(REQUESTS[request], faults.Fault.status(503))
        self.roundtrip_then_clean('%s 503 once' % request, rule)

    @ddt.data('volume-create', 'attachment-create', 'volume-get')
    def test_reset_once(self, request):
        rule = self.proxy.add(REQUESTS[request], faults.Fault.reset())
        self.roundtrip_then_clean('%s reset once' % request, rule)

    @ddt.data('volume-create', 'attachment-create', 'attachment-delete',
              'attachment-complete', 'volume-action')
    def test_answer_lost_once(self, request):
        # Cinder carries the request out; the store never hears of it.
        rule = self.proxy.add(REQUESTS[request], faults.Fault.lost())
        self.roundtrip_then_clean('%s answer lost once' % request, rule)

    @ddt.data('volume-create', 'attachment-create')
    def test_answer_late_once(self, request):
        # Past the store's 3 s timeout: the answer is lost too.
        rule = self.proxy.add(REQUESTS[request], faults.Fault.late(5))
        self.roundtrip_then_clean('%s answer after the timeout' % request,
                                  rule)

    def test_extend_answer_lost_once(self):
        rule = self.proxy.add(faults.VOLUME_ACTION, faults.Fault.lost())
        # Unknown size: the first action is os-extend (1 -> 2 GiB).
        src, uri = self.upload(base.GiB + base.MiB, declared=0)
        self.assertOneCleanVolume(uri)
        self.assertEqual(2, self.image_volumes()[0].size)
        self.assertEqual(1, rule.hits)
        self.assertEqual(src.hexdigest(), self.read_sha256(uri,
                                                           self.backend))
        self.delete(uri, self.backend)
        self.cell('os-extend answer lost once', 'ok after recovery')

    def test_lost_create_beside_another_stores_volume(self):
        # Another backend of the same project and volume type (a second
        # cinder_ext store, the in-tree driver in a multi-store import)
        # writes a volume of the same image at that moment: same name,
        # metadata, size and type. The lost answer's recovery must neither
        # adopt it nor, when the upload then fails, delete it.
        cinder = self.cloud.cinder()  # the store's project
        theirs = cinder.volumes.create(
            1, name='image-%s' % self.image_id,
            volume_type=self.cloud.storage_facts.volume_type,
            metadata={'glance_image_id': self.image_id,
                      'image_size': str(SIZE),
                      'image_owner': self.context.project_id})
        self.addCleanup(self._forget, theirs.id)
        deadline = time.monotonic() + 60
        while cinder.volumes.get(theirs.id).status != 'available':
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        rule = self.proxy.add(faults.VOLUME_CREATE, faults.Fault.lost())
        src = images.ImageSource(SIZE, seed=7)
        self.assertRaises(IOError, self.add,
                          self.backend, images.FailsAfter(src, 3 * base.MiB),
                          SIZE, image_id=self.image_id)
        self.assertEqual(1, rule.hits)
        kept = cinder.volumes.get(theirs.id)
        self.assertEqual('available', kept.status)
        left = [v.id for v in self.image_volumes() if v.status != 'deleting']
        self.assertEqual([theirs.id], left)
        cinder.volumes.delete(theirs.id)
        self.cell('volume-create answer lost, another store\'s volume',
                  'upload fails; theirs kept, ours deleted')

    def test_volume_delete_answer_lost_once(self):
        src, uri = self.upload()
        rule = self.proxy.add(faults.VOLUME_DELETE, faults.Fault.lost())
        self.delete(uri, self.backend)
        self.assertEqual(1, rule.hits)
        self.cell('volume-delete answer lost once', 'ok (delete confirmed)')

    def test_volume_delete_503_once(self):
        src, uri = self.upload()
        rule = self.proxy.add(faults.VOLUME_DELETE, faults.Fault.status(503))
        self.delete(uri, self.backend)
        self.assertEqual(1, rule.hits)
        self.cell('volume-delete 503 once', 'ok after retry')


@ddt.ddt
class TestPersistent(FaultTestCase):
    """Each call failing every time: a clean error, nothing left."""

    @ddt.data(('volume-create', 503), ('volume-create', 500),
              ('attachment-create', 503), ('attachment-complete', 500),
              ('volume-action', 503))
    @ddt.unpack
    def test_always(self, request, code):
        rule = self.proxy.add(REQUESTS[request], faults.Fault.status(code),
                              times=None)
        e = self.assertRaises(exceptions.BackendException, self.upload)
        self.assertIn('HTTP %d' % code, str(e))
        # 1 + cinder_http_retries tries, no more.
        self.assertEqual(4, rule.hits)
        self.proxy.clear()
        self.cell('%s %d always' % (request, code), 'BackendException')

    def test_extend_always(self):
        rule = self.proxy.add(faults.VOLUME_ACTION, faults.Fault.status(503),
                              times=None)
        # Unknown size: os-extend is the first volume action.
        e = self.assertRaises(exceptions.BackendException, self.upload,
                              base.GiB + base.MiB, declared=0)
        self.assertIn('extension to 2 GiB', str(e))
        self.assertEqual(4, rule.hits)
        self.proxy.clear()
        self.cell('os-extend 503 always', 'BackendException')

    def test_volume_get_always(self):
        rule = self.proxy.add(faults.VOLUME_GET, faults.Fault.status(503),
                              times=None)
        e = self.assertRaises(exceptions.BackendException, self.upload)
        self.assertIn('lookup of volume', str(e))
        self.assertGreaterEqual(rule.hits, 4)
        # The cleanup deletes without asking first.
        self.proxy.clear()
        self.cell('volume-get 503 always', 'BackendException')

    def test_volume_delete_always(self):
        src, uri = self.upload()
        rule = self.proxy.add(faults.VOLUME_DELETE, faults.Fault.status(503),
                              times=None)
        self.assertRaises(exceptions.BackendException, self.delete, uri,
                          self.backend)
        self.assertEqual(4, rule.hits)
        self.proxy.clear()
        # The image's volume is intact: the delete can be done again.
        self.assertOneCleanVolume(uri)
        self.assertEqual(src.hexdigest(), self.read_sha256(uri,
                                                           self.backend))
        self.delete(uri, self.backend)
        self.cell('volume-delete 503 always', 'BackendException, image kept')

    def test_attachment_delete_always(self):
        # The detach cannot be recorded: the upload fails, and the store's
        # cleanup cannot delete the volume either while Cinder keeps the
        # attachment. Once Cinder answers again, the orphan is the
        # reconcile command's; here the test removes it as it would.
        rule = self.proxy.add(faults.ATTACHMENT_DELETE,
                              faults.Fault.status(503), times=None)
        e = self.assertRaises(exceptions.BackendException, self.upload)
        self.assertIn('deletion of attachment', str(e))
        self.assertGreaterEqual(rule.hits, 4)
        self.assertIn('left behind', self.log.output)
        self.assertEqual(1, len(self.image_volumes()))
        self.proxy.clear()
        # The live process flagged its upload for reconcile. Without
        # Glance's database (this test process has none) the volume is not
        # judged: only the attachment goes.
        # (Only what concerns this test's volume: the lock path may hold
        # what earlier runs left.)
        volume_id = self.image_volumes()[0].id

        def plan(glance, notes=None):
            return [a for a in reconcile.plan(self.store(self.backend),
                                              glance, 3600, notes=notes)
                    if volume_id in a.target]
        notes = []
        actions = plan(reconcile.GlanceImages(), notes)
        self.assertEqual(['release upload attachment'],
                         [a.what for a in actions])
        self.assertEqual([volume_id], [n.volume_id for n in notes
                                       if n.undecided])
        # With Glance's answer (no image names it: this test registered
        # none), the dead upload's volume goes too.
        actions = plan(_NoImages())
        self.assertEqual(['release upload attachment', 'delete volume'],
                         [a.what for a in actions])
        self.assertEqual(0, reconcile.run(actions, True, lambda line: None))
        self.cell('attachment-delete 503 always',
                  'BackendException; reconcile cleans')

    def test_quota_413_at_create(self):
        self.proxy.add(faults.VOLUME_CREATE, faults.Fault.status(413))
        self.assertRaises(exceptions.StorageFull, self.upload)
        self.cell('volume-create 413', 'StorageFull')

    def test_timeout_every_time(self):
        rule = self.proxy.add(faults.VOLUME_GET, faults.Fault.late(4),
                              times=None)
        started = time.monotonic()
        e = self.assertRaises(exceptions.BackendException, self.upload)
        self.assertIn('timed out', str(e).lower())
        self.assertGreaterEqual(rule.hits, 4)
        # 4 tries of 3 s and the back-off, not the 120 s status timeout.
        self.assertLess(time.monotonic() - started, 60)
        self.proxy.clear()
        self.cell('volume-get slower than the timeout, always',
                  'BackendException')


class TestInterrupted(FaultTestCase):

    def test_keyboard_interrupt_while_waiting_for_available(self):
        # The store sits in a status GET that answers late; SIGINT arrives
        # (Ctrl-C, a worker's graceful stop): KeyboardInterrupt, and the
        # volume it was waiting for is deleted, not leaked.
        # SIGINT's handler runs in the main thread while that GET is held
        # (not after a fixed delay: a timer could fire before the wait or
        # after it); interrupt_main() is what a SIGINT does, minus the
        # kernel's choice of thread.
        # A test run started in the background by a non-interactive shell
        # inherits SIGINT ignored; a glance-api has Python's handler.
        self.addCleanup(signal.signal, signal.SIGINT,
                        signal.signal(signal.SIGINT,
                                      signal.default_int_handler))

        def interrupt():
            _thread.interrupt_main()
            time.sleep(2)
        rule = self.proxy.add(faults.VOLUME_GET, faults.Fault.hook(interrupt))
        self.assertRaises(KeyboardInterrupt, self.upload)
        self.assertEqual(1, rule.hits)
        self.cell('KeyboardInterrupt while waiting for available',
                  'KeyboardInterrupt; volume deleted')


class TestQuota(FaultTestCase):
    """Cinder's real quota, set for the store's project for one test."""

    def setUp(self):
        super(TestQuota, self).setUp()
        admin = clouds.load(clouds.ADMIN_CLOUD).cinder()
        project = self.cloud.session().get_project_id()
        used = sum(v.size for v in self.inspect.cinder.volumes.list())
        admin.quotas.update(project, gigabytes=used + 1)
        self.addCleanup(admin.quotas.delete, project)

    def test_at_create(self):
        e = self.assertRaises(exceptions.StorageFull, self.upload,
                              declared=base.GiB + 1)
        self.assertIn('quota', str(e).lower())
        self.cell('quota exceeded at create', 'StorageFull')

    def test_at_extend(self):
        e = self.assertRaises(exceptions.StorageFull, self.upload,
                              base.GiB + base.MiB, declared=0)
        self.assertIn('quota', str(e).lower())
        self.cell('quota exceeded at extend', 'StorageFull')


class TestFullPool(FaultTestCase):
    """A thick 1 GiB pool the scheduler really finds full (loop-small)."""

    backend = 'small'

    def setUp(self):
        super(TestFullPool, self).setUp()
        if 'small' not in self.backends:
            self.fail('the cloud has no small pool (volume_type_small)')
        self.inspect.wait_pool_free(self.cloud.storage_facts.volume_type_small,
                                    1)

    def test_volume_goes_to_error_while_creating(self):
        # Cinder's scheduler finds no pool with room: its user message
        # (microversion 3.3) is the reason, and Glance answers 413.
        e = self.assertRaises(exceptions.StorageFull, self.upload,
                              declared=base.GiB + 1)
        self.assertIn("(status error)", str(e))
        self.assertIn('Could not find any available weighted backend',
                      str(e))
        self.cell('volume goes to error while creating (no room)',
                  'StorageFull, with Cinder\'s reason')

    def test_full_pool_is_storage_full_not_a_missing_feature(self):
        store = self.store(self.backend)
        e = self.assertRaises(exceptions.StorageFull, self.upload,
                              base.GiB + base.MiB, declared=0)
        self.assertIn('no room in the pool', str(e))
        # The in-use extend was refused for room: online extend stays on.
        self.assertIsNone(store.online_extend.refused)
        self.cell('pool full at in-use extend', 'StorageFull, online kept')


class TestBackendFull(FaultTestCase):
    """A thin pool whose file system fills up (loop-full): ENOSPC."""

    backend = 'full'

    def test_enospc_on_the_device(self):
        if 'full' not in self.backends:
            self.fail('the cloud has no full pool (volume_type_full)')
        e = self.assertRaises(exceptions.StorageFull, self.upload,
                              512 * base.MiB)
        self.assertIn('No space left on device', str(e))
        self.cell('backend full (ENOSPC on the device)', 'StorageFull')


class TestDataPath(FaultTestCase):
    backend = 'online'

    def test_source_raises_mid_stream(self):
        src = images.ImageSource(64 * base.MiB, seed=4,
                                 fail_at=20 * base.MiB)
        self.assertRaises(IOError, self.add, self.backend, src,
                          64 * base.MiB, image_id=self.image_id)
        self.cell('source raises mid-stream', 'IOError passed on')

    def test_consumer_goes_away(self):
        src, uri = self.upload(64 * base.MiB)
        it, length = self.store(self.backend).get(
            self.location(uri, self.backend), context=self.context)
        digest = hashlib.sha256()
        for i, chunk in zip(range(3), it):
            digest.update(chunk)
        it.close()  # what Glance does when its client disconnects
        self.assertEqual(self.before['attachments'],
                         self.inspect.attachments())
        self.delete(uri, self.backend)
        self.cell("reader's consumer goes away", 'attachment released')


class Hooked(object):
    """An image source that calls ``hook()`` once ``at`` bytes are read."""

    def __init__(self, src, at, hook):
        self.src = src
        self.at = at
        self.hook = hook

    def read(self, n):
        data = self.src.read(n)
        if self.hook is not None and self.src.given >= self.at:
            hook, self.hook = self.hook, None
            hook()
        return data


# (OSD full ratios to lower, in this order; Ceph's defaults to restore.)
_RATIOS = (('nearfull', '0.0005', '0.85'), ('backfillfull', '0.0008', '0.9'),
           ('full', '0.001', '0.95'))


def ceph_full(conf, full, timeout=60):
    """Make the stack's Ceph full (``full``) or give it its room back.

    Lowers the OSD full ratios below what the one OSD holds, as if it had
    filled up: Ceph flags the cluster full and every client holds its
    writes. Returns once ``ceph health`` reports it (or stops reporting it).
    """
    ceph = ['ceph', '-c', conf, '--id', 'admin']
    for name, low, default in (_RATIOS if full else reversed(_RATIOS)):
        subprocess.run(ceph + ['osd', 'set-%s-ratio' % name,
                               low if full else default],
                       check=True, capture_output=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(ceph + ['health', '--format', 'json'],
                             capture_output=True, text=True).stdout
        if ('OSD_FULL' in json.loads(out or '{}').get('checks', {})) == full:
            return
        time.sleep(1)
    raise AssertionError('Ceph did not become %s in %ds'
                         % ('full' if full else 'writable again', timeout))


class TestCephFull(FaultTestCase):
    """The Ceph cluster fills up during an upload (RBD only).

    librbd holds writes to a full cluster without an error; the store's
    ``cinder_ext_rbd_op_timeout`` (5 s on the ``faults`` backend) must turn
    that into a failed upload that deletes its volume, not a hung one.
    """

    def test_upload_fails_within_the_limit_and_cleans_up(self):
        conf = self.cloud.facts.ceph_conf
        if self.cloud.storage != 'rbd' or not conf:
            self.fail('needs the stack\'s Ceph (CINDER_EXT_STORAGE=rbd)')
        self.addCleanup(ceph_full, conf, False)  # whatever happens
        filled = []

        def fill():
            ceph_full(conf, True)
            filled.append(time.monotonic())
            # Room again well after the store's limit, so Cinder (whose
            # own RBD calls wait without limit) can delete the volume.
            timer = threading.Timer(15, ceph_full, (conf, False))
            timer.start()
            self.addCleanup(timer.join)

        size = 256 * base.MiB
        src = Hooked(images.ImageSource(size, seed=8), 32 * base.MiB, fill)
        e = self.assertRaises(exceptions.BackendException, self.add,
                              self.backend, src, size,
                              image_id=self.image_id)
        # Without the limit the writes would wait for the room given back
        # at 15 s and the upload succeed; the error is the limit's.
        self.assertTrue(filled, 'the cluster never filled up')
        self.assertIn('Ceph did not complete the request in 5 s', str(e))
        self.assertIn('cinder_ext_rbd_op_timeout', str(e))
        self.cell('Ceph cluster full mid-upload (librbd holds writes)',
                  'BackendException after 5 s')


class TestVolumeService(FaultTestCase):
    """cinder-volume stopped (a crash, a deploy) and started again."""

    # Cinder's API waits up to a minute for the volume service (its RPC
    # timeout): the default backend's 60 s request timeout.
    backend = 'online'

    def setUp(self):
        super(TestVolumeService, self).setUp()
        if not self.cloud.facts.stack_dir:
            self.fail('stopping cinder-volume needs the local stack')
        self.addCleanup(self.stack, 'start', 'cinder-volume')

    def stack(self, *args):
        subprocess.run([os.path.join(service.REPO, 'tools', 'stack')] +
                       list(args), check=True, capture_output=True)

    def restart_later(self, seconds):
        timer = threading.Timer(seconds, self.stack, ('start',
                                                      'cinder-volume'))
        timer.start()
        self.addCleanup(timer.join)

    def test_stopped_mid_upload_and_started_again(self):
        size = 256 * base.MiB + 9
        src = images.ImageSource(size, seed=5)

        def stop():
            self.stack('stop', 'cinder-volume')
            self.restart_later(3)
        uri = self.add(self.backend, Hooked(src, 64 * base.MiB, stop),
                       size, image_id=self.image_id)[0]
        self.assertOneCleanVolume(uri)
        self.assertEqual(src.hexdigest(), self.read_sha256(uri,
                                                           self.backend))
        self.delete(uri, self.backend)
        self.cell('cinder-volume stopped mid-upload, back in 3 s',
                  'ok (detach waited for it)')

    def test_stopped_while_creating_and_started_again(self):
        self.stack('stop', 'cinder-volume')
        self.restart_later(5)
        src, uri = self.upload()
        self.assertOneCleanVolume(uri)
        self.delete(uri, self.backend)
        self.cell('cinder-volume down at create, back in 5 s',
                  'ok (create waited for it)')

    def test_extend_stuck_in_extending(self):
        # The volume service stops as the extend is sent: Cinder keeps the
        # volume 'extending' past the store's status timeout (12 s here:
        # every other step of this upload takes a second or two).
        self.backend = 'faults'
        self.conf.set_override('cinder_state_transition_timeout', 12,
                               group='faults')
        self.addCleanup(self.conf.clear_override,
                        'cinder_state_transition_timeout', group='faults')
        rule = self.proxy.add(faults.VOLUME_ACTION, faults.Fault.hook(
            lambda: self.stack('stop', 'cinder-volume')))
        e = self.assertRaises(exceptions.BackendException, self.upload,
                              base.GiB + base.MiB, declared=0)
        self.assertEqual(1, rule.hits)
        self.assertIn("status still 'extending'", str(e))
        self.stack('start', 'cinder-volume')
        # Cleanup could not finish while the volume service was away;
        # reconcile finishes it.
        store = self.store(self.backend)
        api = store.cinder.api()
        for vol in self.image_volumes():
            api.wait_while(vol.id, ('extending', 'detaching', 'deleting'),
                           'the volume service')
        # (Glance's answer for an image it never registered: see
        # _NoImages; without it reconcile would not judge the volume.)
        actions = reconcile.plan(store, _NoImages(), 3600)
        self.assertEqual(0, reconcile.run(actions, True, lambda line: None))
        self.cell('extend stuck in extending (volume service down)',
                  'BackendException; reconcile cleans the rest')


class TestLeastPrivilege(base.FunctionalTestCase):
    """The store's service user has a production Glance's roles, no admin.

    Keystone: member + service of the service project. Cinder then refuses
    the admin-only calls, and the store's cleanup must do without them.
    (Cinder's real in-use-without-attachments state, which the store frees
    with the legacy detach, is made by TestVolumeService's extend-stuck
    cell; an admin's reset-state cannot make it.)
    """

    backend = 'online'

    def admin(self):
        return clouds.load(clouds.ADMIN_CLOUD).cinder()

    def image_volume(self, api):
        vol = api.create(1, 'image-least-privilege',
                         {'glance_image_id': 'least-privilege'},
                         volume_type=self.store(self.backend).store_conf
                         .cinder_volume_type)
        self.addCleanup(self.forget, vol.id)
        return vol

    def forget(self, volume_id):
        try:
            self.admin().volumes.force_delete(volume_id)
        except Exception:
            pass  # the test deleted it, as it should

    def test_admin_only_calls_are_refused(self):
        api = self.store(self.backend).cinder.api()
        vol = self.image_volume(api)
        e = self.assertRaises(exceptions.Forbidden, api.force_delete, vol.id)
        self.assertIn('force_delete', str(e))
        api.delete_with_attachments(vol.id)
        self.assertNoLeftovers()

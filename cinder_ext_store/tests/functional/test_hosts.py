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

"""Two glance-api hosts on one Cinder.

Host A is the stack's glance-api (this machine's host name); host B is
``glance-api-b``: the same Glance in UTS, PID and mount namespaces of its
own, host name ``glance-b``, a lock path of its own. What one host holds
the other never touches; ``reconcile`` judges only its own host's
processes, in its own PID namespace.
"""

from concurrent import futures
import hashlib
import json
import logging
import os
import signal
import socket
import time

from cinder_ext_store import attachments
from cinder_ext_store import host_records
from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_glance
from harness import faults
from harness import glance
from harness import images
from harness import leaks

LOG = logging.getLogger('two-hosts')
SIZE = 48 * base.MiB + 7


class Download(object):
    """A download that has read its first MiB and waits to go on."""

    def __init__(self, user, image_id):
        self.resp = user.session.get(
            '%s/v2/images/%s/file' % (user.url, image_id), stream=True,
            raise_exc=False)
        self.status = self.resp.status_code
        self.digest = hashlib.sha256()
        self.chunks = self.resp.iter_content(base.MiB)
        if self.status == 200:
            self.digest.update(next(self.chunks))

    def finish(self):
        """(HTTP status, sha256 of everything read)."""
        for chunk in self.chunks:
            self.digest.update(chunk)
        self.resp.close()
        return self.status, self.digest.hexdigest()


class TwoHostsTestCase(test_glance.GlanceTestCase):

    def setUp(self):
        super(TwoHostsTestCase, self).setUp()
        glance_facts = self.cloud.facts.glance
        self.b = glance_facts and glance_facts.second_host
        if self.b is None:
            self.fail('the cloud has no second glance-api host (the local '
                      'stack with Keystone starts glance-api-b)')
        self.user_b = glance.GlanceUser(self.cloud.user(), self.b.url)
        self.host_a = socket.gethostname()
        self.backend_multi = (self.cloud.storage_facts.
                              glance_backend_multiattach or 'multiattach')
        self.reads_a = os.path.join(glance_facts.lock_path,
                                    'cinder_ext_reads')
        self.reads_b = os.path.join(self.b.lock_path, 'cinder_ext_reads')
        self.pool = futures.ThreadPoolExecutor(8)
        self.addCleanup(self.pool.shutdown)

    def download(self, user, image_id):
        """A :class:`Download`, closed when the test ends.

        Before its image is deleted: a download held open would refuse it.
        """
        started = Download(user, image_id)
        self.addCleanup(started.resp.close)
        return started

    def upload(self, name, backend, size=SIZE, seed=51):
        image = self.create(name)
        src = images.ImageSource(size, seed=seed,
                                 digests=('sha256', 'md5', 'sha512'))
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=size, backend=backend)
        return image, src, self.volume_of(image.id).id

    def hosts_attached(self, volume_id):
        """The host names of the volume's attachments, sorted."""
        return sorted(a['host_name'] for a in
                      self.inspect.cinder.volumes.get(volume_id).attachments)

    def share(self, reads, volume_id):
        with open(os.path.join(reads, '%s.json' % volume_id)) as f:
            return json.load(f)

    def reconcile(self, *args, **kw):
        done = self.glance_command('reconcile', *args, **kw)
        where = ('host %s' % kw['host'].hostname if kw.get('host')
                 else 'host A' + (' (another PID namespace)'
                                  if kw.get('pid_namespace') else ''))
        text = '$ cinder-ext-store reconcile %s  # on %s\n%s%s' % (
            ' '.join(args), where, done.stdout, done.stderr[-2000:])
        LOG.warning('%s', text)
        leaks.record(self.cloud, 'two-hosts.txt', text)
        self.assertEqual(0, done.returncode, text)
        return done.stdout


class TestTwoHostsRead(TwoHostsTestCase):

    def test_both_hosts_read_one_image_on_a_multiattach_type(self):
        image, src, volume_id = self.upload('two-hosts', self.backend_multi)
        readers = [self.download(user, image.id)
                   for user in (self.user, self.user, self.user_b,
                                self.user_b)]
        self.assertEqual([200] * 4, [r.status for r in readers])
        # One attachment per host, each for all its readers.
        self.assertEqual(sorted([self.host_a, self.b.hostname]),
                         self.hosts_attached(volume_id))
        for reads in (self.reads_a, self.reads_b):
            # (per worker process of the host)
            self.assertEqual(2, sum(h['count'] for h in self.share(
                reads, volume_id)['readers'].values()))
        done = list(self.pool.map(Download.finish, readers))
        self.assertEqual([(200, src.hexdigest())] * 4, done)
        self.wait_for('both hosts released their attachment',
                      lambda: not self.hosts_attached(volume_id))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_without_multiattach_the_second_host_is_told_why(self):
        image, src, volume_id = self.upload('one-host', self.backend)
        holder = self.download(self.user, image.id)
        started = time.monotonic()
        refused = self.download(self.user_b, image.id)
        waited = time.monotonic() - started
        # 503, try again later, with the reason.
        self.assertEqual(503, refused.status)
        self.assertIn('Use a multiattach volume type', refused.resp.text)
        refused.finish()
        LOG.warning('host B refused after %.1fs: HTTP %d', waited,
                    refused.status)
        with open(self.b.log) as f:
            said = [line for line in f if volume_id in line and
                    'its type is not multiattach' in line]
        self.assertTrue(said, 'host B never named multiattach')
        # Host B keeps nothing; host A still reads, byte-exact.
        self.assertEqual([self.host_a], self.hosts_attached(volume_id))
        self.assertFalse(os.path.exists(
            os.path.join(self.reads_b, '%s.json' % volume_id)))
        self.assertEqual((200, src.hexdigest()), holder.finish())
        self.wait_for('host A released its attachment',
                      lambda: not self.hosts_attached(volume_id))
        self.assertEqual(200, self.user_b.download(image.id)[0])
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()


class TestTwoHostsReconcile(TwoHostsTestCase):

    def kill_reader_on_a(self, image_id, volume_id):
        """A download on host A whose worker is SIGKILLed mid-way."""
        stalled = self.download(self.user, image_id)
        self.assertEqual(200, stalled.status)
        [name] = list(self.share(self.reads_a, volume_id)['readers'])
        pid = host_records.pid_of(name)
        os.kill(pid, signal.SIGKILL)
        stalled.resp.close()
        return pid

    def test_a_dead_reader_is_released_by_its_own_host_only(self):
        image, src, volume_id = self.upload('killed-reader', self.backend)
        pid = self.kill_reader_on_a(image.id, volume_id)
        held = self.inspect.attachments() - self.before['attachments']
        self.assertEqual(1, len(held))

        on_b = self.reconcile('--apply', host=self.b)
        self.assertNotIn(volume_id, on_b)
        self.assertEqual(held, self.inspect.attachments() -
                         self.before['attachments'])

        on_a = self.reconcile('--apply')
        self.assertIn('release read attachment %s of volume %s: no reader '
                      'process of this host is alive (recorded: %s@'
                      % (list(held)[0], volume_id, pid), on_a)
        self.assertEqual(set(), self.inspect.attachments() -
                         self.before['attachments'])
        self.assertEqual(src.hexdigest(),
                         self.download_sha256(image.id))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_an_attachment_no_record_names_is_released_by_its_host(self):
        # A record lost with its lock path: Cinder still says the
        # attachment is host A's. Host B never touches it; host A's
        # reconcile releases it (after the grace period: 0 here).
        image, src, volume_id = self.upload('lost-record', self.backend)
        store = self.store('online')
        lost = attachments.Attachment(store.api(), store.host, volume_id,
                                      'ro')
        lost.open()
        lost.device.close()
        lost.device = None
        self.addCleanup(lost.abort)
        self.assertEqual([self.host_a], self.hosts_attached(volume_id))

        on_b = self.reconcile('--apply', '--older-than', '0', host=self.b)
        self.assertNotIn(lost.attachment_id, on_b)
        on_a = self.reconcile('--apply', '--older-than', '0')
        self.assertIn('done: release unrecorded attachment %s of volume %s'
                      % (lost.attachment_id, volume_id), on_a)
        self.assertEqual([], self.hosts_attached(volume_id))
        lost.abort()  # its host connection; the attachment is gone
        self.assertEqual(src.hexdigest(), self.download_sha256(image.id))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_reconcile_in_another_pid_namespace_touches_nothing(self):
        # An operator runs reconcile from the host while glance-api runs
        # in its container (or a second container shares the lock path):
        # every pid of the records means nothing there.
        image, src, volume_id = self.upload('read-while-reconciled',
                                            self.backend)
        reader = self.download(self.user, image.id)
        self.assertEqual(200, reader.status)
        outside = self.reconcile('--apply', '--older-than', '0',
                                 pid_namespace=True)
        self.assertIn('kept read share of volume %s held by pid'
                      % volume_id, outside)
        self.assertIn('another PID namespace', outside)
        self.assertNotIn('release', outside)
        self.assertNotIn('delete volume', outside)
        self.assertEqual([self.host_a], self.hosts_attached(volume_id))
        self.assertEqual((200, src.hexdigest()), reader.finish())
        self.wait_for('host A released its attachment',
                      lambda: not self.hosts_attached(volume_id))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

    def test_upload_on_one_host_while_the_other_deletes_and_reconciles(self):
        kept, kept_src, kept_volume = self.upload('kept', self.backend,
                                                  seed=52)
        doomed = [self.upload('doomed-%d' % i, self.backend, size=base.MiB,
                              seed=53 + i)[0] for i in range(2)]
        image = self.create('uploading-on-a')
        src = images.ImageSource(512 * base.MiB + 9, seed=55,
                                 digests=('sha256', 'md5', 'sha512'))
        upload = self.pool.submit(self.glance.images.upload, image.id,
                                  images.Unsized(src), backend=self.backend)
        self.wait_for('the upload on host A started', lambda: [
            v for v in self.inspect.volumes().values()
            if v.name == 'image-%s' % image.id], 120, 0.2)
        # Host B reads one image, deletes others, reconciles.
        reader = self.download(self.user_b, kept.id)
        for other in doomed:
            self.user_b.client.images.delete(other.id)
        on_b = self.reconcile('--apply', host=self.b)
        self.assertNotIn('image-%s' % image.id, on_b)
        # A delete on host A while host B reads: 409, nothing lost.
        resp = self.user.session.delete(
            '%s/v2/images/%s' % (self.user.url, kept.id), raise_exc=False)
        self.assertEqual(409, resp.status_code, resp.text)
        self.assertNotIn(kept_volume, resp.text)
        self.assertEqual((200, kept_src.hexdigest()), reader.finish())

        upload.result()
        self.assertImage(image.id, src, src.size, self.backend)
        self.assertEqual(kept_src.hexdigest(),
                         self.download_sha256(kept.id))
        for done in (image, kept):
            self.glance.images.delete(done.id)
        self.assertNoLeftovers()


class TestTwoHostsLostAnswer(TwoHostsTestCase):

    def test_lost_attachment_answer_on_a_while_b_attaches(self):
        # Host A (this process's store, through the fault proxy) loses the
        # answer of its attachment create; while it recovers, host B
        # attaches the same multiattach volume. A's recovery deletes only
        # the attachment it made: B's download goes on.
        if 'faults' not in self.backends:
            self.fail('the cloud has no fault proxy settings (the local '
                      'stack with Keystone has them)')
        proxy = base.fault_proxy(self.cloud)
        proxy.clear()
        self.addCleanup(proxy.clear)
        image, src, volume_id = self.upload('lost-answer', self.backend_multi)
        known = set(self.inspect.attachments())
        on_b = []

        def b_attaches():
            on_b.append(self.pool.submit(self.download, self.user_b,
                                         image.id))
            self.wait_for('host B attached', lambda: len(
                self.inspect.attachments() - known) >= 2, 60, 0.02)

        lost = proxy.add(faults.ATTACHMENT_CREATE, faults.Fault.lost())
        hook = proxy.add(('GET', r'^/attachments/detail'),
                         faults.Fault.hook(b_attaches))
        uri = 'cinder://faults-multiattach/%s' % volume_id
        self.assertEqual(src.hexdigest(),
                         self.read_sha256(uri, 'faults-multiattach'))
        self.assertEqual((1, 1), (lost.hits, hook.hits))
        self.assertEqual((200, src.hexdigest()), on_b[0].result().finish())
        self.wait_for('both hosts released their attachment',
                      lambda: not self.hosts_attached(volume_id))
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()

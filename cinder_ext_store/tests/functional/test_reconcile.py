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

"""glance-api workers killed mid-upload and mid-download, then
``cinder-ext-store reconcile`` run as an operator would: on the glance-api
host, with glance-api's configuration, from glance-api's environment."""

import glob
import json
import logging
import os
import pwd
import signal
import socket
import urllib.parse

from cinder_ext_store import host_records
from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_glance
from harness import images
from harness import leaks

LOG = logging.getLogger('reconcile-crash')


class TestReconcileAfterCrash(test_glance.GlanceTestCase):

    def setUp(self):
        super(TestReconcileAfterCrash, self).setUp()
        self.lock = self.cloud.facts.glance.lock_path
        if not self.lock:
            self.fail('the cloud has no glance_lock_path (the local stack '
                      'with Keystone has it)')
        self.reads = os.path.join(self.lock, 'cinder_ext_reads')

    def reconcile(self, *args):
        done = self.glance_command('reconcile', *args)
        text = ('$ cinder-ext-store --config-dir <glance etc> reconcile '
                '%s\n%s' % (' '.join(args), done.stdout))
        LOG.warning('%s', text)
        leaks.record(self.cloud, 'reconcile-crash.txt', text)
        self.assertEqual(0, done.returncode, done.stdout + done.stderr)
        return done.stdout

    def kill_stalled_reader(self):
        """A download that stalls, then its worker is SIGKILLed."""
        image = self.create('reader')
        size = 64 * base.MiB + 5
        src = images.ImageSource(size, seed=31)
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=size, backend=self.backend)
        volume_id = self.volume_of(image.id).id
        stalled = self.user.session.get(
            '%s/v2/images/%s/file' % (self.user.url, image.id), stream=True)
        next(stalled.iter_content(base.MiB))
        with open(os.path.join(self.reads, '%s.json' % volume_id)) as f:
            readers = list(json.load(f)['readers'])
        self.assertEqual(1, len(readers))
        pid = host_records.pid_of(readers[0])
        os.kill(pid, signal.SIGKILL)
        stalled.close()
        return image, volume_id, readers[0]

    def kill_uploader(self):
        """A chunked upload whose worker is SIGKILLed half-way."""
        image = self.create('crashed-upload')
        url = urllib.parse.urlsplit(self.user.url)
        sock = socket.create_connection((url.hostname, url.port))
        self.addCleanup(sock.close)
        # Markers an earlier run left (its dead workers) are not this one.
        earlier = set(glob.glob(os.path.join(self.reads, '*.upload')))
        sock.sendall((
            'PUT /v2/images/%s/file HTTP/1.1\r\nHost: %s\r\n'
            'X-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n'
            'X-Image-Meta-Store: %s\r\nTransfer-Encoding: chunked\r\n\r\n'
            % (image.id, url.netloc, self.user.session.get_token(),
               self.backend)).encode())
        src = images.ImageSource(base.GiB, seed=32, digests=())
        for _ in range(200):  # 200 MiB of a 1 GiB image, and no more
            chunk = src.read(base.MiB)
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))

        def attached_marker():
            for path in set(glob.glob(os.path.join(
                    self.reads, '*.upload'))) - earlier:
                with open(path) as f:
                    marker = json.load(f)
                if marker.get('attachment_id'):
                    return os.path.basename(path)[:-7], marker
        volume_id, marker = self.wait_for('the upload never attached',
                                          attached_marker)
        os.kill(marker['pid'], signal.SIGKILL)
        return image, volume_id, marker

    def test_killed_workers_then_reconcile(self):
        reader_image, read_volume, reader_pid = self.kill_stalled_reader()
        upload_image, upload_volume, marker = self.kill_uploader()
        # What the dead workers held stays behind.
        held = self.inspect.attachments() - self.before['attachments']
        self.assertEqual(2, len(held))
        self.assertEqual('saving',
                         self.glance.images.get(upload_image.id).status)

        dry = self.reconcile()
        self.assertIn('would release upload attachment %s of volume %s: the '
                      'uploading process %d is gone'
                      % (marker['attachment_id'], upload_volume,
                         marker['pid']), dry)
        self.assertIn('would release read attachment', dry)
        self.assertIn('of volume %s: no reader process of this host is '
                      'alive (recorded: %s)' % (read_volume, reader_pid), dry)
        self.assertIn('would delete volume %s' % upload_volume, dry)
        self.assertIn('its upload died before it finished', dry)
        self.assertNotIn('delete volume %s' % read_volume, dry)
        self.assertIn('nothing changed (dry run)', dry)
        self.assertEqual(held, self.inspect.attachments() -
                         self.before['attachments'])

        # A glance-api that is not root borrowed the uploader's device; the
        # worker died before giving it back.
        device = (marker.get('host_connection') or {}).get('path')
        lent = (isinstance(device, str) and device.startswith('/dev/') and
                self.cloud.facts.glance.user)
        if lent:
            self.assertEqual(pwd.getpwnam(lent).pw_uid,
                             os.stat(device).st_uid)

        applied = self.reconcile('--apply')
        self.assertIn('3 action(s) done, 0 failed', applied)
        if lent:
            self.assertEqual(0, os.stat(device).st_uid,
                             'reconcile gave %s back to root' % device)
        self.assertTrue(self.inspect.wait_gone(upload_volume))
        self.assertEqual(set(), self.inspect.attachments() -
                         self.before['attachments'])
        # The image that was being read is intact and readable.
        self.assertEqual('available',
                         self.inspect.volumes()[read_volume].status)
        self.assertEqual(200, self.user.download(reader_image.id)[0])
        self.assertIn('nothing to clean', self.reconcile('--apply'))

        self.glance.images.delete(reader_image.id)
        self.glance.images.delete(upload_image.id)
        self.assertNoLeftovers()

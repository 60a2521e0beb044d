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

"""No path loses a live image: the cases a review found, on the real stack.

* two images of one project name one volume (a location added through the
  glance-api with ``show_multiple_locations``): deleting one leaves the
  other byte-exact;
* ``reconcile`` while Glance's database cannot be read and an active
  image's volume sits in ``attaching`` (an attachment created and never
  completed): nothing deleted, the run says so and fails;
* a reader killed between its attachment create and the answer: the next
  reader reads, and nothing stays attached.
"""

import glob
import os
import shutil
import signal
import tempfile
import time

from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_glance
from harness import glance
from harness import images

SIZE = 8 * base.MiB + 7


class TestLiveImages(test_glance.GlanceTestCase):

    def upload(self, name, seed):
        image = self.create(name)
        src = images.ImageSource(SIZE, seed=seed)
        self.glance.images.upload(image.id, images.Unsized(src),
                                  image_size=SIZE, backend=self.backend)
        return image, src

    def test_deleting_one_of_two_images_of_a_volume_keeps_it(self):
        url = self.cloud.facts.glance.locations_url
        if not url:
            self.fail('the stack has no glance-api with '
                      'show_multiple_locations (glance_locations_url)')
        first, src = self.upload('first', seed=61)
        volume = self.volume_of(first.id)
        second = self.create('second')
        # The owner registers the first image's volume for a second image
        # of the same project, as show_multiple_locations lets it.
        owner = glance.GlanceUser(self.cloud.user(), url)
        resp = owner.session.patch(
            '%s/v2/images/%s' % (owner.url, second.id),
            json=[{'op': 'add', 'path': '/locations/-',
                   'value': {'url': 'cinder://%s/%s' % (self.backend,
                                                        volume.id),
                             'metadata': {'store': self.backend}}}],
            headers={'Content-Type':
                     'application/openstack-images-v2.1-json-patch'},
            raise_exc=False)
        self.assertEqual(200, resp.status_code, resp.text)
        self.assertEqual('active', self.glance.images.get(second.id).status)

        self.glance.images.delete(first.id)
        self.assertIn(volume.id, self.inspect.volumes())
        self.assertEqual((200, src.hexdigest(), SIZE),
                         self.user.download(second.id))
        # The last image that names it takes it.
        self.glance.images.delete(second.id)
        self.assertTrue(self.inspect.wait_gone(volume.id, 60))
        self.assertNoLeftovers()

    def broken_glance_etc(self):
        """glance-api's configuration with a database nobody answers on."""
        etc = tempfile.mkdtemp(prefix='glance-etc-nodb-')
        self.addCleanup(shutil.rmtree, etc, True)
        for path in glob.glob(os.path.join(
                self.cloud.facts.glance.config_dir, '*.conf')):
            shutil.copy(path, etc)
        # Where glance-api reads overrides: its glance-api.conf.d.
        snippets = os.path.join(etc, 'glance-api.conf.d')
        os.mkdir(snippets)
        with open(os.path.join(snippets, 'zz-no-database.conf'), 'w') as f:
            f.write('[database]\nconnection = postgresql+psycopg2://'
                    'glance:nothing@127.0.0.1:9/glance\n')
        for path in glob.glob(os.path.join(etc, '**', '*.conf'),
                              recursive=True):
            os.chmod(path, 0o644)
        for path in (etc, snippets):
            os.chmod(path, 0o755)
        return etc

    def test_reconcile_without_glance_keeps_an_attaching_volume(self):
        image, src = self.upload('attaching', seed=62)
        volume = self.volume_of(image.id)
        # A reader killed between attachment create and complete: the
        # active image's only volume is 'attaching'.
        cinder = self.cloud.cinder()
        att = cinder.attachments.create(
            volume.id, {'host': 'ghost-reader', 'ip': '127.0.0.9',
                        'initiator': 'iqn.ghost', 'platform': 'x86_64',
                        'os_type': 'linux', 'multipath': False},
            mode='ro')
        self.assertEqual('attaching',
                         self.inspect.volumes()[volume.id].status)

        done = self.glance_command('reconcile', '--apply', '--older-than',
                                   '0', etc=self.broken_glance_etc())
        out = done.stdout + done.stderr
        self.assertEqual(1, done.returncode, out)
        self.assertIn("Glance's database cannot be reached", out)
        self.assertIn('UNDECIDED, kept volume %s' % volume.id, out)
        self.assertNotIn('delete volume', out)
        self.assertIn(volume.id, self.inspect.volumes())

        cinder.attachments.delete(att['id'])
        self.assertEqual((200, src.hexdigest(), SIZE),
                         self.user.download(image.id))
        # With its database, reconcile keeps the volume without a word.
        done = self.glance_command('reconcile', '--older-than', '0')
        self.assertEqual(0, done.returncode, done.stdout + done.stderr)
        self.assertNotIn(volume.id, done.stdout)
        self.glance.images.delete(image.id)
        self.assertNoLeftovers()


class TestReaderKilledWhileAttaching(base.FunctionalTestCase):
    """A reader process dies after Cinder made its attachment.

    Before the answer reached it; store level, in a child process.
    """

    def test_next_reader_releases_what_it_left(self):
        backend = 'online'
        src = images.ImageSource(SIZE, seed=63)
        uri = self.add(backend, src, SIZE, image_id='killed-attaching')[0]
        store = self.store(backend)
        store.shares.records.ensure_dir()  # made by this (parent) process
        api = store.cinder.api()
        pid = os.fork()
        if pid == 0:  # the reader that dies in the attach window
            try:
                real = api.__class__.attachment_create

                def create_then_hang(self_, *args, **kwargs):
                    real(self_, *args, **kwargs)
                    while True:
                        time.sleep(1)

                api.__class__.attachment_create = create_then_hang
                store.get(self.location(uri, backend), context=self.context)
            finally:
                os._exit(1)
        volume_id = uri.rsplit('/', 1)[1]
        cinder = self.cloud.cinder()  # the store's project
        self.wait_for('the reader\'s attachment',
                      lambda: cinder.attachments.list(
                          search_opts={'volume_id': volume_id}), 60, 0.1)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        # Not multiattach: without the dead reader's record its attachment
        # would keep every new reader out.
        self.assertEqual(src.hexdigest(), self.read_sha256(uri, backend))
        self.assertIn('died while attaching', self.log.output)
        self.assertEqual([], cinder.attachments.list(
            search_opts={'volume_id': volume_id}))
        self.delete(uri, backend)
        self.assertNoLeftovers()

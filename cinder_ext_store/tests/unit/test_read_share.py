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

"""The shared read attachment: threads, processes, crashes, refusals."""

from concurrent import futures
import json
import os
import tempfile
import threading

import fixtures
from glance_store import exceptions
from oslo_utils import units

from cinder_ext_store import host_records
from cinder_ext_store import read_share
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes


class ShareTestCase(base.StoreTestCase):

    def setUp(self):
        super(ShareTestCase, self).setUp()
        self.data = base.payload(2 * units.Mi + 5)
        self.uri = self.add(self.data)[0]
        self.vid = self.volume_id(self.uri)
        del self.cloud.calls[:]
        del self.host.calls[:]
        self.state_file = os.path.join(self.store.shares.dir,
                                       '%s.json' % self.vid)

    def reader(self):
        it, length = self.store.get(self.location(self.uri),
                                    context=self.context)
        self.assertEqual(len(self.data), length)
        return it

    def state(self):
        with open(self.state_file) as f:
            return json.load(f)

    def write_state(self, state):
        with open(self.state_file, 'w') as f:
            json.dump(state, f)

    def assertReleased(self):
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        self.assertFalse(os.path.exists(self.state_file))
        self.assertEqual('available', self.cloud.volumes[self.vid]['status'])


class TestSharing(ShareTestCase):

    def test_concurrent_threads_share_one_attachment(self):
        opened = threading.Barrier(8)

        def read():
            it = self.reader()
            opened.wait(5)  # all eight hold the volume at once
            return b''.join(it)

        with futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: read(), range(8)))
        self.assertEqual([self.data] * 8, results)
        self.assertEqual(1, self.cloud.count('attachment_create'))
        self.assertEqual(1, self.host.calls.count('connect'))
        self.assertReleased()

    def test_slow_reader_does_not_block_others(self):
        stalled = self.reader()
        next(stalled)  # a client that stopped reading
        for _ in range(3):
            self.assertEqual(self.data, b''.join(self.reader()))
        self.assertEqual(1, self.cloud.count('attachment_create'))
        self.assertEqual(1, len(self.cloud.attachments))
        stalled.close()
        self.assertReleased()

    def test_released_before_the_last_chunk_of_the_last_reader(self):
        a, b = self.reader(), self.reader()
        b''.join(a)
        self.assertEqual(1, len(self.cloud.attachments))
        chunks = list(b)
        self.assertEqual(self.data, b''.join(chunks))
        self.assertReleased()

    def test_a_lease_is_released_when_its_block_ends(self):
        api = self.store.api()
        for handles in (False, True):  # a shared path, an own RBD handle
            self.host.handles = handles
            try:
                with self.store.shares.acquire(api, self.vid) as lease:
                    self.assertEqual(self.data[:100],
                                     bytes(lease.device.read_at(0, 100)))
                    self.assertEqual(1, len(self.cloud.attachments))
                    raise ValueError('the reader failed')
            except ValueError:
                pass
            self.assertTrue(lease.released)
            lease.release()  # once is enough
            self.assertReleased()

    def test_multiattach_volume_shares_too(self):
        self.cloud.volumes[self.vid]['multiattach'] = True
        readers = [self.reader() for _ in range(3)]
        self.assertEqual(1, self.cloud.count('attachment_create'))
        for it in readers:
            self.assertEqual(self.data, b''.join(it))
        self.assertReleased()

    def test_file_like_handles_are_per_reader(self):
        self.host.handles = True
        a, b = self.reader(), self.reader()
        self.assertEqual(1, self.cloud.count('attachment_create'))
        self.assertEqual(2, self.host.calls.count('connect'))
        self.assertEqual(self.data, b''.join(a))
        self.assertEqual(1, len(self.cloud.attachments))
        self.assertEqual(self.data, b''.join(b))
        self.assertReleased()


class TestProcesses(ShareTestCase):

    def test_another_live_process_keeps_the_attachment(self):
        it = self.reader()
        next(it)
        state = self.state()
        parent = os.getppid()
        state['readers'][str(parent)] = {
            'start': host_records.process_start(parent), 'count': 1}
        self.write_state(state)
        it.close()
        self.assertEqual(1, len(self.cloud.attachments))
        self.assertEqual({str(parent): 1},
                         {p: h['count'] for p, h in
                          self.state()['readers'].items()})
        # The other process leaves: the share goes with it.
        state = self.state()
        state['readers'][str(parent)]['start'] = -1  # pid reused: dead
        self.write_state(state)
        self.store.shares.sweep(self.store.cinder.api())
        self.assertReleased()

    def test_dead_process_reference_is_reclaimed_by_the_next_reader(self):
        it = self.reader()
        next(it)
        state = self.state()
        state['readers']['999999999'] = {'start': 1, 'count': 3}
        self.write_state(state)
        self.assertEqual(self.data, b''.join(self.reader()))
        self.assertIn('reclaiming 3 reference(s) of dead process 999999999',
                      self.log.output)
        self.assertNotIn('999999999', self.state()['readers'])
        it.close()
        self.assertReleased()

    def test_a_reader_of_another_place_is_never_reclaimed(self):
        # A second container on this lock path (its own PID namespace), or
        # a record read from outside glance-api's namespace: its pid means
        # nothing here, alive or not.
        it = self.reader()
        next(it)
        state = self.state()
        other = dict(host_records.identity(), pidns='pid:[1]', start=-1)
        name = host_records.key(other)
        state['readers'][name] = {'start': -1, 'pidns': 'pid:[1]',
                                  'boot': other['boot'],
                                  'host': other['host'], 'count': 2}
        self.write_state(state)
        self.assertEqual(self.data, b''.join(self.reader()))
        it.close()
        api = self.store.cinder.api()
        self.store.shares.sweep(api)
        self.assertEqual(1, len(self.cloud.attachments))
        self.assertEqual({name: 2}, {p: h['count'] for p, h in
                                     self.state()['readers'].items()})
        self.assertEqual([], list(self.store.shares.dead_shares()))
        [(vid, [holder])] = list(self.store.shares.foreign_shares())
        self.assertEqual((self.vid, 'pid:[1]'), (vid, holder['pidns']))
        # A delete on this host is refused: someone may read it.
        self.assertEqual(2, self.store.shares.release_unless_read(
            api, self.vid))

    def test_dead_rbd_readers_connection_file_is_removed(self):
        # A reader killed while it held its own RBD handle leaves os-brick's
        # temporary ceph configuration (with the key): reclaiming the dead
        # reader removes it, and nothing that is not such a file.
        self.host.handles = True
        it = self.reader()
        next(it)
        fd, left = tempfile.mkstemp(prefix='brickrbd_')
        os.close(fd)
        outside = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'brickrbd_keep')
        open(outside, 'w').close()
        link = os.path.join(tempfile.gettempdir(),
                            'brickrbd_link_%d' % os.getpid())
        os.symlink(outside, link)
        self.addCleanup(os.unlink, link)
        state = self.state()
        me = host_records.key(host_records.identity())
        mine = state['readers'][me]['rbd_confs']
        self.assertEqual(1, len(mine))
        state['readers']['999999999'] = {
            'start': 1, 'count': 1,
            'rbd_confs': [left, outside, link, '/etc/passwd']}
        self.write_state(state)
        self.assertEqual(self.data, b''.join(self.reader()))
        self.assertFalse(os.path.exists(left))
        self.assertTrue(os.path.exists(outside))
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.exists('/etc/passwd'))
        it.close()
        self.assertFalse(os.path.exists(mine[0]))
        self.assertReleased()

    def test_share_nobody_holds_is_released_at_the_next_start(self):
        it = self.reader()
        next(it)
        state = self.state()
        state['readers'] = {'999999999': {'start': 1, 'count': 1}}
        self.write_state(state)
        it._lease = None  # its process died without releasing
        it._chunks.close()  # no threads of it stay here
        # A new worker process: its first read sweeps the lock path.
        other = self.add(b'other image', image_id='other')[0]
        store = self.make_store()
        self.assertEqual(b'other image', b''.join(store.get(
            self.location(other), context=self.context)[0]))
        self.assertReleased()

    def test_corrupt_state_file(self):
        it = self.reader()
        next(it)
        with open(self.state_file, 'w') as f:
            f.write('{"readers": ')
        self.store.shares.retries = 1
        e = self.assertRaises(exceptions.RemoteServiceUnavailable,
                              self.reader)
        self.assertIn('multiattach', str(e))
        self.assertIn('is unreadable', self.log.output)
        self.assertEqual(1, len([n for n in os.listdir(self.store.shares.dir)
                                 if '.corrupt-' in n]))


class TestRefusals(ShareTestCase):

    def test_other_host_holds_it_bounded_retry_then_clear_error(self):
        other = self.cloud.attachment_create(
            fakes.api_versions.APIVersion('3.54'), self.vid,
            {'host': 'compute-7'}, 'ro')
        self.cloud.attachment_complete(
            fakes.api_versions.APIVersion('3.54'), other['id'])
        slept = []
        self.store.shares._sleep = slept.append
        self.store.shares.retries = 4
        # Glance answers 503 (try again later) with the message.
        e = self.assertRaises(exceptions.RemoteServiceUnavailable,
                              self.reader)
        self.assertIn('after 4 attempts: it is attached elsewhere', str(e))
        self.assertIn('Use a multiattach volume type', str(e))
        self.assertEqual([1, 2, 4], slept)
        # The other host's attachment, then our four attempts.
        self.assertEqual(5, self.cloud.count('attachment_create'))
        self.assertEqual([other['id']], list(self.cloud.attachments))

    def test_multiattach_being_attached_elsewhere_is_tried_again_soon(self):
        # Another host's attachment is being made (Cinder makes one at a
        # time): tried again after a fifth of a second, not a second.
        v = fakes.api_versions.APIVersion('3.54')
        self.cloud.volumes[self.vid]['multiattach'] = True
        other = self.cloud.attachment_create(v, self.vid, {'host': 'b'}, 'ro')
        slept = []

        def sleep(seconds):
            slept.append(seconds)
            if len(slept) == 2:  # host B connected; it completes
                self.cloud.attachment_complete(v, other['id'])
        self.store.shares._sleep = sleep
        self.assertEqual(self.data, b''.join(self.reader()))
        self.assertEqual([0.2, 0.3], [round(s, 3) for s in slept])
        self.assertEqual([other['id']], list(self.cloud.attachments))

    def test_multiattach_never_free_gives_up_within_the_same_wait(self):
        v = fakes.api_versions.APIVersion('3.54')
        self.cloud.volumes[self.vid]['multiattach'] = True
        self.cloud.attachment_create(v, self.vid, {'host': 'b'}, 'ro')
        slept = []
        self.store.shares._sleep = slept.append
        e = self.assertRaises(exceptions.RemoteServiceUnavailable,
                              self.reader)
        self.assertIn('another attachment of it was being made all along',
                      str(e))
        self.assertLessEqual(sum(slept), 1 + 2 + 4 + 8)
        self.assertGreater(sum(slept), 10)
        self.assertEqual(2.0, max(slept))

    def test_reader_of_a_running_upload_fails_at_once(self):
        self.store.uploads.uploading(self.vid)
        e = self.assertRaises(exceptions.BackendException, self.reader)
        self.assertIn('still being written', str(e))
        self.assertEqual(0, self.cloud.count('attachment_create'))
        self.store.uploads.uploaded(self.vid)
        self.assertEqual(self.data, b''.join(self.reader()))

    def test_reader_of_a_volume_being_deleted_fails_at_once(self):
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertRaises(exceptions.NotFound, self.reader)
        self.assertEqual(0, self.cloud.count('attachment_create'))

    def test_retry_option_is_honoured(self):
        store = self.make_store(self.make_conf(
            cinder_attachment_retry_attempts=7))
        self.assertEqual(7, store.shares.retries)

    def test_state_that_cannot_be_written_releases_the_attachment(self):
        real = read_share.ReadShares._save
        calls = []

        def full_disk(shares, volume_id, state):
            # The share's record, once the attachment exists.
            if state and state['attachment_id']:
                calls.append(state)
                if len(calls) == 1:
                    raise OSError(28, 'No space left on device')
            return real(shares, volume_id, state)

        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.read_share.ReadShares._save', full_disk))
        self.assertRaises(OSError, self.reader)
        self.assertReleased()
        self.assertEqual(self.data, b''.join(self.reader()))


class TestRecords(ShareTestCase):
    """The host's records survive crashes and cannot be forged."""

    def dead_pending_reader(self):
        """A reader killed after Cinder made its attachment.

        Before the answer: its provisional record names the token.
        """
        v = fakes.api_versions.APIVersion('3.54')
        host = self.host.connector_properties()['host']
        self.cloud.attachment_create(v, self.vid, {'host': host}, 'ro')
        self.store.shares.records.save(
            '%s.json' % self.vid,
            {'attachment_id': None,
             'pending': {'before': [], 'host': host},
             'readers': {'999999999': {'start': 1, 'count': 0}}})

    def test_share_is_recorded_before_the_attachment_is_made(self):
        real = self.cloud.attachment_create
        seen = []

        def create(version, volume_id, connector, mode):
            seen.append(self.state())
            return real(version, volume_id, connector, mode)

        self.cloud.attachment_create = create
        self.assertEqual(self.data, b''.join(self.reader()))
        self.assertIsNone(seen[0]['attachment_id'])
        self.assertEqual({'before': [], 'host': self.host.connector_properties(
        )['host']}, seen[0]['pending'])
        self.assertReleased()

    def test_reader_killed_in_the_attach_window(self):
        self.dead_pending_reader()
        # Non-multiattach: the dead reader's attachment blocks every new
        # one until it is found by its token and released.
        self.assertEqual(self.data, b''.join(self.reader()))
        self.assertIn('died while attaching', self.log.output)
        self.assertReleased()

    def test_attach_window_is_swept_and_reconciled(self):
        self.dead_pending_reader()
        self.assertEqual([self.vid], [v for v, _ in
                                      self.store.shares.dead_shares()])
        self.store.shares.sweep(self.store.cinder.api())
        self.assertReleased()

    def test_directory_and_files_are_private(self):
        it = self.reader()
        next(it)
        self.assertEqual(0o700, os.stat(self.store.shares.dir).st_mode
                         & 0o777)
        self.assertEqual(0o600, os.stat(self.state_file).st_mode & 0o777)
        it.close()

    def test_an_open_directory_is_tightened(self):
        os.chmod(self.store.shares.dir, 0o755)  # made by an older store
        store = self.make_store()
        self.assertEqual(self.data, b''.join(store.get(
            self.location(self.uri), context=self.context)[0]))
        self.assertEqual(0o700, os.stat(self.store.shares.dir).st_mode
                         & 0o777)

    def test_a_record_others_may_write_is_refused(self):
        it = self.reader()
        next(it)
        state = self.state()
        state['host_connection']['path'] = '/dev/sda'
        self.write_state(state)
        os.chmod(self.state_file, 0o666)
        e = self.assertRaises(exceptions.BackendException, self.reader)
        self.assertIn('not written by this store', str(e))
        os.chmod(self.state_file, 0o600)
        self.write_state(dict(state, host_connection=dict(
            state['host_connection'], path=self.cloud.path(self.vid))))
        it.close()

    def test_recorded_device_is_checked_before_it_is_opened(self):
        it = self.reader()
        next(it)
        state = self.state()
        other = base.device_file(self)  # another file (device) now
        state['host_connection']['path'] = other
        self.write_state(state)
        e = self.assertRaises(exceptions.BackendException, self.reader)
        self.assertIn('not the device recorded at attach time', str(e))
        it.close()

    def test_connection_secrets_are_not_recorded(self):
        real = self.cloud.attachment_create

        def chap(*args):
            made = real(*args)
            made['connection_info'].update(auth_password='s3cret',
                                           discovery_auth_password='s3cr3t')
            return made

        self.cloud.attachment_create = chap
        it = self.reader()
        next(it)
        with open(self.state_file) as f:
            text = f.read()
        self.assertNotIn('s3cret', text)
        self.assertNotIn('s3cr3t', text)
        self.assertIn('device_path', text)
        it.close()
        self.assertReleased()

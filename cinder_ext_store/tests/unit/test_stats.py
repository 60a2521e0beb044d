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

import io
import time

from glance_store import exceptions
from oslo_utils import units

from cinder_ext_store import stats
from cinder_ext_store.tests.unit import base
from harness import images


class TestTransferStats(base.TestCase):

    def test_log_line_round_trip(self):
        s = stats.TransferStats('add', 'images', image_id='img-1',
                                volume_id='vol-1')
        s.bytes, s.extends, s.attachments = 123456, 2, 3
        s.growth = ['online', 'offline']
        with s.phase('create'):
            time.sleep(0.01)
        with s.phase('copy'):
            pass
        s.finish()
        line = 'INFO cinder_ext_store.store [req-1] %s' % s
        back = stats.TransferStats.parse(line)
        self.assertEqual(('add', 'images', 'img-1', 'vol-1', 123456, 2, 3,
                          ['online', 'offline']),
                         (back.operation, back.store, back.image_id,
                          back.volume_id, back.bytes, back.extends,
                          back.attachments, back.growth))
        self.assertEqual({'create', 'copy'}, set(back.phases))
        self.assertGreaterEqual(back.phases['create'], 0.009)
        self.assertTrue(back.succeeded)
        self.assertAlmostEqual(s.seconds, back.seconds, places=2)

    def test_failure(self):
        s = stats.TransferStats('get', 'images')
        s.finish(exceptions.NotFound(message='volume v is gone'))
        s.finish()  # the first finish counts
        self.assertFalse(s.succeeded)
        back = stats.TransferStats.parse(str(s))
        self.assertIsNone(back.image_id)
        self.assertEqual([], back.growth)
        self.assertEqual({}, back.phases)
        self.assertFalse(back.succeeded)
        self.assertTrue(str(s).endswith(
            ' result=failed bytes=0 seconds=0.000 mib_per_s=0.0 extends=0 '
            'attachments=0 growth=- phases=- error="NotFound: volume v is '
            'gone"'), str(s))
        self.assertEqual('NotFound: volume v is gone', back.error)

    def test_error_field_is_quoted_once_and_cannot_fake_fields(self):
        s = stats.TransferStats('add', 'images', image_id='i')
        s.bytes = 7
        s.aborted = True
        s.finish(OSError('bytes=999 "quoted"\nsecond line'))
        self.assertEqual(1, str(s).count('error='))
        back = stats.TransferStats.parse(str(s))
        self.assertEqual((7, 'aborted', 'OSError: bytes=999 "quoted"'),
                         (back.bytes, back.result, back.error))

    def test_other_lines(self):
        for line in ('Storing image x in a 1 GiB volume',
                     'cinder_ext add without fields'):
            self.assertIsNone(stats.TransferStats.parse(line))


class TestStoreReports(base.StoreTestCase):

    def test_every_add_and_get_is_reported_once(self):
        seen = []
        self.store.add_observer(seen.append)
        data = base.payload(300000)
        uri = self.add(data)[0]
        self.assertEqual(data, self.read_all(uri))
        added, read = seen
        self.assertEqual(('add', len(data), 0, 1, self.volume_id(uri)),
                         (added.operation, added.bytes, added.extends,
                          added.attachments, added.volume_id))
        self.assertEqual(set(), {'create', 'attach', 'copy', 'detach',
                                 'finalize'} - set(added.phases))
        self.assertEqual(('get', len(data), 1, '9f1c7b0e-image'),
                         (read.operation, read.bytes, read.attachments,
                          read.image_id))
        self.assertTrue(read.succeeded)
        self.assertEqual(2, self.log.output.count('cinder_ext '))

    def test_an_upload_its_data_stream_stopped_is_aborted_not_failed(self):
        # A client that went away, an import whose liveness check failed,
        # Glance's size cap: raised by read(). The exception is Glance's
        # own, unchanged; the store says why at INFO, not ERROR.
        seen = []
        self.store.add_observer(seen.append)
        data = base.payload(2 * units.Mi)
        src = images.FailsAfter(io.BytesIO(data), units.Mi)
        e = self.assertRaises(IOError, self.add, data, source=src)
        self.assertEqual('client disconnected', str(e))
        [added] = seen
        self.assertEqual('aborted', added.result)
        self.assertIn('stopped by its data stream (OSError: client '
                      'disconnected); deleting the volume', self.log.output)
        self.assertNotIn('failed; deleting the volume', self.log.output)
        self.assertIn('result=aborted', self.log.output)
        self.assertNothingLeft()

    def test_glance_stopping_an_upload_passes_its_exception_through(self):
        # Glance raises its own errors from inside the data stream: an
        # import task's liveness check (TaskAbortedError), its size cap
        # (ImageSizeLimitExceeded). The very exception reaches Glance, the
        # volume is gone, the log says aborted, at INFO.
        class ImageSizeLimitExceeded(Exception):
            pass  # Glance's, as glance.common.exception defines it
        stop = ImageSizeLimitExceeded('The provided image is too large.')
        data = base.payload(2 * units.Mi)
        src = images.FailsAfter(io.BytesIO(data), units.Mi, error=stop)
        e = self.assertRaises(ImageSizeLimitExceeded, self.add, data,
                              source=src)
        self.assertIs(stop, e)
        self.assertIn('result=aborted', self.log.output)
        self.assertIn('stopped by its data stream (ImageSizeLimitExceeded: '
                      'The provided image is too large.)', self.log.output)
        self.assertNotIn('failed; deleting the volume', self.log.output)
        self.assertNothingLeft()

    def test_a_store_failure_is_failed(self):
        seen = []
        self.store.add_observer(seen.append)
        self.cloud.fail('attachment_create', RuntimeError('cinder broke'))
        self.assertRaises(RuntimeError, self.add, b'x' * 1000)
        self.assertEqual(['failed'], [s.result for s in seen])
        self.assertIn('failed; deleting the volume', self.log.output)
        self.assertIn('error="RuntimeError: cinder broke"', self.log.output)

    def test_failures_are_reported_and_observers_cannot_break_the_store(self):
        seen = []

        def broken(_stats):
            raise RuntimeError('observer bug')
        self.store.add_observer(broken)
        self.store.add_observer(seen.append)
        self.cloud.fail('attachment_create', RuntimeError('cinder broke'))
        self.assertRaises(RuntimeError, self.add, b'x' * 1000)
        uri = self.add(b'y' * 1000)[0]
        it, _ = self.store.get(self.location(uri), context=self.context)
        it.close()  # a client that went away
        self.assertEqual([False, True, False],
                         [s.succeeded for s in seen])
        self.assertIn('observer bug', self.log.output)
        self.store.remove_observer(seen.append)
        self.add(b'z' * 10)
        self.assertEqual(3, len(seen))

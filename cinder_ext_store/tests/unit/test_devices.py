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

import errno
import io
import mmap
import os
from unittest import mock

import ddt
import fixtures
from glance_store import exceptions

from cinder_ext_store import devices
from cinder_ext_store.tests.unit import base


@ddt.ddt
class TestDevices(base.TestCase):

    def setUp(self):
        super(TestDevices, self).setUp()
        self.path = base.device_file(self)

    def test_open_never_truncates(self):
        dev = devices.open_device(self.path, True, 'v')
        self.assertEqual(1 << 20, dev.size())
        dev.write_at(0, b'new')
        dev.sync()
        dev.close()
        dev.close()  # idempotent
        with open(self.path, 'rb') as f:
            self.assertEqual(b'new-bytes-kept', f.read(14))
        self.assertEqual(1 << 20, os.path.getsize(self.path))

    def test_read_only(self):
        dev = devices.open_device(self.path, False, 'v')
        self.assertEqual(b'old', dev.read_at(0, 3))
        e = self.assertRaises(exceptions.BackendException, dev.write_at, 0,
                              b'x')
        self.assertIn('writing to volume v', str(e))
        dev.close()

    def test_missing_device(self):
        self.assertRaises(exceptions.BackendException, devices.open_device,
                          self.path + '-gone', True, 'v')

    @ddt.data((errno.ENOSPC, exceptions.StorageFull),
              (errno.EDQUOT, exceptions.StorageFull),
              (errno.EPERM, exceptions.StorageWriteDenied),
              (errno.EIO, exceptions.BackendException))
    @ddt.unpack
    def test_os_error(self, err, cls):
        e = devices.os_error(OSError(err, 'x'), 'writing to', 'vol-9')
        self.assertIsInstance(e, cls)
        self.assertIn('vol-9', str(e))


class TestDirectIO(base.TestCase):

    def setUp(self):
        super(TestDirectIO, self).setUp()
        self.log = self.useFixture(fixtures.FakeLogger())
        self.path = base.device_file(self, head=b'')

    def write(self, dev):
        buf = mmap.mmap(-1, 8192)  # page-aligned memory
        buf[:] = b'a' * 8192
        dev.write_at(4096, buf, aligned=True)
        dev.write_at(12288, b'tail', aligned=True)  # not whole blocks
        dev.sync()
        dev.close()
        with open(self.path, 'rb') as f:
            f.seek(4096)
            self.assertEqual(b'a' * 8192 + b'tail', f.read(8196))

    def test_direct_writes(self):
        dev = devices.open_device(self.path, True, 'v', direct=True)
        self.assertIsNotNone(dev.direct_fd)
        self.write(dev)

    def test_refused_direct_falls_back(self):
        real_open = os.open

        def no_direct(path, flags, *args):
            if flags & os.O_DIRECT:
                raise OSError(errno.EINVAL, 'Invalid argument')
            return real_open(path, flags, *args)

        self.useFixture(fixtures.MonkeyPatch('os.open', no_direct))
        dev = devices.open_device(self.path, True, 'v', direct=True)
        self.assertIsNone(dev.direct_fd)
        self.assertIn('O_DIRECT refused', self.log.output)
        self.write(dev)


class TestContract(base.TestCase):

    def test_incomplete_device_cannot_be_made(self):
        class NoSync(devices.Device):
            def _measure(self):
                return 0

            def write_at(self, offset, data, aligned=False):
                pass

            def read_at(self, offset, length):
                return b''

            def close(self):
                pass

        self.assertRaises(TypeError, NoSync, 'v')

    def test_kinds(self):
        handle = io.BytesIO(b'abc')
        dev = devices.open_device(handle, True, 'v')
        self.assertIsInstance(dev, devices.HandleDevice)
        self.assertEqual(b'bc', dev.read_at(1, 5))
        self.assertEqual(3, dev.size())


class FakeCompletion(object):
    def __init__(self, value):
        self.value = value

    def get_return_value(self):
        return self.value


class FakeRbdImage(object):
    """librbd's Image as the store uses it: aio_write completes later."""

    def __init__(self, size):
        self.data = bytearray(size)
        self.pending = []
        self.fail_at = {}  # offset -> negative errno
        self.flushes = 0
        self.most_in_flight = 0

    def size(self):
        return len(self.data)

    def aio_write(self, data, offset, oncomplete):
        if offset + len(data) > len(self.data):
            raise ValueError('InvalidArgument: write past the end')
        self.pending.append((data, offset, oncomplete))
        self.most_in_flight = max(self.most_in_flight, len(self.pending))
        if len(self.pending) >= 3:
            self.complete(1)

    def complete(self, n=None):
        """Finish the ``n`` oldest writes (all by default)."""
        done, self.pending = (self.pending[:n], self.pending[n:]) \
            if n else (self.pending, [])
        for data, offset, oncomplete in done:
            result = self.fail_at.get(offset, 0)
            if not result:
                self.data[offset:offset + len(data)] = data
            oncomplete(FakeCompletion(result))

    def flush(self):
        self.flushes += 1
        self.complete()

    def read(self, offset, length):
        return bytes(self.data[offset:offset + length])


class TestRbdDevice(base.TestCase):

    def device(self, image, in_flight=4):
        dev = devices.RbdDevice(image, 'vol', in_flight=in_flight)
        # Writes complete when the device waits for them (here: at once).
        real_acquire = dev._slots.acquire

        def acquire(*a, **kw):
            while not real_acquire(blocking=False):
                image.complete(1)
            return True
        dev._slots.acquire = acquire
        self.addCleanup(setattr, dev._slots, 'acquire', real_acquire)
        return dev

    def test_writes_stay_in_flight_and_sync_waits_for_all(self):
        image = FakeRbdImage(64)
        dev = self.device(image)
        for i in range(8):
            dev.write_at(i * 8, bytes([i + 1]) * 8)
        self.assertGreater(image.most_in_flight, 1)
        self.assertLessEqual(image.most_in_flight, 4)
        dev.sync()
        self.assertEqual([], image.pending)
        self.assertEqual(1, image.flushes)
        self.assertEqual(b''.join(bytes([i + 1]) * 8 for i in range(8)),
                         bytes(image.data))

    def test_failed_write_is_raised_by_sync(self):
        image = FakeRbdImage(64)
        image.fail_at[8] = -errno.ENOSPC
        dev = self.device(image)
        dev.write_at(0, b'a' * 8)
        dev.write_at(8, b'b' * 8)
        self.assertRaises(exceptions.StorageFull, dev.sync)
        self.assertEqual(0, image.flushes)

    def test_failed_write_is_raised_by_the_next_write(self):
        image = FakeRbdImage(64)
        image.fail_at[0] = -errno.EIO
        dev = self.device(image)
        dev.write_at(0, b'a' * 8)
        image.complete()
        self.assertRaises(exceptions.BackendException, dev.write_at, 8,
                          b'b' * 8)

    def test_write_refused_at_submission_frees_its_slot(self):
        image = FakeRbdImage(16)
        dev = self.device(image, in_flight=1)
        self.assertRaises(exceptions.BackendException, dev.write_at, 12,
                          b'x' * 8)
        dev.write_at(0, b'y' * 8)
        dev.sync()
        self.assertEqual(b'y' * 8, bytes(image.data[:8]))

    def test_reads_are_positional_and_stop_at_the_end(self):
        image = FakeRbdImage(10)
        image.data[:] = b'0123456789'
        dev = self.device(image)
        # Reads go as deep as the writes.
        self.assertEqual(4, dev.read_ahead)
        self.assertEqual(8, devices.RbdDevice(image, 'v').read_ahead)
        self.assertEqual(b'345', dev.read_at(3, 3))
        self.assertEqual(b'89', dev.read_at(8, 5))
        self.assertEqual(b'', dev.read_at(10, 5))

    def test_close_waits_for_writes_in_flight(self):
        image = FakeRbdImage(64)
        dev = self.device(image)
        dev.write_at(0, b'a' * 8)
        self.assertEqual(1, len(image.pending))
        dev.close()
        self.assertEqual([], image.pending)

    def test_from_handle(self):
        image = FakeRbdImage(8)

        class Volume(object):  # os-brick's RBDVolume proxies its image
            def __init__(self, image):
                self.image = image

        class Wrapper(object):  # RBDVolumeIOWrapper
            rbd_image = Volume(image)
        dev = devices.open_device(Wrapper(), True, 'vol')
        self.assertIsInstance(dev, devices.RbdDevice)
        self.assertIs(image, dev.image)
        # A file-like handle without a librbd image behind it.
        dev = devices.open_device(io.BytesIO(b'x'), True, 'vol')
        self.assertIsInstance(dev, devices.HandleDevice)

    def wrapper(self, image, cluster):
        class Client(object):  # os-brick's RBDClient: .client is the Rados
            client = cluster

        class Volume(object):
            def __init__(self):
                self.image = image
                self.client = Client()

        class Wrapper(object):
            rbd_image = Volume()
        return Wrapper()

    def test_waits_are_limited_on_the_attachments_connection(self):
        cluster = mock.Mock()
        dev = devices.open_device(self.wrapper(FakeRbdImage(8), cluster),
                                  True, 'vol', rbd_op_timeout=7)
        cluster.conf_set.assert_called_once_with('rados_osd_op_timeout', '7')
        self.assertEqual(7, dev.op_timeout)
        # 0: librbd's own behaviour, nothing set.
        cluster = mock.Mock()
        dev = devices.open_device(self.wrapper(FakeRbdImage(8), cluster),
                                  True, 'vol', rbd_op_timeout=0)
        self.assertFalse(cluster.conf_set.called)
        self.assertEqual(0, dev.op_timeout)

    def test_a_connection_that_refuses_the_limit_still_works(self):
        cluster = mock.Mock()
        cluster.conf_set.side_effect = ValueError('no such option')
        image = FakeRbdImage(8)
        with self.assertLogs(devices.LOG, 'WARNING') as logs:
            dev = devices.open_device(self.wrapper(image, cluster), True,
                                      'vol', rbd_op_timeout=7)
        self.assertIn('Cannot limit Ceph waits for volume vol',
                      logs.output[0])
        self.assertEqual(0, dev.op_timeout)
        dev.write_at(0, b'z' * 8)
        image.complete()
        dev.sync()
        self.assertEqual(b'z' * 8, bytes(image.data))

    def test_a_write_ceph_never_completed_names_the_timeout(self):
        image = FakeRbdImage(64)
        dev = devices.open_device(self.wrapper(image, mock.Mock()), True,
                                  'vol', rbd_op_timeout=5)
        image.fail_at[8] = -errno.ETIMEDOUT  # librbd's answer at the limit
        dev.write_at(0, b'a' * 8)
        dev.write_at(8, b'b' * 8)
        image.complete()
        e = self.assertRaises(exceptions.BackendException, dev.sync)
        self.assertNotIsInstance(e, exceptions.StorageFull)
        for text in ('writing to volume vol failed',
                     'Ceph did not complete the request in 5 s',
                     'cinder_ext_rbd_op_timeout', 'ceph health detail'):
            self.assertIn(text, str(e))

    def test_a_read_ceph_never_answered_names_the_timeout(self):
        class Timeout(Exception):  # rbd.Timeout: an rbd.OSError, errno 110
            errno = errno.ETIMEDOUT
        image = FakeRbdImage(64)
        image.read = mock.Mock(side_effect=Timeout('RBD operation timeout'))
        dev = devices.open_device(self.wrapper(image, mock.Mock()), False,
                                  'vol', rbd_op_timeout=5)
        e = self.assertRaises(exceptions.BackendException, dev.read_at, 0, 8)
        self.assertIn('reading volume vol failed: Ceph did not complete the '
                      'request in 5 s', str(e))
        # Other librbd errors keep their own text.
        image.read.side_effect = ValueError('InvalidArgument')
        e = self.assertRaises(exceptions.BackendException, dev.read_at, 0, 8)
        self.assertEqual('reading volume vol failed: InvalidArgument', str(e))

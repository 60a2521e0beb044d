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
import hashlib
import io
import mmap
import os

import ddt
import fixtures
from glance_store import exceptions
import testtools

from cinder_ext_store import datapath
from cinder_ext_store.tests.unit import base


class Target(object):
    def __init__(self, device):
        self.device = device

    def ensure_capacity(self, end):
        pass


@ddt.ddt
class TestDevices(testtools.TestCase):

    def setUp(self):
        super(TestDevices, self).setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'dev')
        with open(self.path, 'wb') as f:
            f.write(b'old-bytes-kept')
            f.truncate(1 << 20)

    def test_open_never_truncates(self):
        dev = datapath.open_device(self.path, True, 'v')
        self.assertEqual(1 << 20, dev.size())
        dev.write_at(0, b'new')
        dev.sync()
        dev.close()
        dev.close()  # idempotent
        with open(self.path, 'rb') as f:
            self.assertEqual(b'new-bytes-kept', f.read(14))
        self.assertEqual(1 << 20, os.path.getsize(self.path))

    def test_read_only(self):
        dev = datapath.open_device(self.path, False, 'v')
        self.assertEqual(b'old', dev.read_at(0, 3))
        e = self.assertRaises(exceptions.BackendException, dev.write_at, 0,
                              b'x')
        self.assertIn('writing to volume v', str(e))
        dev.close()

    def test_missing_device(self):
        self.assertRaises(exceptions.BackendException, datapath.open_device,
                          self.path + '-gone', True, 'v')

    @ddt.data((errno.ENOSPC, exceptions.StorageFull),
              (errno.EDQUOT, exceptions.StorageFull),
              (errno.EPERM, exceptions.StorageWriteDenied),
              (errno.EIO, exceptions.BackendException))
    @ddt.unpack
    def test_os_error(self, err, cls):
        e = datapath.os_error(OSError(err, 'x'), 'writing to', 'vol-9')
        self.assertIsInstance(e, cls)
        self.assertIn('vol-9', str(e))

    def test_read_range_short_device(self):
        dev = datapath.open_device(self.path, False, 'v')
        chunks = datapath.read_range(dev, (1 << 20) - 10, 20, 8)
        self.assertEqual(8, len(next(chunks)))
        self.assertEqual(2, len(next(chunks)))
        e = self.assertRaises(exceptions.BackendException, next, chunks)
        self.assertIn('ended at byte %d' % (1 << 20), str(e))
        dev.close()


class TestCopy(testtools.TestCase):

    def test_hashes_and_offsets(self):
        data = base.payload(1000003)
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'd')
        with open(path, 'wb') as f:
            f.truncate(2 << 20)
        dev = datapath.open_device(path, True, 'v')
        hashes = datapath.Hashes('sha256')
        self.addCleanup(hashes.close)
        n = datapath.copy_image(io.BytesIO(data), Target(dev), 0, hashes,
                                4096)
        dev.close()
        self.assertEqual(len(data), n)
        self.assertEqual((hashlib.md5(data).hexdigest(),
                          hashlib.sha256(data).hexdigest()),
                         hashes.hexdigests())
        with open(path, 'rb') as f:
            self.assertEqual(data, f.read(len(data)))

    def test_hash_failure_surfaces(self):
        hashes = datapath.Hashes('sha256')
        self.addCleanup(hashes.close)
        hashes.submit('not bytes')
        self.assertRaises(TypeError, hashes.wait)


class TestDirectIO(testtools.TestCase):

    def setUp(self):
        super(TestDirectIO, self).setUp()
        self.log = self.useFixture(fixtures.FakeLogger())
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'dev')
        with open(self.path, 'wb') as f:
            f.truncate(1 << 20)

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
        dev = datapath.open_device(self.path, True, 'v', direct=True)
        self.assertIsNotNone(dev.direct_fd)
        self.write(dev)

    def test_refused_direct_falls_back(self):
        real_open = os.open

        def no_direct(path, flags, *args):
            if flags & os.O_DIRECT:
                raise OSError(errno.EINVAL, 'Invalid argument')
            return real_open(path, flags, *args)

        self.useFixture(fixtures.MonkeyPatch('os.open', no_direct))
        dev = datapath.open_device(self.path, True, 'v', direct=True)
        self.assertIsNone(dev.direct_fd)
        self.assertIn('O_DIRECT refused', self.log.output)
        self.write(dev)


class FailingDevice(object):
    def __init__(self, fail_at):
        self.fail_at = fail_at

    def size(self):
        return 1 << 40

    def write_at(self, offset, data, aligned=False):
        if offset >= self.fail_at:
            raise exceptions.StorageFull()


class TestPipelineErrors(testtools.TestCase):

    def test_first_error_stops_reading(self):
        size = 64 * datapath.BUFFER_SIZE
        src = io.BytesIO(base.payload(size))
        target = Target(FailingDevice(fail_at=3 * datapath.BUFFER_SIZE))
        hashes = datapath.Hashes('sha256')
        self.addCleanup(hashes.close)
        self.assertRaises(exceptions.StorageFull, datapath.copy_image, src,
                          target, 0, hashes, 65536)
        # Bounded: at most the two buffers in flight beyond the failure.
        self.assertLessEqual(src.tell(), 6 * datapath.BUFFER_SIZE)


class TestFlatMemory(testtools.TestCase):

    def test_hashes_keep_no_finished_jobs(self):
        hashes = datapath.Hashes('sha256')
        self.addCleanup(hashes.close)
        for _ in range(1000):
            # As the pipeline does: a buffer's jobs end before it is reused.
            datapath.wait_all(hashes.submit(b'x' * 4096))
        self.assertLessEqual(len(hashes._pending), 66)
        self.assertEqual(hashlib.sha256(b'x' * 4096000).hexdigest(),
                         hashes.hexdigests()[1])

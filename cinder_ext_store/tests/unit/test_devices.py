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

import ddt
import fixtures
from glance_store import exceptions
import testtools

from cinder_ext_store import devices
from cinder_ext_store.tests.unit import base


@ddt.ddt
class TestDevices(testtools.TestCase):

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


class TestDirectIO(testtools.TestCase):

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


class TestContract(testtools.TestCase):

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

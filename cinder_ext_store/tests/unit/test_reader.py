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

from glance_store import exceptions
import testtools

from cinder_ext_store import devices
from cinder_ext_store import reader
from cinder_ext_store.tests.unit import base


class TestReadRange(testtools.TestCase):

    def setUp(self):
        super(TestReadRange, self).setUp()
        self.path = base.device_file(self)

    def test_read_range_short_device(self):
        dev = devices.open_device(self.path, False, 'v')
        chunks = reader.read_range(dev, (1 << 20) - 10, 20, 8)
        self.assertEqual(8, len(next(chunks)))
        self.assertEqual(2, len(next(chunks)))
        e = self.assertRaises(exceptions.BackendException, next, chunks)
        self.assertIn('ended at byte %d' % (1 << 20), str(e))
        dev.close()

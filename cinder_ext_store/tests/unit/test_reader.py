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

import threading
import time

import fixtures
from glance_store import exceptions

from cinder_ext_store import devices
from cinder_ext_store import reader
from cinder_ext_store.tests.unit import base


class TestReadRange(base.TestCase):

    def setUp(self):
        super(TestReadRange, self).setUp()
        self.path = base.device_file(self)

    def test_read_range_short_device(self):
        dev = devices.open_device(self.path, False, 'v')
        for ahead in (0, 2):
            chunks = reader.read_range(dev, (1 << 20) - 10, 20, 8,
                                       ahead=ahead)
            self.assertEqual(8, len(next(chunks)))
            # The short chunk is not handed out: the error comes instead.
            e = self.assertRaises(exceptions.BackendException, next, chunks)
            self.assertIn('ended at byte %d' % (1 << 20), str(e))
        dev.close()

    def test_read_ahead_keeps_order_and_bounds(self):
        with open(self.path, 'r+b') as f:
            f.write(bytes(range(256)) * 4096)
        for direct in (False, True):
            dev = devices.open_device(self.path, False, 'v', direct=direct)
            self.assertEqual(direct, dev.direct_fd is not None)
            for offset, length, chunk in ((0, 1 << 20, 4096),
                                          (4095, 70001, 9999), (1, 1, 7)):
                got = b''.join(reader.read_range(dev, offset, length, chunk,
                                                 ahead=3))
                with open(self.path, 'rb') as f:
                    f.seek(offset)
                    self.assertEqual(f.read(length), got)
            dev.close()

    def test_read_ahead_depth_is_the_devices(self):
        dev = devices.open_device(self.path, False, 'v')
        read_at, gate, readers = dev.read_at, threading.Event(), set()

        def held_read(offset, length):  # every read waits for the gate
            readers.add(threading.current_thread())
            gate.wait(10)
            return read_at(offset, length)
        dev.read_at = held_read
        # No read-ahead: the consumer's own thread reads.
        dev.read_ahead = 0
        gate.set()
        chunks = reader.read_range(dev, 0, 1 << 20, 4096)
        next(chunks)
        chunks.close()
        self.assertEqual({threading.current_thread()}, readers)
        # Depth 3: three reads in flight at once, each in a worker thread,
        # and no fourth while they are held.
        dev.read_ahead = 3
        gate.clear()
        readers.clear()
        chunks = reader.read_range(dev, 0, 1 << 20, 4096)
        consumer = threading.Thread(target=next, args=(chunks,))
        consumer.start()
        for _ in range(500):
            if len(readers) >= 3:
                break
            time.sleep(0.01)
        time.sleep(0.05)
        self.assertEqual(3, len(readers))
        gate.set()
        consumer.join(10)
        chunks.close()
        self.assertEqual(3, len(readers))
        self.assertTrue(all(t.name.startswith('cinder-ext-read')
                            for t in readers))
        dev.close()

    def test_early_close_stops_the_read_ahead(self):
        dev = devices.open_device(self.path, False, 'v')
        before = set(threading.enumerate())
        chunks = reader.read_range(dev, 0, 1 << 20, 4096, ahead=2)
        next(chunks)
        self.assertTrue(set(threading.enumerate()) - before)
        chunks.close()
        self.assertEqual(set(), set(threading.enumerate()) - before)
        dev.close()


class TestOrphans(base.TestCase):

    class Dropped(object):
        def __init__(self, error=None):
            self.error = error
            self.closed = 0

        def close(self):
            self.closed += 1
            if self.error:
                raise self.error

    def test_one_failed_close_does_not_keep_the_others(self):
        log = self.useFixture(fixtures.FakeLogger())
        orphans = reader.Orphans()
        first, second = self.Dropped(OSError('gone')), self.Dropped()
        orphans.put(first)
        orphans.put(second)
        self.assertEqual(2, orphans.close_all())
        self.assertEqual((1, 1), (first.closed, second.closed))
        self.assertIn('Could not release', log.output)
        self.assertEqual(0, orphans.close_all())

    def threads(self):
        return [t for t in threading.enumerate()
                if t.name == 'cinder-ext-orphans']

    def test_one_thread_per_process(self):
        before = len(self.threads())
        orphans = reader.Orphans(interval=0.01)
        orphans.watch()
        orphans.watch()
        self.assertEqual(before + 1, len(self.threads()))
        dropped = self.Dropped()
        orphans.put(dropped)
        deadline = time.monotonic() + 10
        while not dropped.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(1, dropped.closed)

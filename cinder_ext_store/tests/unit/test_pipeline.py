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

from concurrent import futures
import hashlib
import io
import os
import threading

import fixtures
from glance_store import exceptions

from cinder_ext_store import devices
from cinder_ext_store import hashing
from cinder_ext_store import pipeline
from cinder_ext_store.tests.unit import base
from cinder_ext_store import tuning


class Target(object):
    def __init__(self, device):
        self.device = device

    def ensure_capacity(self, end):
        pass


class TestCopy(base.TestCase):

    def test_hashes_and_offsets(self):
        data = base.payload(1000003)
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'd')
        with open(path, 'wb') as f:
            f.truncate(2 << 20)
        dev = devices.open_device(path, True, 'v')
        hashes = hashing.ImageHashes('sha256')
        self.addCleanup(hashes.close)
        copy = pipeline.CopyPipeline(Target(dev), hashes, 4096)
        n = copy.run(io.BytesIO(data))
        dev.close()
        self.assertEqual(len(data), n)
        self.assertEqual(0, copy.coordinator.in_flight)
        self.assertEqual((hashlib.md5(data).hexdigest(),
                          hashlib.sha256(data).hexdigest()),
                         hashes.hexdigests())
        with open(path, 'rb') as f:
            self.assertEqual(data, f.read(len(data)))

    def test_declared_size_is_enforced(self):
        hashes = hashing.ImageHashes('sha256')
        self.addCleanup(hashes.close)
        target = Target(FailingDevice(fail_at=1 << 40))
        for declared in (999, 1001):
            copy = pipeline.CopyPipeline(target, hashes, 4096, declared)
            self.assertRaises(exceptions.Invalid, copy.run,
                              io.BytesIO(b'x' * 1000))


class FailingDevice(object):
    def __init__(self, fail_at):
        self.fail_at = fail_at

    def size(self):
        return 1 << 40

    def write_at(self, offset, data, aligned=False):
        if offset >= self.fail_at:
            raise exceptions.StorageFull()


class TestPipelineErrors(base.TestCase):

    def test_first_error_stops_reading(self):
        buffer_size = tuning.DEFAULT.buffer_size
        size = 64 * buffer_size
        src = io.BytesIO(base.payload(size))
        target = Target(FailingDevice(fail_at=3 * buffer_size))
        hashes = hashing.ImageHashes('sha256')
        self.addCleanup(hashes.close)
        copy = pipeline.CopyPipeline(target, hashes, 65536)
        self.assertRaises(exceptions.StorageFull, copy.run, src)
        # Bounded: at most the two buffers in flight beyond the failure.
        self.assertLessEqual(src.tell(), 6 * buffer_size)
        self.assertEqual(0, copy.coordinator.in_flight)

    def test_failure_seen_before_its_callback_runs(self):
        # A Future wakes futures.wait() before it runs its done callbacks.
        class Late(futures.Future):
            def add_done_callback(self, fn):
                pass  # not yet
        coordinator = pipeline.Coordinator()
        job = Late()
        coordinator.track([job])
        job.set_exception(exceptions.StorageFull())
        self.assertRaises(exceptions.StorageFull, coordinator.wait, [job])
        self.assertEqual(0, coordinator.in_flight)

    def test_hash_failure_surfaces(self):
        hashes = hashing.ImageHashes('sha256')
        self.addCleanup(hashes.close)
        coordinator = pipeline.Coordinator()
        jobs = coordinator.track(hashes.submit('not bytes'))
        self.assertRaises(TypeError, coordinator.wait, jobs)


class TestCoordinator(base.TestCase):

    def setUp(self):
        super(TestCoordinator, self).setUp()
        self.pool = futures.ThreadPoolExecutor(2)
        self.addCleanup(self.pool.shutdown, wait=True)
        self.coordinator = pipeline.Coordinator()

    def test_first_failure_wins_and_is_raised_once_all_end(self):
        gate = threading.Event()

        def fail(exc, wait=False):
            if wait:
                gate.wait(5)
            raise exc

        first = ValueError('first')
        jobs = self.coordinator.track([self.pool.submit(fail, first)])
        futures.wait(jobs)
        late = self.coordinator.track([self.pool.submit(
            fail, KeyError('second'), True)])
        gate.set()
        e = self.assertRaises(ValueError, self.coordinator.wait_all)
        self.assertIs(first, e)
        self.assertTrue(late[0].done())

    def test_cancel_drops_what_has_not_started(self):
        gate = threading.Event()
        jobs = self.coordinator.track([self.pool.submit(gate.wait, 5)
                                       for _ in range(2)])
        queued = self.coordinator.track([self.pool.submit(lambda: 1)])
        threading.Timer(0.1, gate.set).start()
        self.coordinator.cancel()
        self.assertTrue(queued[0].cancelled())
        self.assertTrue(all(j.done() for j in jobs))
        self.assertEqual(0, self.coordinator.in_flight)
        self.coordinator.check()  # a cancellation is not a failure

    def test_finished_jobs_are_forgotten(self):
        # Memory stays flat: nothing keeps a finished job.
        for _ in range(200):
            self.coordinator.wait(self.coordinator.track(
                [self.pool.submit(lambda: None)]))
        self.assertEqual(0, self.coordinator.in_flight)

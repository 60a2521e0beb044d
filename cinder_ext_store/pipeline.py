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

"""The copy pipeline: an image's bytes into a write target, hashed on the
way, with bounded memory.

The caller's thread reads the source into one of two page-aligned buffers
(:attr:`~cinder_ext_store.tuning.Tuning.buffer_size` each) while the other
is hashed (md5, multihash) and written by worker threads. A
:class:`Coordinator` tracks every job in flight; the first failure stops
the copy, pending jobs are cancelled, running ones finish, and that first
failure is what the caller sees.
"""

from concurrent import futures
import mmap
import threading

from glance_store import exceptions

from cinder_ext_store import tuning


class Coordinator(object):
    """Jobs in flight; remembers the first failure and cancels on it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight = set()
        self._error = None

    def track(self, jobs):
        with self._lock:
            self._in_flight.update(jobs)
        for job in jobs:  # runs at once for a job already done
            job.add_done_callback(self._finished)
        return jobs

    def _finished(self, job):
        error = None if job.cancelled() else job.exception()
        with self._lock:
            self._in_flight.discard(job)
            if error is not None and self._error is None:
                self._error = error

    @property
    def in_flight(self):
        with self._lock:
            return len(self._in_flight)

    def check(self):
        """Raise the first failure, if any."""
        if self._error is not None:
            raise self._error

    def wait(self, jobs):
        """Wait for jobs; then raise the first failure of any job."""
        futures.wait(jobs)
        self._settle(jobs)
        self.check()

    def _settle(self, jobs):
        # futures.wait() may return before a job's done callback ran (a
        # Future wakes its waiters first): account for finished jobs here
        # too, or a write's failure could go unseen.
        for job in jobs:
            self._finished(job)

    def wait_all(self):
        with self._lock:
            jobs = list(self._in_flight)
        self.wait(jobs)

    def cancel(self):
        """Cancel what has not started; wait for what has."""
        with self._lock:
            jobs = list(self._in_flight)
        for job in jobs:
            job.cancel()
        futures.wait(jobs)
        self._settle(jobs)


class _Buffer(object):
    """A page-aligned buffer (anonymous mmap) and the jobs still using it."""

    def __init__(self, size):
        self.mem = mmap.mmap(-1, size)
        self.size = size
        self.used = 0
        self.jobs = []

    def fill(self, view):
        """Copy as much of view as fits; returns how much."""
        take = min(len(view), self.size - self.used)
        self.mem[self.used:self.used + take] = view[:take]
        self.used += take
        return take

    @property
    def full(self):
        return self.used == self.size

    def close(self):
        try:
            self.mem.close()
        except BufferError:  # a finished job still holds a view: GC frees it
            pass


class CopyPipeline(object):
    """Copies one image into target; :meth:`run` returns the bytes.

    :param target: has ``device`` and ``ensure_capacity(end_offset)``; the
        device may be replaced by ``ensure_capacity`` (offline growth), so
        no write is in flight when it is called
    :param hashes: an :class:`~cinder_ext_store.hashing.ImageHashes`
    :param read_size: bytes asked of the source per read
    :param expected_size: declared size, or 0 when unknown
    :param progress: has ``moved(nbytes)``, told of every chunk read (a
        :class:`~cinder_ext_store.stats.TransferStats`)
    :param buffer_size: bytes of each of the two buffers, and of every
        device write but the last
    """

    def __init__(self, target, hashes, read_size, expected_size=0,
                 progress=None, buffer_size=tuning.DEFAULT.buffer_size):
        self.buffer_size = buffer_size
        self.target = target
        self.progress = progress
        self.hashes = hashes
        self.read_size = read_size
        self.expected_size = expected_size
        self.coordinator = Coordinator()
        #: the copy failed because reading the source did (a client gone,
        #: Glance aborting the upload from its data stream)
        self.source_failed = False
        self._writer = None
        self._flushed = 0  # where the next buffer starts in the image

    def run(self, source):
        """Copy ``source`` (``read(n)``; b'' at the end).

        :raises Invalid: more or fewer bytes than declared
        """
        self._writer = futures.ThreadPoolExecutor(
            1, thread_name_prefix='cinder-ext-io')
        buffers = [_Buffer(self.buffer_size), _Buffer(self.buffer_size)]
        try:
            total = self._copy(source, buffers)
        except BaseException:
            self.coordinator.cancel()
            raise
        finally:
            self._writer.shutdown(wait=True)
            for buf in buffers:
                buf.close()
        if self.expected_size and total != self.expected_size:
            raise exceptions.Invalid(
                message='Image ended after %d bytes, its declared size is %d '
                        'bytes' % (total, self.expected_size))
        return total

    def _copy(self, source, buffers):
        current, total = 0, 0
        while True:
            try:
                chunk = source.read(self.read_size)
            except BaseException:
                self.source_failed = True
                raise
            if not chunk:
                break
            end = total + len(chunk)
            if self.expected_size and end > self.expected_size:
                raise exceptions.Invalid(
                    message='Image has more data than its declared size of '
                            '%d bytes' % self.expected_size)
            if end > self.target.device.size():
                self.coordinator.wait_all()  # growth may detach the device
                self.target.ensure_capacity(end)
            view = memoryview(chunk)
            while view:
                view = view[buffers[current].fill(view):]
                if buffers[current].full:
                    self._flush(buffers[current])
                    current = 1 - current
                    self._reuse(buffers[current])
            total = end
            if self.progress is not None:
                self.progress.moved(len(chunk))
        if buffers[current].used:
            self._flush(buffers[current])
        self.coordinator.wait_all()
        return total

    def _flush(self, buf):
        """Hash and write a buffer in the background."""
        view = memoryview(buf.mem)[:buf.used]
        start = self._flushed
        device = self.target.device
        buf.jobs = self.coordinator.track(self.hashes.submit(view) + [
            self._writer.submit(device.write_at, start, view, aligned=True)])
        self._flushed += buf.used

    def _reuse(self, buf):
        """Wait until nothing uses ``buf`` any more; empty it."""
        self.coordinator.wait(buf.jobs)
        buf.jobs, buf.used = [], 0

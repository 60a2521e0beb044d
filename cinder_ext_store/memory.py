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

"""The memory that transfers hold: one budget per glance-api process.

An upload holds its copy pipeline's two buffers, a download its read-ahead
(on RBD, its requests in flight), for as long as it runs. Many transfers in
one worker add up; with the budget a transfer that finds it spent waits
for room instead of allocating, and gives up with
:class:`~cinder_ext_store.errors.Busy` (Glance: 503) after
``Tuning.memory_wait``. A transfer larger than the whole budget still runs,
alone.
"""

import threading

from cinder_ext_store import errors

_PROCESS = None
_PROCESS_LOCK = threading.Lock()


class Budget(object):
    """Bytes that transfers may hold at once; :meth:`reserve` takes some."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self.waiting = 0
        self._cond = threading.Condition()

    def lower(self, limit):
        """Take the smaller limit (several backends configure one each)."""
        with self._cond:
            self.limit = min(self.limit, limit)

    def reserve(self, nbytes, timeout, clock, what='a transfer'):
        """A :class:`Reservation` of ``nbytes``, once they fit.

        :param clock: monotonic seconds (the store's tuning clock)
        :raises Busy: no room within ``timeout`` seconds
        """
        with self._cond:
            need = min(nbytes, self.limit)  # alone, it always fits
            deadline = clock() + timeout
            self.waiting += 1
            try:
                while self.used and self.used + need > self.limit:
                    left = deadline - clock()
                    if left <= 0:
                        raise errors.Busy(
                            'The store has no memory left for %s: %d of its '
                            '%d MiB are held by running transfers '
                            '(cinder_ext_transfer_memory_mb); try again'
                            % (what, self.used >> 20, self.limit >> 20))
                    self._cond.wait(left)
            finally:
                self.waiting -= 1
            self.used += need
        return Reservation(self, need)

    def _give_back(self, nbytes):
        with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


class Reservation(object):
    """Bytes of a :class:`Budget`; released once, also as a context.

    ``Reservation(None, 0)`` stands for a transfer without a budget.
    """

    def __init__(self, budget, nbytes):
        self._budget = budget
        self.nbytes = nbytes
        self._lock = threading.Lock()

    def release(self):
        with self._lock:
            nbytes, self.nbytes = self.nbytes, 0
        if nbytes and self._budget is not None:
            self._budget._give_back(nbytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def process_budget(limit):
    """This process's budget, at most ``limit`` bytes."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = Budget(limit)
        else:
            _PROCESS.lower(limit)
        return _PROCESS

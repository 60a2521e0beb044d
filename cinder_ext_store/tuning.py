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

"""The store's built-in sizes and timings, in one object.

What an operator sets is an option (:mod:`~cinder_ext_store.options`);
what is here is fixed in production and chosen by measurement (the
README's benchmark section has the figures). A :class:`Tuning` is passed
to the store's parts instead of module constants, so that tests shrink a
GiB, buffers and waits without patching modules.
"""

import dataclasses
import time
import typing

from oslo_utils import units


@dataclasses.dataclass(frozen=True)
class Tuning(object):
    """Sizes (bytes), counts and timings (seconds) of the data path."""

    #: Cinder's size unit (unit tests use a smaller one).
    gib: int = units.Gi
    #: The copy pipeline's buffers, and every device write but the last.
    buffer_size: int = 4 * units.Mi
    #: RBD requests in flight per transfer (each holds one chunk).
    rbd_in_flight: int = 8
    #: Chunks a block-device download reads ahead of its consumer.
    block_read_ahead: int = 2
    #: Status polling: first delay, growth factor, ceiling. Cinder moves a
    #: volume along in ~0.2-0.5 s; the ceiling is how late a slow
    #: transition is noticed. (Polling every 50 ms at most for the first
    #: second did not make 1 MiB images faster: 40-cycle runs, this store
    #: over the in-tree driver, 0.47 before and 0.51 with it; Cinder's one
    #: API worker answers the extra polls instead of other requests.)
    poll_first: float = 0.02
    poll_factor: float = 1.5
    poll_max: float = 0.5
    #: Interval of the log lines of a status wait that goes on.
    wait_report: float = 10.0
    #: Waits between retries of a failed request: first, then doubled to
    #: the ceiling (a restarting cinder-api answers within seconds).
    retry_first: float = 0.5
    retry_max: float = 4.0
    #: How long an attachment of unknown origin (an attachment create
    #: whose answer was lost) is watched before it is taken for the lost
    #: request's: another host's create is completed within seconds (it
    #: connects and completes at once), a lost one never is. Cinder makes
    #: one attachment of a volume at a time, so other hosts' readers wait
    #: that long: it stays below their retry budget (1+2+4+8 s).
    attach_settle: float = 10.0
    #: How long a delete waits for this host's readers of the image to
    #: leave before Glance is told it is in use (409). Glance cancels its
    #: own hash pass before it deletes, and the pass's reader is let go a
    #: moment after it stopped reading (when Glance drops the failed task).
    readers_leave: float = 10.0
    #: How long a transfer waits for room in the process's transfer
    #: memory (cinder_ext_transfer_memory_mb) before Glance is told 503.
    memory_wait: float = 60.0
    #: Attempts at a multiattach volume while another attachment of it is
    #: being made: first wait, and the ceiling of the waits (x1.5 each).
    attach_retry_first: float = 0.2
    attach_retry_max: float = 2.0
    #: How long a refused in-use extend keeps uploads on the offline path.
    refusal_ttl: float = 900
    #: Sleep of status polls and attach retries; clock of their deadlines.
    sleep: typing.Callable[[float], None] = time.sleep
    clock: typing.Callable[[], float] = time.monotonic
    #: Sleep between retries of a failed request.
    backoff: typing.Callable[[float], None] = time.sleep

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def poll_delays(self):
        """The sleeps between the polls of one wait (endless)."""
        delay = self.poll_first
        while True:
            yield delay
            delay = min(delay * self.poll_factor, self.poll_max)


#: What production uses.
DEFAULT = Tuning()

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

from glance_store import exceptions

from cinder_ext_store import errors
from cinder_ext_store import memory
from cinder_ext_store.tests.unit import base

MiB = 1 << 20


class TestBudget(base.TestCase):

    def reserve(self, budget, nbytes, timeout=5.0):
        return budget.reserve(nbytes, timeout, time.monotonic)

    def test_reservations_add_up_and_are_given_back_once(self):
        budget = memory.Budget(10 * MiB)
        one = self.reserve(budget, 4 * MiB)
        with self.reserve(budget, 6 * MiB):
            self.assertEqual(10 * MiB, budget.used)
        self.assertEqual(4 * MiB, budget.used)
        one.release()
        one.release()
        self.assertEqual(0, budget.used)

    def test_a_transfer_larger_than_the_budget_runs_alone(self):
        budget = memory.Budget(MiB)
        with self.reserve(budget, 5 * MiB) as big:
            self.assertEqual(MiB, big.nbytes)
            self.assertRaises(errors.Busy, self.reserve, budget, 1, 0.05)
        self.assertEqual(0, budget.used)

    def test_waits_for_room(self):
        budget = memory.Budget(2 * MiB)
        held = self.reserve(budget, 2 * MiB)
        timer = threading.Timer(0.1, held.release)
        timer.start()
        self.addCleanup(timer.cancel)
        started = time.monotonic()
        with self.reserve(budget, MiB):
            self.assertGreaterEqual(time.monotonic() - started, 0.09)
            self.assertEqual(MiB, budget.used)

    def test_no_room_in_time_is_busy(self):
        budget = memory.Budget(2 * MiB)
        with self.reserve(budget, 2 * MiB):
            e = self.assertRaises(errors.Busy, self.reserve, budget, MiB,
                                  0.05)
        # Glance answers 503 to it.
        self.assertIsInstance(e, exceptions.RemoteServiceUnavailable)
        self.assertIn('cinder_ext_transfer_memory_mb', str(e))
        self.assertEqual((0, 0), (budget.used, budget.waiting))

    def test_the_process_budget_is_the_smallest_configured(self):
        budget = memory.process_budget(8 * MiB)
        self.assertIs(budget, memory.process_budget(4 * MiB))
        self.assertIs(budget, memory.process_budget(16 * MiB))
        self.assertEqual(4 * MiB, budget.limit)

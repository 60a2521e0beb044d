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

import ddt
from oslo_utils import units

from cinder_ext_store import growth
from cinder_ext_store.tests.unit import base


def sizes_for(policy, image_bytes):
    """Every size an upload of ``image_bytes`` passes through.

    As :class:`~cinder_ext_store.write_target.WriteTarget` asks for them:
    each time the next byte no longer fits.
    """
    sizes = [policy.initial_gib]
    while sizes[-1] * units.Gi < image_bytes:
        sizes.append(policy.next_gib(sizes[-1], sizes[-1] + 1))
    return sizes


@ddt.ddt
class TestPolicy(base.TestCase):

    @ddt.data((1, 0, 1), (2, 1, 2), (10, 5, 12), (100, 11, 140),
              (1000, 25, 1036))
    @ddt.unpack
    def test_sequence(self, image_gib, extends, final_gib):
        policy = growth.GrowthPolicy(0.5, 1, 64)
        sizes = sizes_for(policy, image_gib * units.Gi)
        self.assertEqual(extends, len(sizes) - 1)
        self.assertEqual(final_gib, sizes[-1])
        self.assertGreaterEqual(sizes[-1], image_gib)
        # Bounded over-allocation: one step, i.e. <= factor x, <= max step.
        self.assertLessEqual(sizes[-1] - image_gib,
                             max(1, min(0.5 * image_gib, 64)))

    def test_steps_are_bounded(self):
        policy = growth.GrowthPolicy(2.0, 3, 50)
        self.assertEqual(4, policy.next_gib(1, 1))      # min step
        self.assertEqual(30, policy.next_gib(10, 1))    # factor
        self.assertEqual(150, policy.next_gib(100, 1))  # max step
        # A chunk that needs more than one step gets what it needs.
        self.assertEqual(400, policy.next_gib(100, 400))

    def test_max_below_min(self):
        self.assertEqual(5, growth.GrowthPolicy(0.5, 5, 1).max_gib)

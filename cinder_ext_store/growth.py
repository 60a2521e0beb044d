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

"""Growth policy of unknown-size uploads: how big, and whether online.

* :class:`GrowthPolicy` decides the next size (geometric, bounded steps).
* :class:`OnlineExtend` remembers whether extending attached volumes works
  with this store's Cinder; one refusal switches the store to the offline
  path until it is reconfigured.

:class:`~cinder_ext_store.write_target.WriteTarget` carries the steps out.
"""

import logging
import math

from oslo_utils import units


LOG = logging.getLogger(__name__)

#: Cinder's size unit. A module constant so unit tests can scale it down.
GIB = units.Gi


def gib_for(nbytes):
    """Whole GiB needed for ``nbytes`` (Cinder sizes are GiB, at least 1)."""
    return max(1, int(math.ceil(nbytes / float(GIB))))


class GrowthPolicy(object):
    """Geometric growth: +``factor`` x current size, within step bounds."""

    def __init__(self, factor, min_gib, max_gib):
        self.factor = factor
        self.min_gib = min_gib
        self.max_gib = max(max_gib, min_gib)

    @classmethod
    def from_conf(cls, conf):
        return cls(conf.cinder_ext_growth_factor,
                   conf.cinder_ext_growth_min_gib,
                   conf.cinder_ext_growth_max_gib)

    @property
    def initial_gib(self):
        return self.min_gib

    def next_gib(self, current_gib, needed_bytes):
        """The size to extend to so that ``needed_bytes`` fit."""
        step = int(math.ceil(current_gib * self.factor))
        step = min(max(step, self.min_gib), self.max_gib)
        return max(current_gib + step, gib_for(needed_bytes))


class OnlineExtend(object):
    """Whether to extend attached volumes, and why not any more."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.refused = None

    @property
    def usable(self):
        return self.enabled and self.refused is None

    def refuse(self, reason):
        self.refused = reason
        LOG.warning('Extending attached volumes does not work here (%s); '
                    'this and later uploads of this store grow volumes by '
                    'detaching them until the store is reconfigured',
                    reason)

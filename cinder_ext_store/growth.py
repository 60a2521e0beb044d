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
  with this store's Cinder: a refusal that is about capability (policy,
  microversion, a connector that cannot rescan, a pool without online
  extend) switches the store to the offline path for
  :attr:`~cinder_ext_store.tuning.Tuning.refusal_ttl` seconds, then online
  extend is tried again. A full pool is not such a refusal (see
  :meth:`~cinder_ext_store.write_target.WriteTarget.ensure_capacity`).

:class:`~cinder_ext_store.write_target.WriteTarget` carries the steps out.
"""

import logging
import math
import time

from cinder_ext_store import tuning

LOG = logging.getLogger(__name__)


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

    def next_gib(self, current_gib, needed_gib):
        """The size to extend to so that ``needed_gib`` fit."""
        step = int(math.ceil(current_gib * self.factor))
        step = min(max(step, self.min_gib), self.max_gib)
        return max(current_gib + step, needed_gib)


class OnlineExtend(object):
    """Whether to extend attached volumes, and why not for now."""

    def __init__(self, enabled, ttl=tuning.DEFAULT.refusal_ttl,
                 clock=time.monotonic):
        self.enabled = enabled
        self.ttl = ttl
        self._clock = clock
        self.refused = None
        self._until = 0.0

    @property
    def usable(self):
        if self.refused is not None and self._clock() >= self._until:
            LOG.info('Trying to extend attached volumes again (refused %ds '
                     'ago: %s)', self.ttl, self.refused)
            self.refused = None
        return self.enabled and self.refused is None

    def refuse(self, reason):
        self.refused = reason
        self._until = self._clock() + self.ttl
        LOG.warning('Extending attached volumes does not work here (%s); '
                    'this and later uploads of this store grow volumes by '
                    'detaching them for the next %d seconds', reason,
                    self.ttl)

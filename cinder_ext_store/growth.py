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

"""Growth: the volume an upload writes into, and how it grows.

* :class:`GrowthPolicy` decides the next size (geometric, bounded steps).
* :class:`OnlineExtend` remembers whether extending attached volumes works
  with this store's Cinder; one refusal switches the store to the offline
  path until it is reconfigured.
* :class:`TargetVolume` is the write target of one upload: the attachment
  and device, grown online (extend in-use at 3.42 + os-brick rescan, each
  step verified) or offline (detach, extend, re-attach) when data no longer
  fits.
"""

import logging
import math

from glance_store import exceptions
from oslo_utils import units

from cinder_ext_store import attachment as attachment_mod
from cinder_ext_store import cinder_client

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

    def sizes_for(self, image_bytes):
        """Every size an upload of ``image_bytes`` passes through.

        The first item is the initial size, the last the final one; the
        number of extensions is ``len() - 1``.
        """
        sizes = [self.initial_gib]
        while sizes[-1] * GIB < image_bytes:
            sizes.append(self.next_gib(sizes[-1], sizes[-1] * GIB + 1))
        return sizes


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


class TargetVolume(object):
    """The volume of one upload, attached read-write, growing on demand.

    :param growable: False for known-size uploads (sized up front)
    :param direct: write with O_DIRECT where the device allows it
    """

    def __init__(self, api, host, volume, policy, online, growable,
                 direct=False):
        self.api = api
        self.host = host
        self.volume_id = volume.id
        self.size_gib = volume.size
        self.policy = policy
        self.online = online
        self.growable = growable
        self.direct = direct
        self.attachment = None
        self.extends = 0
        self.attach_cycles = 0

    @property
    def device(self):
        return self.attachment.device

    def open(self):
        self.attachment = attachment_mod.Attachment(
            self.api, self.host, self.volume_id, 'rw', direct=self.direct)
        self.attach_cycles += 1
        try:
            self.attachment.open()
        except BaseException:
            self.close(succeeded=False)
            raise

    def close(self, succeeded):
        """Sync (on success) and detach; strict only when ``succeeded``."""
        attachment, self.attachment = self.attachment, None
        if attachment is not None:
            attachment.close(succeeded)

    def ensure_capacity(self, end):
        """Make sure bytes up to offset ``end`` can be written."""
        if end <= self.device.size():
            return
        if not self.growable:
            raise exceptions.StorageFull(
                message='Volume %s (%d GiB) cannot hold %d bytes'
                        % (self.volume_id, self.size_gib, end))
        new_gib = self.policy.next_gib(self.size_gib, end)
        if self.online.usable:
            try:
                self._grow_online(new_gib)
                return
            except cinder_client.ExtendRefused as e:
                self.online.refuse(str(e))
        self._grow_offline(new_gib)

    def _grow_online(self, new_gib):
        old_gib = self.size_gib
        self.api.extend(self.volume_id, new_gib, attached=True)
        self.extends += 1
        volume = self.api.settle(self.volume_id, ('extending',),
                                 'in-use extension to %d GiB' % new_gib)
        if volume.status == 'error_extending':
            raise cinder_client.ExtendRefused(
                'Cinder failed to extend in-use volume %s to %d GiB '
                '(status error_extending)' % (self.volume_id, new_gib))
        if volume.status != 'in-use':
            raise exceptions.BackendException(
                'Volume %s is %r after its in-use extension, expected '
                "'in-use'" % (self.volume_id, volume.status))
        if volume.size < new_gib:
            # The scheduler rejects backends without online extend support
            # and leaves the volume in-use at its old size.
            raise cinder_client.ExtendRefused(
                'Cinder left in-use volume %s at %d GiB instead of %d GiB '
                '(the backend does not support online extend)'
                % (self.volume_id, volume.size, new_gib))
        self.size_gib = volume.size
        try:
            seen = self.attachment.rescan()
        except NotImplementedError:
            raise cinder_client.ExtendRefused(
                'the %s connector cannot rescan a grown volume'
                % self.attachment.props.get('driver_volume_type'))
        if seen < new_gib * GIB:
            raise cinder_client.ExtendRefused(
                'volume %s grew to %d GiB in Cinder but this host still sees '
                '%d bytes' % (self.volume_id, new_gib, seen))
        LOG.info('Volume %s extended in use from %d to %d GiB',
                 self.volume_id, old_gib, new_gib)

    def _grow_offline(self, new_gib):
        old_gib = self.size_gib
        self.close(succeeded=True)
        volume = self.api.wait(self.volume_id, 'available',
                               ('in-use', 'detaching'),
                               'detach before extension')
        if volume.size < new_gib:
            self.api.extend(self.volume_id, new_gib, attached=False)
            self.extends += 1
            volume = self.api.wait(self.volume_id, 'available',
                                   ('extending',),
                                   'extension to %d GiB' % new_gib)
            if volume.size < new_gib:
                raise exceptions.BackendException(
                    'Cinder left volume %s at %d GiB after extending it to '
                    '%d GiB' % (self.volume_id, volume.size, new_gib))
        self.size_gib = volume.size
        self.open()
        if self.device.size() < new_gib * GIB:
            raise exceptions.BackendException(
                'Volume %s is %d GiB in Cinder but its device has %d bytes '
                'after re-attaching' % (self.volume_id, new_gib,
                                        self.device.size()))
        LOG.info('Volume %s extended offline from %d to %d GiB',
                 self.volume_id, old_gib, new_gib)

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

"""The write target of one upload: its volume, attached read-write, grown
when the data no longer fits.

A context manager, as :class:`~cinder_ext_store.attachments.Attachment`:
``with WriteTarget(...) as target`` attaches; leaving the block syncs and
detaches after success, and tears down (best effort) after a failure.

Online: extend in use (microversion 3.42), check that Cinder grew it,
rescan with os-brick and check that this host sees the new size. Offline:
detach, extend, re-attach. Each step is counted in the upload's
:class:`~cinder_ext_store.stats.TransferStats`.
"""

import logging

from glance_store import exceptions
from oslo_utils import excutils

from cinder_ext_store import attachments
from cinder_ext_store import cinder_api

LOG = logging.getLogger(__name__)


class WriteTarget(object):
    """The volume of one upload, attached read-write, growing on demand.

    :param growable: False for known-size uploads (sized up front)
    :param stats: the upload's :class:`~cinder_ext_store.stats.TransferStats`
    :param direct: write with O_DIRECT where the device allows it
    :param max_bytes: the largest image the store accepts (grown no further)
    :param attachment: an open read-write
        :class:`~cinder_ext_store.attachments.Attachment` of the volume to
        write first (a spare's), instead of making one
    :param on_attach: called with each new
        :class:`~cinder_ext_store.attachments.Attachment` (the store records
        it for ``cinder-ext-store reconcile``), and with None once it is
        detached (so that no record names a detached attachment)
    """

    def __init__(self, api, host, volume, policy, online, growable, stats,
                 direct=False, max_bytes=None, on_attach=None,
                 attachment=None):
        self.api = api
        self.host = host
        self.volume_id = volume.id
        self.size_gib = volume.size
        self.policy = policy
        self.online = online
        self.growable = growable
        self.direct = direct
        self.stats = stats
        self.max_bytes = max_bytes
        self.on_attach = on_attach
        self.attachment = None
        self._given = attachment

    @property
    def device(self):
        return self.attachment.device

    def __enter__(self):
        try:
            self._attach()
        except BaseException:
            # Attached but not recorded: __exit__ will not run.
            with excutils.save_and_reraise_exception():
                self._detach(strict=False)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._detach(strict=exc_type is None)

    def _attach(self):
        attachment, self._given = self._given, None
        if attachment is None:
            attachment = attachments.Attachment(
                self.api, self.host, self.volume_id, 'rw',
                direct=self.direct, size_gib=self.size_gib)
            with self.stats.phase('attach'):
                attachment.open()
        self.attachment = attachment
        self.stats.attachments += 1
        if self.on_attach is not None:
            self.on_attach(attachment)

    def _detach(self, strict):
        """Sync and detach (strict), or tear down after a failure."""
        attachment, self.attachment = self.attachment, None
        if attachment is None:
            return
        try:
            with self.stats.phase('detach'):
                if strict:
                    attachment.close()
                else:
                    attachment.abort()
        except BaseException:
            with excutils.save_and_reraise_exception():
                self._record_detach(attachment, strict=False)
        else:
            self._record_detach(attachment, strict=strict)

    def _record_detach(self, attachment, strict):
        """Tell ``on_attach`` the attachment left this host.

        Forgotten then; one Cinder kept is still named (without a host
        connection).
        """
        if self.on_attach is None:
            return
        try:
            self.on_attach(attachment if attachment.left_behind else None)
        except Exception:
            if strict:
                raise
            LOG.exception('Volume %s: recording the detach failed',
                          self.volume_id)

    def ensure_capacity(self, end):
        """Make sure bytes up to offset ``end`` can be written."""
        if end <= self.device.size():
            return
        if not self.growable:
            raise exceptions.StorageFull(
                message='Volume %s (%d GiB) cannot hold %d bytes'
                        % (self.volume_id, self.size_gib, end))
        if self.max_bytes and end > self.max_bytes:
            raise exceptions.StorageFull(
                message='Image in volume %s passed %d bytes, the most this '
                        'store accepts' % (self.volume_id, self.max_bytes))
        new_gib = self.policy.next_gib(self.size_gib, self.api.gib_for(end))
        with self.stats.phase('grow'):
            refusal = None
            if self.online.usable:
                try:
                    self._grow_online(new_gib)
                    self.stats.growth.append('online')
                    return
                except cinder_api.ExtendRefused as e:
                    refusal = e
                    if not e.maybe_capacity:
                        self.online.refuse(str(e))
            # Offline growth also tells capacity from capability: a full
            # pool refuses it too (StorageFull), a pool without online
            # extend does not.
            self._grow_offline(new_gib)
            self.stats.growth.append('offline')
            if refusal is not None and refusal.maybe_capacity:
                self.online.refuse(str(refusal))

    def _grow_online(self, new_gib):
        old_gib = self.size_gib
        self.api.extend(self.volume_id, new_gib, attached=True)
        self.stats.extends += 1
        volume = self.api.wait_while(self.volume_id, ('extending',),
                                     'in-use extension to %d GiB' % new_gib)
        if volume.status == 'error_extending':
            raise cinder_api.ExtendRefused(
                'Cinder failed to extend in-use volume %s to %d GiB '
                '(status error_extending)' % (self.volume_id, new_gib))
        if volume.status != 'in-use':
            raise exceptions.BackendException(
                'Volume %s is %r after its in-use extension, expected '
                "'in-use'" % (self.volume_id, volume.status))
        if volume.size < new_gib:
            # The scheduler rejects backends without online extend support
            # and leaves the volume in-use at its old size.
            raise cinder_api.ExtendRefused(
                'Cinder left in-use volume %s at %d GiB instead of %d GiB '
                '(its scheduler refused: the backend does not support '
                'online extend, or its pool is full)'
                % (self.volume_id, volume.size, new_gib),
                maybe_capacity=True)
        self.size_gib = volume.size
        try:
            seen = self.attachment.rescan()
        except NotImplementedError:
            raise cinder_api.ExtendRefused(
                'the %s connector cannot rescan a grown volume'
                % self.attachment.props.get('driver_volume_type'))
        except Exception as e:
            # Not a missing feature: a failure, which the offline path
            # would only hide.
            raise exceptions.BackendException(
                'Volume %s grew to %d GiB but rescanning it on this host '
                'failed: %s' % (self.volume_id, new_gib, e))
        if seen < self.api.bytes_for(new_gib):
            raise cinder_api.ExtendRefused(
                'volume %s grew to %d GiB in Cinder but this host still sees '
                '%d bytes' % (self.volume_id, new_gib, seen))
        LOG.info('Volume %s extended in use from %d to %d GiB',
                 self.volume_id, old_gib, new_gib)

    def _grow_offline(self, new_gib):
        old_gib = self.size_gib
        self._detach(strict=True)
        volume = self.api.wait(self.volume_id, 'available',
                               ('in-use', 'detaching'),
                               'detach before extension')
        if volume.size < new_gib:
            self.api.extend(self.volume_id, new_gib, attached=False)
            self.stats.extends += 1
            volume = self.api.wait(self.volume_id, 'available',
                                   ('extending',),
                                   'extension to %d GiB' % new_gib)
            if volume.size < new_gib:
                # Cinder's scheduler found no pool with room and put the
                # volume back as it was (its quota would have said 413).
                raise exceptions.StorageFull(
                    message='Cinder left volume %s at %d GiB instead of '
                            'extending it to %d GiB: its scheduler found no '
                            'room in the pool (openstack volume message '
                            'list names the reason)'
                            % (self.volume_id, volume.size, new_gib))
        self.size_gib = volume.size
        self._attach()
        if self.device.size() < self.api.bytes_for(new_gib):
            raise exceptions.BackendException(
                'Volume %s is %d GiB in Cinder but its device has %d bytes '
                'after re-attaching' % (self.volume_id, new_gib,
                                        self.device.size()))
        LOG.info('Volume %s extended offline from %d to %d GiB',
                 self.volume_id, old_gib, new_gib)

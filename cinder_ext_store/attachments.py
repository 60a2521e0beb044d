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

"""Attachment lifecycle: Cinder attachment + os-brick connection.

An :class:`Attachment` is the only way the store reaches a volume's bytes,
and a context manager: ``with Attachment(api, host, volume_id, 'rw') as
att`` creates the attachment, connects it on this host, marks it complete
and opens ``att.device`` (a :class:`~cinder_ext_store.devices.Device`); it
is all or nothing: when any step fails, what the earlier steps made is
undone before the error is raised. Leaving the block tears it down on every
path: :meth:`Attachment.close` after success (the device synced first, and
a failing disconnect is an error: it may mean unflushed data),
:meth:`Attachment.abort` after a failure (best effort, never hiding the
original exception). A caller whose attachment outlives one block (an
upload that re-attaches to grow) calls :meth:`~Attachment.open` and
``close``/``abort`` itself.

What another process made comes back as an Attachment too
(:meth:`Attachment.adopt`, from a host record): a reader of this host
joins an existing read attachment with a host connection of its own
(``owner=False``: its close leaves the attachment to the share), and
reconcile releases what a dead process left (:meth:`Attachment.release`).
"""

import logging

from glance_store import exceptions
from oslo_utils import excutils
from oslo_utils import strutils

from cinder_ext_store import devices
from cinder_ext_store import host_records

LOG = logging.getLogger(__name__)


def connection_properties(connection_info):
    """The os-brick view of a Cinder ``connection_info``.

    Cinder's attachments API returns the driver's data at the top level next
    to ``driver_volume_type``; older shapes nest it under ``data``.
    """
    data = connection_info.get('data')
    if isinstance(data, dict):
        props = dict(data)
        props.setdefault('driver_volume_type',
                         connection_info.get('driver_volume_type'))
        return props
    return connection_info


class Attachment(object):
    """One live attachment of a volume to this host."""

    def __init__(self, api, host, volume_id, mode, direct=False,
                 owner=True, before=None, size_gib=None):
        self.api = api
        # The volume's size as Cinder showed it a moment ago (the device
        # lent must have it), or None: asked when needed.
        self.size_gib = size_gib
        self.before = before  # the volume's attachments before ours
        self.host = host
        self.volume_id = volume_id
        self.mode = mode
        self.direct = direct
        self.owner = owner  # teardown deletes the Cinder attachment
        self.recorded_identity = None  # of an adopted host connection
        self.left_behind = None  # an attachment close could not delete
        self.attachment_id = None
        self.connection_info = None
        self.connector = None
        self.props = None
        self.device_info = None
        self.device = None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self):
        """Attach; returns the device. Undoes its own steps on failure."""
        try:
            self._open()
        except BaseException:
            with excutils.save_and_reraise_exception():
                self.abort()
        return self.device

    def _open(self):
        attachment = self.api.attachment_create(
            self.volume_id, self.host.connector_properties(), self.mode,
            before=self.before)
        self.attachment_id = attachment['id']
        info = attachment.get('connection_info') or {}
        self.connection_info = info
        LOG.debug('Attachment %s of volume %s: %s', self.attachment_id,
                  self.volume_id, strutils.mask_dict_password(info))
        self.props = connection_properties(info)
        try:
            self.connector = self.host.connector(info)
            self.device_info = self.connector.connect_volume(self.props)
        except Exception as e:
            raise exceptions.BackendException(
                'Connecting volume %s (%s) to this host failed: %s'
                % (self.volume_id, info.get('driver_volume_type'), e))
        self.host.lend(self.device_info, self._volume_bytes, self.props)
        self.api.attachment_complete(self.attachment_id, self.volume_id)
        self.device = self._open_device(writable=self.mode == 'rw')

    def _open_device(self, writable):
        return devices.open_device(
            self.device_info['path'], writable, self.volume_id,
            direct=self.direct, rbd_op_timeout=self.host.rbd_op_timeout,
            tuning=self.api.tuning)

    def _volume_bytes(self):
        size_gib = self.size_gib or self.api.get(self.volume_id).size
        return self.api.bytes_for(size_gib)

    @classmethod
    def adopt(cls, api, host, volume_id, record, owner=True):
        """The attachment a host record names (made by any process).

        :param record: ``attachment_id``, ``connection_info``, ``props``
            and ``host_connection`` (None: no shared connection)
        :param owner: False for a reader joining another's attachment
        """
        adopted = cls(api, host, volume_id, record.get('mode', 'ro'),
                      owner=owner)
        adopted.attachment_id = record.get('attachment_id')
        adopted.connection_info = record.get('connection_info') or {}
        adopted.props = record.get('props')
        info = record.get('host_connection')
        if info is not None:
            info = dict(info)
            adopted.recorded_identity = info.pop('identity', None)
        adopted.device_info = info
        return adopted

    def connect(self, direct=False):
        """Connect this adopted attachment again, for this process alone.

        An RBD handle cannot be shared between processes: a reader that
        joins a share opens its own. Undone on failure; returns the device.
        """
        self.direct = direct
        try:
            self.connector = self.host.connector(self.connection_info)
            self.device_info = self.connector.connect_volume(self.props)
            self.device = self._open_device(writable=False)
        except Exception as e:
            self.abort()
            if isinstance(e, exceptions.GlanceStoreException):
                raise
            raise exceptions.BackendException(
                'Connecting volume %s to this host failed: %s'
                % (self.volume_id, e))
        except BaseException:
            with excutils.save_and_reraise_exception():
                self.abort()
        return self.device

    def release(self):
        """Release what a dead process left (forced disconnect, delete).

        :raises: what Cinder raised deleting the attachment, so that the
            record that names it is kept for another try
        """
        if self.device_info is not None and self._same_device():
            try:
                self._disconnect(force=True)
            except Exception:
                pass  # logged; the attachment goes all the same
        self.device_info = None
        if self.attachment_id is not None:
            try:
                self.api.attachment_delete(self.attachment_id,
                                           self.volume_id)
            except exceptions.NotFound:
                pass  # released elsewhere (an operator)
            self.attachment_id = None

    def _same_device(self):
        """Whether the recorded host connection is still what it was.

        A path whose device changed since it was recorded belongs to
        another volume now: it is not disconnected.
        """
        recorded = self.recorded_identity
        if recorded is None:
            return True
        try:
            now = host_records.device_identity(self.device_info['path'])
        except OSError as e:
            now = str(e)
        if now == recorded:
            return True
        LOG.warning('Volume %s: %s is no longer the device recorded (%s, now '
                    '%s); not disconnecting it', self.volume_id,
                    self.device_info['path'], recorded, now)
        return False

    def rescan(self):
        """Make this host see a size Cinder changed; returns bytes.

        :raises NotImplementedError: the connector cannot (NFS and other
            remote filesystems)
        """
        reported = self.connector.extend_volume(self.props)
        actual = self.device.size(refresh=True)
        LOG.debug('Volume %s: connector reports %s bytes, device has %d',
                  self.volume_id, reported, actual)
        return actual

    def _disconnect(self, force):
        if self.connector is None:
            self.connector = self.host.connector(self.connection_info)
        try:
            self.host.disconnect(self.connector, self.props,
                                 self.device_info, force=force)
            return
        except Exception as e:
            LOG.error('Disconnecting volume %s from this host failed: %s',
                      self.volume_id, e)
            error = exceptions.BackendException(
                'Disconnecting volume %s failed: %s' % (self.volume_id, e))
        if not force:
            # The upload fails either way; do not leave the device behind.
            try:
                self.host.disconnect(self.connector, self.props,
                                     self.device_info, force=True)
            except Exception as e:
                LOG.error('Forced disconnect of volume %s failed too: %s',
                          self.volume_id, e)
        raise error

    def close(self):
        """Sync (read-write), disconnect, delete; the first error raised.

        The teardown goes on past an error, so that nothing is left on
        this host either way.
        """
        self._teardown(strict=True)

    def abort(self):
        """Tear down after a failure: forced, best effort, never raises."""
        self._teardown(strict=False)

    def _teardown(self, strict):
        """Tear down in reverse order; errors raised only when ``strict``."""
        errors = []
        if self.device is not None:
            try:
                if strict and self.mode == 'rw':
                    self.device.sync()
            except Exception as e:
                errors.append(e)
            finally:
                self.device.close()
        if self.device_info is not None:
            try:
                self._disconnect(force=not strict)
            except Exception as e:
                errors.append(e)
        if self.attachment_id is not None and self.owner:
            try:
                self.api.attachment_delete(self.attachment_id,
                                           self.volume_id)
            except Exception as e:
                LOG.error('Deleting attachment %s of volume %s failed: %s',
                          self.attachment_id, self.volume_id, e)
                errors.append(e)
                # Still in Cinder, no longer on this host: a record must
                # keep naming it.
                self.left_behind = self.attachment_id
        self.device = self.device_info = self.attachment_id = None
        if strict and errors:
            raise errors[0]

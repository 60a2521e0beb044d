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

An :class:`Attachment` is the only way the store reaches a volume's bytes.
:meth:`Attachment.open` creates the attachment, connects it on this host,
marks it complete and hands out a :class:`~cinder_ext_store.devices.Device`;
it is all or nothing: when any step fails, what the earlier steps made is
undone before the error is raised. :meth:`Attachment.close` disconnects and
deletes the attachment on every path: after success the device is synced
first and a failing disconnect is an error (it may mean unflushed data);
after a failure the cleanup is best effort and never hides the original
exception. :func:`attached` is the same as a context manager.
"""

import contextlib
import logging

from glance_store import exceptions
from oslo_utils import excutils
from oslo_utils import strutils

from cinder_ext_store import devices

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

    def __init__(self, api, host, volume_id, mode, direct=False):
        self.api = api
        self.host = host
        self.volume_id = volume_id
        self.mode = mode
        self.direct = direct
        self.attachment_id = None
        self.connection_info = None
        self.connector = None
        self.props = None
        self.device_info = None
        self.device = None

    def open(self):
        """Attach; returns the device. Undoes its own steps on failure."""
        try:
            self._open()
        except BaseException:
            with excutils.save_and_reraise_exception():
                self.close(succeeded=False)
        return self.device

    def _open(self):
        attachment = self.api.attachment_create(
            self.volume_id, self.host.connector_properties(), self.mode)
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
        self.host.lend(self.device_info)
        self.api.attachment_complete(self.attachment_id, self.volume_id)
        self.device = devices.open_device(
            self.device_info['path'], writable=self.mode == 'rw',
            volume_id=self.volume_id, direct=self.direct,
            rbd_op_timeout=self.host.rbd_op_timeout)

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

    def close(self, succeeded):
        """Tear down in reverse order; strict only when ``succeeded``."""
        errors = []
        if self.device is not None:
            try:
                if succeeded and self.mode == 'rw':
                    self.device.sync()
            except Exception as e:
                errors.append(e)
            finally:
                self.device.close()
        if self.device_info is not None:
            try:
                self._disconnect(force=not succeeded)
            except Exception as e:
                errors.append(e)
        if self.attachment_id is not None:
            try:
                self.api.attachment_delete(self.attachment_id,
                                           self.volume_id)
            except Exception as e:
                LOG.error('Deleting attachment %s of volume %s failed: %s',
                          self.attachment_id, self.volume_id, e)
                errors.append(e)
        self.device = self.device_info = self.attachment_id = None
        if succeeded and errors:
            raise errors[0]


@contextlib.contextmanager
def attached(api, host, volume_id, mode, direct=False):
    """Attach ``volume_id`` to this host; yields the :class:`Attachment`.

    :param mode: ``'rw'`` to write, ``'ro'`` to read
    """
    attachment = Attachment(api, host, volume_id, mode, direct=direct)
    attachment.open()
    try:
        yield attachment
    except BaseException:
        with excutils.save_and_reraise_exception():
            attachment.close(succeeded=False)
    else:
        attachment.close(succeeded=True)

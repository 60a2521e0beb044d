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

"""Upload markers: which volumes this host's processes are writing.

An upload records ``<volume id>.upload`` in the host's record directory
(:mod:`~cinder_ext_store.host_records`) as soon as its volume exists, and
updates it with each attachment it opens and closes. The marker tells

* readers of this host to fail at once instead of waiting for an
  attachment Cinder refuses until the upload ends;
* ``cinder-ext-store reconcile`` what a dead upload held (its attachment
  and host connection) and that its volume is garbage, and that a live
  upload's volume is not, also while it is detached to grow offline.

The marker names an attachment only while it is open: a detached one is
forgotten before the next attach, so that a dead upload's record never
makes reconcile disconnect a device path another volume reuses.
"""

import logging

from glance_store import exceptions

from cinder_ext_store import attachments
from cinder_ext_store import host_records

LOG = logging.getLogger(__name__)

SUFFIX = '.upload'


class UploadMarkers(object):
    """The upload markers of this host.

    :param records: the host's :class:`~cinder_ext_store.host_records.
        Records`
    :param host: the :class:`~cinder_ext_store.brick_host.BrickHost` that
        disconnects what a dead upload left
    :param backend: the store's backend, whose protocol an attachment
        shows (:meth:`~cinder_ext_store.host_records.Records.note_backend`)
    """

    def __init__(self, records, host, backend=None):
        self.records = records
        self.host = host
        self.backend = backend

    def _name(self, volume_id):
        return volume_id + SUFFIX

    def _load(self, volume_id):
        try:
            return self.records.load(self._name(volume_id))
        except ValueError as e:
            self.records.move_aside(self._name(volume_id), e)
            return None

    def uploading(self, volume_id, attachment=None, spare=False):
        """Record that this process writes ``volume_id``.

        :param attachment: the upload's open
            :class:`~cinder_ext_store.attachments.Attachment`, or None
            while it holds none (before the first attach, between a detach
            and the next attach); a closed one whose Cinder attachment could
            not be deleted is recorded without a host connection
        :param spare: the volume was made as a spare
            (:mod:`~cinder_ext_store.spare_volumes`): reconcile deletes it
            only while Cinder still shows it as one
        :raises: what the write raised: the caller must not go on with an
            upload nobody could clean up after
        """
        marker = host_records.identity()
        if spare:
            marker['spare'] = True
        if attachment is not None:
            info = attachment.device_info
            path = info['path'] if info else None
            host_connection = None
            if isinstance(path, str):
                host_connection = dict(
                    info, identity=host_records.device_identity(path))
            marker.update(
                mode='rw',
                attachment_id=(attachment.attachment_id or
                               attachment.left_behind),
                connection_info=host_records.without_secrets(
                    attachment.connection_info),
                props=host_records.without_secrets(attachment.props),
                host_connection=host_connection,
                rbd_conf=host_records.rbd_conf(info))
        self.records.save(self._name(volume_id), marker)
        if attachment is not None:
            self.records.note_backend(self.backend, attachment.props)

    def uploaded(self, volume_id, abandoned=False):
        """The upload ended; ``abandoned``: its cleanup could not finish.

        An abandoned upload's marker stays, flagged, so that reconcile
        cleans its attachment and volume although this process lives on.
        """
        if abandoned:
            try:
                marker = self._load(volume_id) or {}
                marker['abandoned'] = True
                self.records.save(self._name(volume_id), marker)
                return
            except (OSError, exceptions.BackendException) as e:
                LOG.error('Could not record abandoned upload of volume %s: '
                          '%s', volume_id, e)
        self.records.remove(self._name(volume_id))

    def markers(self):
        """(volume id, marker) of every readable upload marker."""
        for volume_id in self.records.names(SUFFIX):
            try:
                marker = self._load(volume_id)
            except (OSError, exceptions.BackendException) as e:
                LOG.error('Upload marker of volume %s skipped: %s',
                          volume_id, e)
                continue
            if isinstance(marker, dict):
                yield volume_id, marker

    @staticmethod
    def _judge(marker):
        """ALIVE, DEAD or FOREIGN, as host_records judges it.

        An abandoned upload of this place is DEAD.
        """
        verdict = host_records.judge(marker)
        if verdict == host_records.ALIVE and marker.get('abandoned'):
            return host_records.DEAD
        return verdict

    def live(self):
        """Volume ids being written (or of another place: not judged)."""
        return {v for v, m in self.markers()
                if self._judge(m) != host_records.DEAD}

    def dead(self):
        """(volume id, marker) of uploads reconcile may clean.

        Those whose process is gone, and those that failed and could not
        clean up (``marker['abandoned']``); only of this place.
        """
        for volume_id, marker in self.markers():
            if self._judge(marker) == host_records.DEAD:
                yield volume_id, marker

    def foreign(self):
        """(volume id, marker) of another PID namespace, boot or host.

        Kept, whatever they name: only a process of that place can judge
        them.
        """
        for volume_id, marker in self.markers():
            if self._judge(marker) == host_records.FOREIGN:
                yield volume_id, marker

    def check_not_uploading(self, volume_id):
        """Refuse to read a volume a live upload of this host writes."""
        try:
            writer = self._load(volume_id)
        except (OSError, exceptions.BackendException):
            return
        if writer and self._judge(writer) != host_records.DEAD:
            raise exceptions.BackendException(
                'Volume %s is still being written by an upload (%s)'
                % (volume_id, host_records.where(writer)))

    def reclaim(self, api, volume_id):
        """Undo what a dead upload held on this host: connection, attachment.

        :raises: what Cinder raised deleting the attachment (the marker is
            kept, so that a later run can try again)
        """
        marker = self._load(volume_id)
        if marker is None:
            return
        verdict = self._judge(marker)
        if verdict != host_records.DEAD:
            raise exceptions.BackendException(
                'Volume %s: its upload marker names a %s process (%s); not '
                'released' % (volume_id, verdict, host_records.where(marker)))
        attachments.Attachment.adopt(api, self.host, volume_id,
                                     marker).release()
        host_records.remove_rbd_conf(marker.get('rbd_conf'))
        self.records.remove(self._name(volume_id))

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

"""One read-only attachment per (host, volume), shared by all its readers.

Cinder refuses a second attachment of a non-multiattach volume, and os-brick
does not count connections (the first ``disconnect_volume`` removes a device
others still read), so every reader of a volume on this host - threads of
one glance-api process and other worker processes alike - shares one
read-only Cinder attachment and one host connection.

The share of a volume is a JSON state file ``<volume id>.json`` in
``<lock path>/cinder_ext_reads``: the attachment id, its connection
properties, the host connection (a device path) and the readers, counted per
process id (with the process's start time, so a reused pid is not taken for
the old process). Every change happens under a lock that is both a thread
lock and a file lock (oslo.concurrency's external lock of that volume).

The first reader attaches; later ones open the recorded device (a file-like
RBD handle cannot be shared between processes: each reader then connects
its own handle). The last reader to leave disconnects and deletes the
attachment. A reader process that died (SIGKILL, OOM) leaves its count
behind; whoever takes the lock next drops the counts of dead processes, and
:meth:`ReadShares.sweep` (run at a process's first read) releases shares
that nobody alive holds.
"""

import json
import logging
import os
import tempfile
import time

from glance_store import exceptions
from oslo_concurrency import lockutils

from cinder_ext_store import attachments
from cinder_ext_store import devices

LOG = logging.getLogger(__name__)

SUBDIR = 'cinder_ext_reads'


def process_start(pid):
    """The start time of process ``pid`` (clock ticks), or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid, start):
    return process_start(pid) == start


class Lease(object):
    """One reader's hold on a shared attachment; :meth:`release` once."""

    def __init__(self, shares, api, volume_id, device, connection,
                 handle_info):
        self._shares = shares
        self._api = api
        self.volume_id = volume_id
        self.device = device
        self._connection = connection
        self._handle_info = handle_info  # this reader's own RBD handle
        self.released = False

    def release(self):
        if self.released:
            return
        self.released = True
        self.device.close()
        if self._handle_info is not None:
            self._shares.disconnect(self._connection, self._handle_info)
        self._shares.leave(self._api, self.volume_id,
                           rbd_conf(self._handle_info))


def rbd_conf(handle_info):
    """The temporary ceph configuration behind an RBD handle, or None.

    os-brick's RBD connector writes one per connection (``brickrbd_*`` in
    the temporary directory, holding the user's key) and removes it on
    disconnect; a reader killed before that leaves it behind, so the share
    records it for whoever reclaims the dead reader.
    ``RBDVolumeIOWrapper.rbd_conf`` names it.
    """
    path = getattr((handle_info or {}).get('path'), 'rbd_conf', None)
    if _is_brick_rbd_conf(path):
        return path
    return None


def _is_brick_rbd_conf(path):
    # The state file is only as trusted as the lock path: never unlink
    # anything but a plain os-brick temporary file.
    return (isinstance(path, str) and os.path.isabs(path) and
            os.path.basename(path).startswith('brickrbd_') and
            os.path.dirname(path) == tempfile.gettempdir() and
            not os.path.islink(path))


class ReadShares(object):
    """The shared read attachments of this host.

    :param state_dir: where the state files and locks live (the lock path)
    :param host: the :class:`~cinder_ext_store.brick_host.BrickHost`
    :param retries: attachment attempts while another host holds a
        non-multiattach volume (``cinder_attachment_retry_attempts``)
    :param direct: read with O_DIRECT where the device allows it
    """

    def __init__(self, state_dir, host, retries=5, direct=False,
                 sleep=time.sleep):
        self.dir = os.path.join(state_dir, SUBDIR)
        self.host = host
        self.retries = retries
        self.direct = direct
        self._sleep = sleep
        self._swept = False
        self._me = (None, None)

    def _identity(self):
        """(pid, start time) of this process, as the state files key it.

        Computed, not kept from __init__: Glance may fork after it made
        the store.
        """
        pid = os.getpid()
        if self._me[0] != pid:
            self._me = (pid, process_start(pid))
        return self._me

    # -- state -----------------------------------------------------------

    def _path(self, volume_id):
        return os.path.join(self.dir, '%s.json' % volume_id)

    def _lock(self, volume_id):
        return lockutils.lock('cinder_ext-read-%s' % volume_id,
                              external=True, lock_path=self.dir)

    def _load(self, volume_id):
        path = self._path(volume_id)
        try:
            with open(path) as f:
                state = json.load(f)
            if not (isinstance(state, dict) and 'attachment_id' in state and
                    isinstance(state.get('readers'), dict)):
                raise ValueError('not a read share state')
            return state
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            aside = '%s.corrupt-%d' % (path, time.time())
            os.replace(path, aside)
            LOG.error('Read share of volume %s: unreadable state (%s), moved '
                      'to %s; its attachment, if any, is not released by '
                      'this store', volume_id, e, aside)
            return None

    def _save(self, volume_id, state):
        path = self._path(volume_id)
        if state is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        tmp = '%s.%d.tmp' % (path, os.getpid())
        with open(tmp, 'w') as f:
            json.dump(state, f)
        os.replace(tmp, path)  # readers never see half a file

    def _reclaim(self, volume_id, state):
        """Drop the counts of processes that are gone, and their files."""
        for pid, holder in list(state['readers'].items()):
            if not _alive(int(pid), holder['start']):
                LOG.warning('Read share of volume %s: reclaiming %d '
                            'reference(s) of dead process %s', volume_id,
                            holder['count'], pid)
                for conf in holder.get('rbd_confs', ()):
                    if _is_brick_rbd_conf(conf):
                        try:
                            os.unlink(conf)
                        except FileNotFoundError:
                            pass
                del state['readers'][pid]

    def _settle(self, api, volume_id, state):
        """Drop dead readers; keep the share, or release it if nobody reads.

        :returns: the number of live readers
        """
        self._reclaim(volume_id, state)
        readers = sum(h['count'] for h in state['readers'].values())
        if readers:
            self._save(volume_id, state)
        else:
            self._detach(api, volume_id, state)
        return readers

    def release_unless_read(self, api, volume_id):
        """Before a delete: the number of live readers on this host.

        When there are none, a share left by dead readers is released
        (disconnected, then its attachment deleted) so that Cinder can
        delete the volume.
        """
        os.makedirs(self.dir, exist_ok=True)
        with self._lock(volume_id):
            state = self._load(volume_id)
            return 0 if state is None else self._settle(api, volume_id,
                                                        state)

    # -- uploads ---------------------------------------------------------

    def _upload_marker(self, volume_id):
        return os.path.join(self.dir, '%s.upload' % volume_id)

    def uploading(self, volume_id, attachment=None):
        """Mark ``volume_id`` as being written by this process.

        Readers on this host then fail at once instead of waiting for an
        attachment Cinder would refuse until the upload ends. With the
        upload's ``attachment`` (an open
        :class:`~cinder_ext_store.attachments.Attachment`), the marker also
        records what ``cinder-ext-store reconcile`` needs to undo should
        this process die: the attachment and its host connection.
        """
        os.makedirs(self.dir, exist_ok=True)
        pid, start = self._identity()
        marker = {'pid': pid, 'start': start}
        if attachment is not None:
            path = attachment.device_info['path']
            marker.update(
                attachment_id=attachment.attachment_id,
                connection_info=attachment.connection_info,
                props=attachment.props,
                host_connection=(attachment.device_info
                                 if isinstance(path, str) else None),
                rbd_conf=rbd_conf(attachment.device_info))
        tmp = self._upload_marker(volume_id) + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(marker, f)
        os.replace(tmp, self._upload_marker(volume_id))

    def uploaded(self, volume_id, abandoned=False):
        """The upload ended; ``abandoned``: its cleanup could not finish.

        An abandoned upload's marker stays, flagged, so that reconcile
        cleans its attachment and volume although this process lives on.
        """
        if abandoned:
            try:
                with open(self._upload_marker(volume_id)) as f:
                    marker = json.load(f)
                marker['abandoned'] = True
                with open(self._upload_marker(volume_id), 'w') as f:
                    json.dump(marker, f)
                return
            except (OSError, ValueError) as e:
                LOG.error('Could not record abandoned upload of volume %s: '
                          '%s', volume_id, e)
        self._forget_upload(volume_id)

    # -- what dead processes left (cinder-ext-store reconcile) -------------

    def _markers(self, suffix):
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(suffix):
                yield name[:-len(suffix)]

    def dead_uploads(self):
        """(volume id, marker) of uploads reconcile may clean.

        Those whose process is gone, and those that failed and could not
        clean up (``marker['abandoned']``).
        """
        for volume_id in self._markers('.upload'):
            try:
                with open(self._upload_marker(volume_id)) as f:
                    marker = json.load(f)
            except (OSError, ValueError):
                continue
            if marker.get('abandoned') or not _alive(marker.get('pid', 0),
                                                     marker.get('start')):
                yield volume_id, marker

    def dead_shares(self):
        """(volume id, state) of read shares no live process holds."""
        for volume_id in self._markers('.json'):
            with self._lock(volume_id):
                state = self._load(volume_id)
            if state is not None and not any(
                    _alive(int(pid), holder['start'])
                    for pid, holder in state['readers'].items()):
                yield volume_id, state

    def reclaim_upload(self, api, volume_id):
        """Undo what a dead upload held on this host: connection, attachment.

        :raises: what Cinder raised deleting the attachment (the marker is
            kept, so that a later run can try again)
        """
        with open(self._upload_marker(volume_id)) as f:
            marker = json.load(f)
        if not marker.get('abandoned') and _alive(marker.get('pid', 0),
                                                  marker.get('start')):
            raise exceptions.BackendException(
                'Volume %s is being written by live process %s'
                % (volume_id, marker['pid']))
        if marker.get('host_connection') is not None:
            self.disconnect((marker['connection_info'], marker['props']),
                            marker['host_connection'], force=True)
        conf = marker.get('rbd_conf')
        if _is_brick_rbd_conf(conf):
            try:
                os.unlink(conf)
            except FileNotFoundError:
                pass
        if marker.get('attachment_id'):
            api.attachment_delete(marker['attachment_id'], volume_id)
        self._forget_upload(volume_id)

    def _forget_upload(self, volume_id):
        try:
            os.unlink(self._upload_marker(volume_id))
        except FileNotFoundError:
            pass

    def _check_not_uploading(self, volume_id):
        try:
            with open(self._upload_marker(volume_id)) as f:
                writer = json.load(f)
        except (OSError, ValueError):
            return
        if _alive(writer.get('pid', 0), writer.get('start')):
            raise exceptions.BackendException(
                'Volume %s is still being written by an upload on this host '
                '(process %s)' % (volume_id, writer['pid']))

    # -- joining and leaving ----------------------------------------------

    def acquire(self, api, volume_id):
        """Join (or make) the share of ``volume_id``; returns a Lease."""
        os.makedirs(self.dir, exist_ok=True)
        if not self._swept:
            self._swept = True
            self.sweep(api)
        self._check_not_uploading(volume_id)
        with self._lock(volume_id):
            state = self._load(volume_id)
            if state is not None:
                self._reclaim(volume_id, state)
            created = state is None
            if created:
                state, device, handle_info = self._attach(api, volume_id)
            else:
                device, handle_info = self._join(volume_id, state)
            pid, start = self._identity()
            holder = state['readers'].setdefault(
                str(pid), {'start': start, 'count': 0})
            holder['count'] += 1
            conf = rbd_conf(handle_info)
            if conf:
                holder.setdefault('rbd_confs', []).append(conf)
            try:
                self._save(volume_id, state)
            except BaseException:
                # Unrecorded, so nobody else would release it.
                device.close()
                if created:
                    self._detach(api, volume_id, state)
                raise
        return Lease(self, api, volume_id, device,
                     (state['connection_info'], state['props']), handle_info)

    def _attach(self, api, volume_id):
        """A new attachment; retried while another host holds the volume.

        :returns: (state, device, this reader's own handle info or None)
        """
        for attempt in range(self.retries):
            attachment = attachments.Attachment(api, self.host, volume_id,
                                                'ro', direct=self.direct)
            try:
                device = attachment.open()
                break
            except exceptions.BackendException as e:
                busy = 'status must be available' in str(e)
                if busy and api.get(volume_id).status not in (
                        'in-use', 'attaching', 'reserved', 'available'):
                    raise exceptions.NotFound(
                        message='Volume %s cannot be read: %s'
                                % (volume_id, e))
                if not busy or attempt == self.retries - 1:
                    if busy:
                        raise exceptions.BackendException(
                            'Volume %s is attached elsewhere (another host '
                            'or an upload still running) and its type is '
                            'not multiattach; gave up after %d attempts. '
                            'Use a multiattach volume type for images read '
                            'from several hosts at once. Cinder said: %s'
                            % (volume_id, self.retries, e))
                    raise
                delay = min(2 ** attempt, 10)
                LOG.info('Volume %s is attached elsewhere; attempt %d of %d, '
                         'retrying in %ds', volume_id, attempt + 1,
                         self.retries, delay)
                self._sleep(delay)
        shared = isinstance(attachment.device_info['path'], str)
        state = {'attachment_id': attachment.attachment_id,
                 'connection_info': attachment.connection_info,
                 'props': attachment.props,
                 'host_connection': (attachment.device_info if shared
                                     else None),
                 'readers': {}}
        LOG.info('Volume %s attached read-only for reading (attachment %s)',
                 volume_id, attachment.attachment_id)
        return state, device, (None if shared else attachment.device_info)

    def _join(self, volume_id, state):
        """The device of an existing share, for one more reader."""
        if state['host_connection'] is not None:
            path = state['host_connection']['path']
            return devices.open_device(path, False, volume_id,
                                       direct=self.direct), None
        # A file-like handle (RBD) is per process: connect our own.
        connector = self.host.connector(state['connection_info'])
        try:
            info = connector.connect_volume(state['props'])
        except Exception as e:
            raise exceptions.BackendException(
                'Connecting volume %s to this host failed: %s'
                % (volume_id, e))
        return devices.open_device(
            info['path'], False, volume_id,
            rbd_op_timeout=self.host.rbd_op_timeout), info

    def leave(self, api, volume_id, conf=None):
        """One reader of this process left (``conf``: its RBD handle's)."""
        with self._lock(volume_id):
            state = self._load(volume_id)
            if state is None:
                return
            pid = str(self._identity()[0])
            holder = state['readers'].get(pid)
            if holder is not None:
                if conf in holder.get('rbd_confs', ()):
                    holder['rbd_confs'].remove(conf)
                holder['count'] -= 1
                if holder['count'] <= 0:
                    del state['readers'][pid]
            self._settle(api, volume_id, state)

    def disconnect(self, connection, device_info, force=False):
        """Disconnect; ``connection`` is (connection_info, props)."""
        connection_info, props = connection
        try:
            self.host.disconnect(self.host.connector(connection_info), props,
                                 device_info, force=force)
        except Exception as e:
            LOG.error('Disconnecting volume from this host failed: %s', e)

    def _detach(self, api, volume_id, state):
        """The last reader left: disconnect, delete the attachment."""
        if state['host_connection'] is not None:
            self.disconnect((state['connection_info'], state['props']),
                            state['host_connection'], force=True)
        try:
            api.attachment_delete(state['attachment_id'], volume_id)
        except exceptions.NotFound:
            pass  # released elsewhere (reconcile, an operator)
        except Exception as e:
            LOG.error('Deleting read attachment %s of volume %s failed: %s',
                      state['attachment_id'], volume_id, e)
        self._save(volume_id, None)
        LOG.info('Volume %s: last reader on this host left; read-only '
                 'attachment %s released', volume_id, state['attachment_id'])

    def sweep(self, api):
        """Release the shares that no live process holds."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith('.json'):
                volume_id = name[:-5]
                with self._lock(volume_id):
                    state = self._load(volume_id)
                    if state is not None:
                        self._settle(api, volume_id, state)

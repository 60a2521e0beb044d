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

The share of a volume is a record ``<volume id>.json`` among the host's
records (:mod:`~cinder_ext_store.host_records`): the attachment id, its
connection, the host connection (a device path and the device's identity)
and the readers, counted per process. Every change happens under a lock
that is both a thread lock and a file lock (oslo.concurrency's external
lock of that volume).

The first reader records the share *before* it asks Cinder for the
attachment (``pending``: the volume's attachments before it, this host),
so that a reader killed in the attach window leaves a record that finds
the attachment. Later readers open the recorded device only if it is still
the device recorded (its device number); a file-like RBD handle cannot be
shared between processes, so each reader then connects its own. The last
reader to leave disconnects and deletes the attachment. A reader process
that died (SIGKILL, OOM) leaves its count behind; whoever takes the lock
next drops the counts of dead processes, and :meth:`ReadShares.sweep` (run
at a process's first read) releases shares that nobody alive holds.
"""

import logging
import time

from glance_store import exceptions
from oslo_concurrency import lockutils

from cinder_ext_store import attachments
from cinder_ext_store import devices
from cinder_ext_store import errors
from cinder_ext_store import host_records

LOG = logging.getLogger(__name__)

SUFFIX = '.json'


class Lease(object):
    """One reader's hold on a shared attachment.

    A context manager; a reader whose lease outlives one block (an
    iterator handed to Glance) calls :meth:`release` itself (once is
    enough: later calls do nothing).
    """

    def __init__(self, shares, api, volume_id, device, own=None):
        self._shares = shares
        self._api = api
        self.volume_id = volume_id
        self.device = device
        self._own = own  # this reader's own connection (RBD), or None
        self.released = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def release(self):
        if self.released:
            return
        self.released = True
        conf = None
        if self._own is not None:
            conf = host_records.rbd_conf(self._own.device_info)
            self._own.abort()  # its device, its handle; read-only
        else:
            self.device.close()
        self._shares.leave(self._api, self.volume_id, conf)


class ReadShares(object):
    """The shared read attachments of this host.

    :param records: the host's :class:`~cinder_ext_store.host_records.
        Records`
    :param host: the :class:`~cinder_ext_store.brick_host.BrickHost`
    :param uploads: this host's :class:`~cinder_ext_store.upload_markers.
        UploadMarkers` (a volume being written is not read)
    :param retries: attachment attempts while another host holds a
        non-multiattach volume (``cinder_attachment_retry_attempts``)
    :param direct: read with O_DIRECT where the device allows it
    """

    def __init__(self, records, host, uploads, retries=5, direct=False,
                 sleep=time.sleep):
        self.records = records
        self.dir = records.dir
        self.host = host
        self.uploads = uploads
        self.retries = retries
        self.direct = direct
        self._sleep = sleep
        self._swept = False

    # -- state -----------------------------------------------------------

    def _name(self, volume_id):
        return volume_id + SUFFIX

    def lock(self, volume_id):
        """The lock of the volume's share (thread and file lock)."""
        return lockutils.lock('cinder_ext-read-%s' % volume_id,
                              external=True, lock_path=self.dir)

    def _load(self, volume_id):
        try:
            state = self.records.load(self._name(volume_id))
        except ValueError as e:
            self.records.move_aside(self._name(volume_id), e)
            return None
        if state is None:
            return None
        if not (isinstance(state, dict) and 'attachment_id' in state and
                isinstance(state.get('readers'), dict)):
            self.records.move_aside(self._name(volume_id),
                                    'not a read share record')
            return None
        return state

    def _save(self, volume_id, state):
        self.records.save(self._name(volume_id), state)

    def _reclaim(self, volume_id, state):
        """Drop the counts of processes that are gone, and their files.

        Only of processes of this place: a reader recorded in another PID
        namespace, boot or host is kept (see host_records).
        """
        for name, holder in list(state['readers'].items()):
            if _judge(name, holder) == host_records.DEAD:
                LOG.warning('Read share of volume %s: reclaiming %d '
                            'reference(s) of dead process %s', volume_id,
                            holder['count'], host_records.pid_of(name))
                for conf in holder.get('rbd_confs', ()):
                    host_records.remove_rbd_conf(conf)
                del state['readers'][name]

    def _keep_or_release(self, api, volume_id, state):
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
        self.records.ensure_dir()
        with self.lock(volume_id):
            state = self._load(volume_id)
            return 0 if state is None else self._keep_or_release(
                api, volume_id, state)

    def states(self):
        """(volume id, state) of every readable share record."""
        for volume_id in self.records.names(SUFFIX):
            with self.lock(volume_id):
                try:
                    state = self._load(volume_id)
                except exceptions.BackendException as e:
                    LOG.error('Read share of volume %s skipped: %s',
                              volume_id, e)
                    continue
            if state is not None:
                yield volume_id, state

    def dead_shares(self):
        """(volume id, state) of read shares no live process holds.

        A share any reader of another place holds is not dead.
        """
        for volume_id, state in self.states():
            if all(_judge(name, holder) == host_records.DEAD
                   for name, holder in state['readers'].items()):
                yield volume_id, state

    def foreign_shares(self):
        """(volume id, [holder]) of shares readers of another place hold."""
        for volume_id, state in self.states():
            foreign = [dict(holder, pid=host_records.pid_of(name))
                       for name, holder in state['readers'].items()
                       if _judge(name, holder) == host_records.FOREIGN]
            if foreign:
                yield volume_id, foreign

    # -- joining and leaving ----------------------------------------------

    def acquire(self, api, volume_id, size_gib=None):
        """Join (or make) the share of ``volume_id``; returns a Lease.

        :param size_gib: the volume's size as Cinder just showed it (else
            asked when a device is lent)
        """
        self.records.ensure_dir()
        if not self._swept:
            self._swept = True
            self.sweep(api)
        self.uploads.check_not_uploading(volume_id)
        with self.lock(volume_id):
            state = self._load(volume_id)
            if state is not None:
                self._reclaim(volume_id, state)
                if state.get('pending') or not state['readers']:
                    # Left by readers that died, one in the attach window.
                    self._detach(api, volume_id, state)
                    state = None
            created = state is None
            if created:
                state, device, own = self._attach(api, volume_id, size_gib)
            else:
                device, own = self._join(api, volume_id, state)
            me = host_records.identity()
            holder = state['readers'].setdefault(
                host_records.key(me), _holder(me))
            holder['count'] += 1
            conf = host_records.rbd_conf(
                own.device_info if own is not None else None)
            if conf:
                holder.setdefault('rbd_confs', []).append(conf)
            try:
                self._save(volume_id, state)
            except BaseException:
                # Unrecorded, so nobody else would release it.
                if own is not None:
                    own.abort()
                else:
                    device.close()
                if created:
                    self._detach(api, volume_id, state)
                raise
        return Lease(self, api, volume_id, device, own)

    def _attach(self, api, volume_id, size_gib=None):
        """A new attachment, recorded before it is asked for.

        Retried while another host holds the volume.

        :returns: (state, device, this reader's own Attachment or None):
            a file-like handle (RBD) is this reader's alone, to close with
            its lease; the share keeps the Cinder attachment
        """
        me = host_records.identity()
        backoff = _Backoff(self.retries, api.tuning)
        while True:
            request = {'before': sorted(api.attachment_ids(volume_id)),
                       'host': self.host.connector_properties().get('host')}
            self._save(volume_id, {
                'attachment_id': None, 'pending': request,
                'readers': {host_records.key(me): _holder(me)}})
            attachment = attachments.Attachment(
                api, self.host, volume_id, 'ro', direct=self.direct,
                before=request['before'], size_gib=size_gib)
            try:
                device = attachment.open()
                break
            except BaseException as e:
                self._forget_pending(api, volume_id, request)
                if not isinstance(e, exceptions.BackendException):
                    raise
                busy = 'status must be available' in str(e)
                volume = api.get(volume_id) if busy else None
                if busy and volume.status not in (
                        'in-use', 'attaching', 'reserved', 'available'):
                    raise exceptions.NotFound(
                        message='Volume %s cannot be read: %s'
                                % (volume_id, e))
                if not busy:
                    raise
                delay = backoff.next(getattr(volume, 'multiattach', False))
                if delay is None:
                    raise _busy(volume, backoff.attempts, e)
                LOG.info('Volume %s is being attached elsewhere or is '
                         'attached and not multiattach; attempt %d, retrying '
                         'in %.1fs', volume_id, backoff.attempts, delay)
                self._sleep(delay)
        shared = isinstance(attachment.device_info['path'], str)
        host_connection = None
        if shared:
            host_connection = dict(attachment.device_info)
            host_connection['identity'] = host_records.device_identity(
                attachment.device_info['path'])
        state = {'attachment_id': attachment.attachment_id,
                 'connection_info': host_records.without_secrets(
                     attachment.connection_info),
                 'props': host_records.without_secrets(attachment.props),
                 'host_connection': host_connection,
                 'readers': {}}
        self.records.note_backend(self.uploads.backend, attachment.props)
        LOG.info('Volume %s attached read-only for reading (attachment %s)',
                 volume_id, attachment.attachment_id)
        attachment.owner = False
        return state, device, (None if shared else attachment)

    def _forget_pending(self, api, volume_id, request):
        """Remove what a failed attach left: its attachment, its record.

        The attachment is there if Cinder made one and the cleanup missed
        it (an answer lost for good).
        """
        try:
            self._release_pending(api, volume_id, request)
            self._save(volume_id, None)
        except Exception as e:
            LOG.error('Volume %s: the provisional read record of a failed '
                      'attach stays for the next reader or reconcile: %s',
                      volume_id, e)

    @staticmethod
    def _release_pending(api, volume_id, request, completed=False):
        """Delete the attachment a recorded request made, if it did.

        :param completed: the request's process may have completed it (it
            died after the attach; a failed attach undid its own)
        """
        for attachment_id in api.attachments_made_since(
                volume_id, set(request['before']), 'ro', request['host'],
                completed=completed):
            api.attachment_delete(attachment_id, volume_id)

    def _join(self, api, volume_id, state):
        """The device of an existing share, for one more reader.

        :returns: (device, this reader's own Attachment or None)
        """
        shared = state['host_connection']
        if shared is not None:
            path = shared['path']
            try:
                now = host_records.device_identity(path)
            except OSError as e:
                now = str(e)
            if now != shared.get('identity'):
                raise exceptions.BackendException(
                    'Volume %s: the read share names %s, which is not the '
                    'device recorded at attach time (%s, now %s); refusing '
                    'to open it' % (volume_id, path, shared.get('identity'),
                                    now))
            return devices.open_device(path, False, volume_id,
                                       direct=self.direct,
                                       tuning=api.tuning), None
        # A file-like handle (RBD) is per process: connect our own.
        own = attachments.Attachment.adopt(api, self.host, volume_id,
                                           state, owner=False)
        own.device_info = None  # nothing of ours is connected yet
        return own.connect(), own

    def leave(self, api, volume_id, conf=None):
        """One reader of this process left (``conf``: its RBD handle's)."""
        with self.lock(volume_id):
            state = self._load(volume_id)
            if state is None:
                return
            name = host_records.key(host_records.identity())
            holder = state['readers'].get(name)
            if holder is not None:
                if conf in holder.get('rbd_confs', ()):
                    holder['rbd_confs'].remove(conf)
                holder['count'] -= 1
                if holder['count'] <= 0:
                    del state['readers'][name]
            self._keep_or_release(api, volume_id, state)

    def _detach(self, api, volume_id, state):
        """The last reader left: disconnect, delete the attachment."""
        if state.get('pending'):
            # A reader died between recording and recording the answer.
            self._release_pending(api, volume_id, state['pending'],
                                  completed=True)
            self._save(volume_id, None)
            LOG.warning('Volume %s: released the attachment of a reader '
                        'that died while attaching', volume_id)
            return
        attachment = attachments.Attachment.adopt(api, self.host, volume_id,
                                                  state)
        try:
            attachment.release()
        except Exception as e:
            LOG.error('Deleting read attachment %s of volume %s failed: %s',
                      state['attachment_id'], volume_id, e)
        self._save(volume_id, None)
        LOG.info('Volume %s: last reader on this host left; read-only '
                 'attachment %s released', volume_id, state['attachment_id'])

    def sweep(self, api):
        """Release the shares that no live process holds."""
        for volume_id in self.records.names(SUFFIX):
            with self.lock(volume_id):
                try:
                    state = self._load(volume_id)
                    if state is not None:
                        self._keep_or_release(api, volume_id, state)
                except Exception as e:
                    LOG.error('Read share of volume %s not swept: %s',
                              volume_id, e)


class _Backoff(object):
    """Waits between attachment attempts Cinder refused as busy.

    ``retries`` attempts 1, 2, 4, 8, 10... s apart while another host
    holds a non-multiattach volume. A multiattach volume is busy only while
    another attachment of it is being made (Cinder makes one at a time,
    which takes a second or so): it is tried again sooner and more often,
    within the same total wait.
    """

    def __init__(self, retries, tuning):
        self.retries = retries
        self.tuning = tuning
        self.budget = sum(min(2 ** i, 10) for i in range(retries - 1))
        self.attempts = 0
        self.waited = 0.0

    def next(self, multiattach):
        """Seconds to wait before the next attempt; None: give up."""
        self.attempts += 1
        if multiattach:
            delay = min(self.tuning.attach_retry_first *
                        1.5 ** (self.attempts - 1),
                        self.tuning.attach_retry_max)
            if self.waited + delay > self.budget:
                return None
        else:
            if self.attempts >= self.retries:
                return None
            delay = min(2 ** (self.attempts - 1), 10)
        self.waited += delay
        return delay


def _busy(volume, attempts, error):
    """What a reader gets when Cinder kept refusing it the volume.

    Glance answers 503 with the message: the holder may be done soon, and
    the message names the fix.
    """
    if getattr(volume, 'multiattach', False):
        why = ('another attachment of it was being made all along (Cinder '
               'makes one attachment of a volume at a time)')
    else:
        why = ('it is attached elsewhere (another glance-api host, or an '
               'upload still running) and its type is not multiattach. Use '
               'a multiattach volume type for images read from several '
               'hosts at once')
    return errors.Busy(
        message='Volume %s could not be attached for reading after %d '
                'attempts: %s. Cinder said: %s'
                % (volume.id, attempts, why, error))


def _holder(process):
    """A new reader entry of ``process`` (host_records.identity())."""
    entry = {k: process[k] for k in ('start',) + host_records.PLACE}
    entry['count'] = 0
    return entry


def _judge(name, holder):
    """How this process sees the reader ``name`` of a share."""
    return host_records.judge(dict(holder, pid=host_records.pid_of(name)))

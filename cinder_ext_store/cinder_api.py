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

"""The Cinder API as the store needs it.

A :class:`CinderAPI` is the per-request view of Cinder (made by a
:class:`~cinder_ext_store.cinder_session.CinderSession`, which holds the
credentials): it picks the microversion of each call, retries what failed
transiently, recovers requests whose answer was lost, waits for status
transitions and translates Cinder errors into glance_store exceptions that
name the volume. Cinder's size unit lives here too (:meth:`CinderAPI.gib_for`).
"""

import contextlib
import datetime
import logging
import uuid

from cinderclient import exceptions as cinder_exc
from glance_store import exceptions
from keystoneauth1 import exceptions as ksa_exc

from cinder_ext_store import errors
from cinder_ext_store import tuning as tuning_mod

LOG = logging.getLogger(__name__)

# Microversions: attachments (3.27) with os-complete (3.44) and a mode
# (3.54); extending an in-use volume needs 3.42. Everything else is 3.0.
MV_BASE = '3.0'
MV_ATTACH = '3.54'
MV_EXTEND_ATTACHED = '3.42'

#: HTTP statuses that say "not now" rather than "never".
TRANSIENT_STATUSES = (500, 502, 503, 504)

#: Cinder's user-message details that mean "no room": no valid backend
#: (003), quota (006), not enough space for the image (007); an event id
#: ends with its detail ('VOLUME_VOLUME_001_003').
_NO_ROOM = ('_003', '_006', '_007')

#: What a recovery returns when the failed request left nothing behind.
RETRY = object()


class ExtendRefused(exceptions.BackendException):
    """Cinder refused to extend an attached volume; the offline path may.

    ``maybe_capacity``: Cinder gave no reason (its scheduler left the volume
    at its old size), which a pool without online extend and a full pool
    look the same from outside.
    """

    def __init__(self, message, maybe_capacity=False):
        super(ExtendRefused, self).__init__(message)
        self.maybe_capacity = maybe_capacity


def transient(error):
    """Whether a failed request may succeed when sent again.

    Connection failures and timeouts (the request may or may not have
    reached Cinder) and 5xx answers; never a 4xx, which Cinder would give
    again.
    """
    if isinstance(error, (ksa_exc.RetriableConnectionFailure,
                          ksa_exc.UnknownConnectionError)):
        return True
    status = getattr(error, 'code', None) or getattr(error, 'http_status',
                                                     None)
    return status in TRANSIENT_STATUSES


#: Volume metadata key of the token each create of this store carries: a
#: lost answer is recovered only by the volume that carries the token the
#: request sent (another store's volume of the same image never does), and
#: reconcile knows the store's own volumes by it.
CREATE_TOKEN = 'cinder_ext_create'


def made_by_store(volume):
    """Whether this store created ``volume`` (it carries a create token)."""
    return bool((getattr(volume, 'metadata', None) or {}).get(CREATE_TOKEN))


def created_at(volume):
    """When Cinder created the volume (naive UTC), or None."""
    return _stamp(volume, 'created_at')


def updated_at(volume):
    """When Cinder last changed the volume (naive UTC), or None."""
    return _stamp(volume, 'updated_at') or created_at(volume)


def _stamp(volume, field):
    return parse_stamp(getattr(volume, field, None))


def parse_stamp(text):
    """A time stamp Cinder sent (ISO 8601), as naive UTC; None if none."""
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return stamp


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _what(action, volume_id):
    return '%s of volume %s' % (action, volume_id) if volume_id else action


@contextlib.contextmanager
def translated(action, volume_id=None):
    """Re-raise Cinder and keystoneauth errors as glance_store exceptions."""
    what = _what(action, volume_id)
    try:
        yield
    except exceptions.GlanceStoreException:
        raise
    except cinder_exc.OverLimit as e:
        raise exceptions.StorageFull(
            message='Cinder quota exceeded during %s: %s' % (what, e))
    except cinder_exc.NotFound as e:
        raise exceptions.NotFound(
            message='Cinder: %s failed, not found: %s' % (what, e))
    except (cinder_exc.Forbidden, cinder_exc.Unauthorized) as e:
        raise exceptions.Forbidden(
            message='Cinder refused %s: %s' % (what, e))
    except ksa_exc.ConnectTimeout as e:
        raise errors.TimedOut('Cinder did not answer %s in time: %s'
                              % (what, e))
    except (cinder_exc.ClientException, ksa_exc.ClientException) as e:
        raise exceptions.BackendException(
            'Cinder: %s failed: %s' % (what, e))


class CinderAPI(object):
    """Cinder calls of one request, with retries, waiting and translation.

    Every call goes through :meth:`_request`: a transient failure (see
    :func:`transient`) is retried ``retries`` times. Calls Cinder may have
    carried out although the answer was lost (create, attach, extend,
    delete) first ask Cinder what the lost request did, so that a retry
    never makes a second volume or attachment.

    :param client_for: callable(microversion) -> cinderclient Client
    :param timeout: bound, in seconds, of every status wait
    :param retries: retries of a request that failed transiently
    :param tuning: a :class:`~cinder_ext_store.tuning.Tuning` (polling,
        retry waits, the GiB)
    """

    def __init__(self, client_for, timeout, retries=3, tuning=None):
        self._client_for = client_for
        self._clients = {}
        self.timeout = timeout
        self.retries = retries
        self.tuning = tuning or tuning_mod.DEFAULT

    # -- sizes -------------------------------------------------------------

    @property
    def gib(self):
        """Cinder's size unit, in bytes."""
        return self.tuning.gib

    def gib_for(self, nbytes):
        """Whole GiB for ``nbytes`` (Cinder sizes: whole GiB, at least 1)."""
        return max(1, -(-nbytes // self.gib))

    def bytes_for(self, size_gib):
        """The bytes of ``size_gib`` GiB (a volume's ``size``)."""
        return size_gib * self.gib

    def _client(self, version=MV_BASE):
        if version not in self._clients:
            self._clients[version] = self._client_for(version)
        return self._clients[version]

    def _request(self, what, call, recover=None, volume_id=None):
        """``call()``, retried while it fails transiently; translated.

        :param recover: callable() run before each retry, for requests that
            are not idempotent: returns what the lost request made (the
            result), or :data:`RETRY` when it made nothing
        """
        delay = self.tuning.retry_first
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as e:
                if attempt == self.retries or not transient(e):
                    with translated(what, volume_id):
                        raise
                LOG.warning('Cinder: %s failed (%s); retrying in %.1fs '
                            '(retry %d of %d)', _what(what, volume_id), e,
                            delay, attempt + 1, self.retries)
            self.tuning.backoff(delay)
            delay = min(delay * 2, self.tuning.retry_max)
            if recover is not None:
                found = recover()
                if found is not RETRY:
                    return found

    # -- volumes -----------------------------------------------------------

    def get(self, volume_id):
        return self._request('lookup', lambda: self._client().volumes.get(
            volume_id), volume_id=volume_id)

    def create(self, size_gib, name, metadata, volume_type=None):
        """Create a volume and wait until it is ``available``.

        A volume that fails or times out while creating is deleted before
        the error is raised, also when the wait is interrupted
        (KeyboardInterrupt, SystemExit): nothing is left behind.
        """
        metadata = dict(metadata, **{CREATE_TOKEN: uuid.uuid4().hex})
        volume = self._request(
            'creation of a %d GiB volume' % size_gib,
            lambda: self._client().volumes.create(
                size_gib, name=name, metadata=metadata,
                volume_type=volume_type),
            recover=lambda: self._made_by_lost_create(name, metadata))
        LOG.debug('Volume %s (%d GiB) requested', volume.id, size_gib)
        try:
            made = self.wait_while(volume.id, ('creating',), 'creation')
            if made.status != 'available':
                raise self._create_failed(made)
            return made
        except BaseException:
            self.delete_quietly(volume.id)
            raise

    def _create_failed(self, volume):
        """The error of a create Cinder gave up, with Cinder's reason.

        Cinder says why in its user messages (microversion 3.3): no pool
        with room ("no valid backend"), quota, an image too large for the
        space are StorageFull (Glance answers 413); anything else, or no
        message, is a backend failure.
        """
        reasons = self.user_messages(volume.id)
        text = 'Cinder could not create volume %s (status %s): %s' % (
            volume.id, volume.status,
            '; '.join(m for _, m in reasons) or
            'no reason in its user messages')
        if any(event.endswith(_NO_ROOM) for event, _ in reasons):
            return exceptions.StorageFull(message=text)
        return exceptions.BackendException(text)

    def user_messages(self, volume_id):
        """(event id, user message) Cinder recorded about the volume.

        Best effort: [] when Cinder has none or does not show them.
        """
        def find():
            return [(getattr(m, 'event_id', '') or '',
                     getattr(m, 'user_message', '') or '')
                    for m in self._client(MV_ATTACH).messages.list(
                        search_opts={'resource_uuid': volume_id})]
        try:
            return self._request('user messages', find, volume_id=volume_id)
        except Exception as e:
            LOG.debug('Volume %s: no user messages: %s', volume_id, e)
            return []

    def _made_by_lost_create(self, name, metadata):
        """The volume a create whose answer was lost made, or RETRY.

        Only a volume carrying this request's token is ours: another store
        (a second backend, the in-tree driver) may be writing a volume of
        the same name, metadata, size and type for the same image at the
        same time, and that one is never adopted nor deleted.
        """
        token = metadata[CREATE_TOKEN]
        with translated('search for volume %s' % name):
            found = self._client().volumes.list(search_opts={'name': name})
        mine = [v for v in found
                if (v.metadata or {}).get(CREATE_TOKEN) == token]
        if not mine:
            return RETRY
        # Each retry sends the same token: several lost answers may have
        # made several volumes, all of them this request's.
        mine.sort(key=lambda v: created_at(v) or datetime.datetime.min)
        for extra in mine[1:]:
            self.delete_quietly(extra.id)
        LOG.info('Volume %s was created by a request whose answer was '
                 'lost; using it', mine[0].id)
        return mine[0]

    def volumes(self):
        """Every volume of the project, all pages."""
        def list_all():
            found, marker = [], None
            while True:
                page = self._client().volumes.list(marker=marker, limit=500)
                found.extend(page)
                if len(page) < 500:
                    return found
                marker = page[-1].id
        return self._request('volume listing', list_all)

    def wait_while(self, volume_id, transitional, waiting_for):
        """Poll until the volume's status leaves ``transitional``.

        :raises BackendException: on timeout, naming the volume, its status
            and what was awaited
        """
        t = self.tuning
        started = t.clock()
        deadline = started + self.timeout
        report = started + t.wait_report
        delays = t.poll_delays()
        while True:
            volume = self.get(volume_id)
            if volume.status not in transitional:
                return volume
            now = t.clock()
            if now >= report:
                # A slow Cinder shows in the log while it is slow.
                LOG.info('Still waiting for %s of volume %s after %.0fs: '
                         'status %r', waiting_for, volume_id, now - started,
                         volume.status)
                report = now + t.wait_report
            if now >= deadline:
                raise errors.TimedOut(
                    'Timed out after %ss waiting for %s of volume %s: status '
                    'still %r' % (self.timeout, waiting_for, volume_id,
                                  volume.status))
            t.sleep(next(delays))

    def wait(self, volume_id, expected, transitional, waiting_for):
        """:meth:`wait_while`, then insist on status ``expected``."""
        volume = self.wait_while(volume_id, transitional, waiting_for)
        if volume.status != expected:
            raise exceptions.BackendException(
                'Volume %s is %r after %s, expected %r'
                % (volume_id, volume.status, waiting_for, expected))
        return volume

    @staticmethod
    def _deleted(show):
        """Recovery of a lost delete (of a volume or an attachment).

        Done when ``show()`` finds nothing, or finds it being deleted; else
        the delete is sent again.
        """
        try:
            if getattr(show(), 'status', None) == 'deleting':
                return None
        except cinder_exc.NotFound:
            return None
        except Exception:
            pass  # ask again by deleting again
        return RETRY

    def delete(self, volume_id):
        volumes = self._client().volumes
        self._request('deletion', lambda: volumes.delete(volume_id),
                      recover=lambda: self._deleted(
                          lambda: volumes.get(volume_id)),
                      volume_id=volume_id)

    def delete_with_attachments(self, volume_id):
        """Delete a volume whatever holds it; errors are raised.

        A refused delete (an attached volume, one still 'creating' or
        'extending') deletes the volume's attachments, waits for a status
        that allows deletion, and tries again. A volume left 'in-use' with
        no attachment (Cinder does that when a queued extend finishes after
        the last detach) is set free with the legacy detach, which the
        volume's own project may call. Still refused (stuck), it
        force-deletes, which Cinder allows admins only.
        """
        try:
            self.delete(volume_id)
            return
        except exceptions.NotFound:
            raise
        except exceptions.BackendException as e:
            LOG.warning('Volume %s: %s; deleting its attachments and trying '
                        'again', volume_id, e)
        for attachment_id in self.attachment_ids(volume_id):
            self.attachment_delete(attachment_id, volume_id)
        try:
            self.wait_while(volume_id, ('detaching', 'attaching',
                                        'reserved', 'creating', 'extending'),
                            'a status that allows deletion')
        except exceptions.NotFound:
            raise
        except exceptions.BackendException as e:
            LOG.warning('%s', e)
        if self.release_unattached(volume_id):
            try:
                self.wait_while(volume_id, ('in-use', 'detaching'),
                                'detach')
            except exceptions.NotFound:
                raise
            except exceptions.BackendException as e:
                LOG.warning('%s', e)
        try:
            self.delete(volume_id)
        except exceptions.NotFound:
            raise
        except exceptions.BackendException as e:
            LOG.warning('Volume %s: %s; force-deleting it', volume_id, e)
            self.force_delete(volume_id)

    def release_unattached(self, volume_id):
        """Free a volume 'in-use' without attachments; True if it was.

        Cinder's legacy os-detach without an attachment id, on a volume
        with none, only resets the status to 'available' (its volume
        manager's backward-compatible path); the policy allows the volume's
        own project, where os-force_delete and os-reset_status need an
        admin.
        """
        if self.get(volume_id).status != 'in-use' or self.attachment_ids(
                volume_id):
            return False
        LOG.warning('Volume %s is in-use without attachments; detaching it '
                    'to make it deletable', volume_id)
        self._request('detach', lambda: self._client().volumes.detach(
            volume_id), volume_id=volume_id)
        return True

    def delete_quietly(self, volume_id):
        """Best-effort delete for failure paths: never masks the cause.

        :meth:`delete_with_attachments`, with every error logged.

        :returns: False when the volume is left behind
        """
        try:
            self.delete_with_attachments(volume_id)
            LOG.info('Deleted volume %s after a failed operation', volume_id)
        except exceptions.NotFound:
            LOG.info('Volume %s is already gone', volume_id)
        except Exception:
            LOG.exception('Could not delete volume %s; it is left behind: '
                          'delete it by hand or run cinder-ext-store '
                          'reconcile', volume_id)
            return False
        return True

    def force_delete(self, volume_id):
        """Delete whatever the status (admin only in Cinder's policy)."""
        volumes = self._client().volumes
        self._request('force deletion',
                      lambda: volumes.force_delete(volume_id),
                      recover=lambda: self._deleted(
                          lambda: volumes.get(volume_id)),
                      volume_id=volume_id)

    def set_metadata(self, volume_id, metadata):
        self._request('metadata update', lambda: self._client(
        ).volumes.set_metadata(volume_id, metadata), volume_id=volume_id)

    def rename(self, volume_id, name, metadata):
        """Set the volume's name and *replace* its metadata, in one call."""
        self._request('rename', lambda: self._client().volumes.update(
            volume_id, name=name, metadata=metadata), volume_id=volume_id)

    def set_readonly(self, volume_id):
        self._request('read-only update', lambda: self._client(
        ).volumes.update_readonly_flag(volume_id, True), volume_id=volume_id)

    def extend(self, volume_id, new_gib, attached):
        """Ask Cinder for ``new_gib``; returns once the request is accepted.

        :raises ExtendRefused: when an in-use extend is refused (policy 403
            or microversion/state 400): the caller may go offline instead
        :raises StorageFull: quota (413)
        """
        version = MV_EXTEND_ATTACHED if attached else MV_BASE
        what = 'extension to %d GiB' % new_gib

        def extend():
            try:
                self._client(version).volumes.extend(volume_id, new_gib)
            except (cinder_exc.Forbidden, cinder_exc.BadRequest) as e:
                if not attached:
                    raise
                raise ExtendRefused(
                    'Cinder refused the in-use %s of volume %s (HTTP %s): '
                    '%s' % (what, volume_id, e.code, e))

        self._request(what, extend,
                      recover=lambda: self._extending(volume_id, new_gib),
                      volume_id=volume_id)

    def _extending(self, volume_id, new_gib):
        """Recovery of a lost extend: accepted when Cinder is on it."""
        volume = self.get(volume_id)
        if volume.status == 'extending' or volume.size >= new_gib:
            return None
        return RETRY

    # -- attachments -------------------------------------------------------

    def attachment_ids(self, volume_id):
        """Every attachment of the volume, in any status."""
        return self._request('attachment listing', lambda: [
            a.id for a in self._client(MV_ATTACH).attachments.list(
                search_opts={'volume_id': volume_id})], volume_id=volume_id)

    def attachment_create(self, volume_id, connector, mode, before=None):
        """Create an attachment for ``connector``; returns its dict.

        Passing the connector here makes Cinder export the volume in the
        same call, so ``connection_info`` comes back without an update.

        :param before: the ids of the volume's attachments before this
            request (looked up when None); a caller that records them first
            can find what a process that died before the answer made
        """
        attachments = self._client(MV_ATTACH).attachments
        if before is None:
            before = self.attachment_ids(volume_id)
        before = set(before)
        return self._request(
            'attachment (%s)' % mode,
            lambda: attachments.create(volume_id, connector, mode=mode),
            recover=lambda: self._undo_lost_attach(volume_id, before, mode,
                                                   connector.get('host')),
            volume_id=volume_id)

    def attachments_made_since(self, volume_id, before, mode, host,
                               completed=False):
        """Attachments of ``volume_id`` that one request of ``host`` made.

        Cinder shows neither an attachment's connector nor when it was
        made, and its host only once it is complete ('attached', to admins
        and services). A request's own attachment is one that was not there
        ``before``, in the ``mode`` it asked for (or none yet: Cinder
        reserves first, sets the mode once the driver answered), and

        * attached to ``host``, when the request's process may have
          completed it (``completed``: a reader that died after completing
          and before recording it) - never otherwise, since a request whose
          answer was lost never completes what it made;
        * or unattached for ``tuning.attach_settle`` seconds: another host
          completes its own attachment right after its create (it connects
          and completes at once), so one that stays unattached is the lost
          request's (or a dead one's).

        (Cinder refuses an instance id as a tag: only Nova may delete such
        an attachment.)
        """
        deadline = self.tuning.clock() + self.tuning.attach_settle
        delays = self.tuning.poll_delays()
        while True:
            new, hosts = self._new_attachments(volume_id, set(before), mode)
            unattached = [a for a in new if a not in hosts]
            if not unattached or self.tuning.clock() >= deadline:
                break
            LOG.debug('Volume %s: waiting to see whether attachment(s) %s '
                      'are completed by their maker', volume_id,
                      ', '.join(unattached))
            self.tuning.sleep(next(delays))
        attached = [a for a in new
                    if a in hosts and completed and hosts[a] == host]
        return attached + unattached

    def _new_attachments(self, volume_id, before, mode):
        """(ids not in ``before`` in ``mode``, {attached id: host})."""
        def find():
            client = self._client(MV_ATTACH)
            new = [a.id for a in client.attachments.list(
                search_opts={'volume_id': volume_id}, detailed=True)
                if a.id not in before and
                getattr(a, 'attach_mode', mode) in (mode, 'null', None)]
            if not new:
                return [], {}
            hosts = {a.get('attachment_id'): a.get('host_name')
                     for a in getattr(client.volumes.get(volume_id),
                                      'attachments', None) or ()}
            return new, hosts
        return self._request('attachment listing', find, volume_id=volume_id)

    def _undo_lost_attach(self, volume_id, before, mode, host):
        """Delete what an attachment create whose answer was lost made.

        Its connection_info went with the answer, so the attachment is of
        no use: deleted, and the create is sent again. Another host's
        attachment made meanwhile is left alone (see
        :meth:`attachments_made_since`).
        """
        for attachment_id in self.attachments_made_since(volume_id, before,
                                                         mode, host):
            LOG.info('Deleting attachment %s of volume %s, made by a '
                     'request whose answer was lost', attachment_id,
                     volume_id)
            self.attachment_delete(attachment_id, volume_id)
        return RETRY

    def attachment_complete(self, attachment_id, volume_id):
        self._request('attachment completion', lambda: self._client(
            MV_ATTACH).attachments.complete(attachment_id),
            volume_id=volume_id)

    def attachment_delete(self, attachment_id, volume_id):
        """Delete an attachment; one that is already gone is fine."""
        attachments = self._client(MV_ATTACH).attachments
        try:
            self._request('deletion of attachment %s' % attachment_id,
                          lambda: attachments.delete(attachment_id),
                          recover=lambda: self._deleted(
                              lambda: attachments.show(attachment_id)),
                          volume_id=volume_id)
        except exceptions.NotFound:
            LOG.warning('Attachment %s of volume %s was already deleted',
                        attachment_id, volume_id)

    def volume_type(self, name):
        """The volume type called ``name``, or None."""
        def find():
            try:
                return self._client().volume_types.find(name=name)
            except cinder_exc.NotFound:
                return None
        return self._request('lookup of volume type %s' % name, find)

    def volume_type_encrypted(self, vtype):
        """The type's encryption provider, '' if none, None if unknown.

        Cinder shows a type's encryption to admins only (policy
        ``volume_extension:volume_type_encryption:get``); for others it is
        unknown here and the store checks each volume's ``encrypted`` flag.

        :param vtype: a volume type from :meth:`volume_type`
        """
        name = vtype.name

        def lookup():
            try:
                found = self._client().volume_encryption_types.get(vtype)
            except (cinder_exc.Forbidden, cinder_exc.NotFound):
                return None
            return getattr(found, 'provider', None) or ''
        return self._request('encryption lookup of volume type %s' % name,
                             lookup)

    def quota_usage(self):
        """The project's Cinder quotas: {resource: (in use, limit)}.

        Limit -1 is unlimited; per-type resources are ``volumes_<type>`` and
        ``gigabytes_<type>``. A project member may read its own.
        """
        client = self._client()
        project = client.client.get_project_id()
        found = self._request('lookup of the quotas of project %s' % project,
                              lambda: client.quotas.get(project, usage=True))
        return {name: (value['in_use'], value['limit'])
                for name, value in found._info.items()
                if isinstance(value, dict) and 'limit' in value}

    def default_volume_type(self):
        return self._request('lookup of the default volume type',
                             lambda: self._client().volume_types.default(
                             ).name)

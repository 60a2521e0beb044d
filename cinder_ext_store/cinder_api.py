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

One :class:`CinderSession` per store instance holds that store's credentials
and TLS settings (the in-tree driver shares one global session between all
cinder stores). A :class:`CinderAPI` is the per-request view: it picks the
microversion of each call, waits for status transitions and translates
Cinder errors into glance_store exceptions that name the volume.
"""

import contextlib
import datetime
import logging
import os
import time
import uuid

from cinderclient import api_versions
from cinderclient import exceptions as cinder_exc
from cinderclient.v3 import client as cinder_v3
from glance_store import exceptions
from keystoneauth1.access import service_catalog
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import identity
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint

LOG = logging.getLogger(__name__)

# Microversions: attachments (3.27) with os-complete (3.44) and a mode
# (3.54); extending an in-use volume needs 3.42. Everything else is 3.0.
MV_BASE = '3.0'
MV_ATTACH = '3.54'
MV_EXTEND_ATTACHED = '3.42'

# Status polling: Cinder transitions take ~0.2-0.5 s on a healthy cloud, so
# start in tens of milliseconds and back off to a modest ceiling. The ceiling
# is what a slow transition (a busy volume service: ~3 s measured while it
# deleted the previous 2 GiB volume) is noticed late by, on average half of
# it; a GET costs Cinder ~40 ms, so two per second per upload is cheap.
POLL_FIRST = 0.02
POLL_FACTOR = 1.5
POLL_MAX = 0.5
#: Seconds between the log lines of a status wait that goes on.
WAIT_REPORT = 10.0

# Retries of a failed Cinder request (cinder_http_retries of them) wait
# RETRY_FIRST seconds, doubling up to RETRY_MAX: a restarting cinder-api or
# a load balancer that lost its backend answers again within seconds.
RETRY_FIRST = 0.5
RETRY_MAX = 4.0
#: HTTP statuses that say "not now" rather than "never".
TRANSIENT_STATUSES = (500, 502, 503, 504)

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
    try:
        stamp = datetime.datetime.fromisoformat(getattr(volume, field))
    except (AttributeError, TypeError, ValueError):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return stamp


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _verify_setting(conf):
    if conf.cinder_api_insecure:
        return False
    return conf.cinder_ca_certificates_file or True


def service_credentials_set(conf):
    """True when the store has its own (service) credentials configured."""
    if (conf.cinder_store_application_credential_id and
            conf.cinder_store_application_credential_secret):
        return bool(conf.cinder_store_auth_address)
    return all((conf.cinder_store_auth_address, conf.cinder_store_user_name,
                conf.cinder_store_password, conf.cinder_store_project_name))


def incomplete_credentials(conf):
    """Name the service-credential options that are set but insufficient.

    :returns: a message, or None when the credentials are complete or absent
    """
    password = ('cinder_store_auth_address', 'cinder_store_user_name',
                'cinder_store_password', 'cinder_store_project_name')
    appcred = ('cinder_store_auth_address',
               'cinder_store_application_credential_id',
               'cinder_store_application_credential_secret')
    given = [n for n in set(password + appcred) if conf.get(n)]
    if not given or service_credentials_set(conf):
        return None
    wanted = appcred if any('application' in n for n in given) else password
    missing = sorted(n for n in wanted if not conf.get(n))
    return ('service credentials are incomplete: %s set but %s missing'
            % (', '.join(sorted(given)), ', '.join(missing)))


class CinderSession(object):
    """The keystoneauth session of one store instance."""

    def __init__(self, conf):
        self.conf = conf
        self._session = None
        self._pid = None

    @property
    def session(self):
        # Glance forks its workers after it configured the stores: a
        # session (its connection pool, its token) made before the fork
        # is not shared with the children; each process makes its own.
        if self._session is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._session = ksa_session.Session(
                auth=self._service_auth(), verify=_verify_setting(self.conf),
                timeout=self.conf.cinder_ext_api_timeout)
        return self._session

    def _service_auth(self):
        conf = self.conf
        if not service_credentials_set(conf):
            return None
        if conf.cinder_store_application_credential_id:
            return identity.V3ApplicationCredential(
                auth_url=conf.cinder_store_auth_address,
                application_credential_id=(
                    conf.cinder_store_application_credential_id),
                application_credential_secret=(
                    conf.cinder_store_application_credential_secret))
        return identity.V3Password(
            auth_url=conf.cinder_store_auth_address,
            username=conf.cinder_store_user_name,
            password=conf.cinder_store_password,
            user_domain_name=conf.cinder_store_user_domain_name,
            project_name=conf.cinder_store_project_name,
            project_domain_name=conf.cinder_store_project_domain_name)

    def _context_auth(self, context):
        """Token auth for the request's user, at the endpoint we resolve."""
        conf = self.conf
        if context is None:
            raise exceptions.BadStoreConfiguration(
                store_name='cinder_ext',
                reason='no service credentials are configured and the '
                       'request carries no context to act for')
        token = context.auth_token or '%s:%s' % (context.user_id,
                                                 context.project_id)
        if conf.cinder_endpoint_template:
            url = conf.cinder_endpoint_template % context.to_dict()
        else:
            if not context.service_catalog:
                raise exceptions.BadStoreConfiguration(
                    store_name='cinder_ext',
                    reason='the request has no service catalog; set '
                           'cinder_endpoint_template or service credentials')
            stype, sname, iface = self._catalog_info()
            try:
                url = service_catalog.ServiceCatalogV2(
                    context.service_catalog).url_for(
                        service_type=stype, service_name=sname or None,
                        interface=iface,
                        region_name=conf.cinder_os_region_name)
            except ksa_exc.EndpointNotFound:
                raise exceptions.BadStoreConfiguration(
                    store_name='cinder_ext',
                    reason='no %s endpoint in the service catalog'
                           % conf.cinder_catalog_info)
        return token_endpoint.Token(endpoint=url, token=token)

    def _catalog_info(self):
        parts = self.conf.cinder_catalog_info.split(':')
        if len(parts) != 3:
            raise exceptions.BadStoreConfiguration(
                store_name='cinder_ext',
                reason='cinder_catalog_info must be '
                       '<service_type>:<service_name>:<interface>, got %r'
                       % self.conf.cinder_catalog_info)
        return parts

    def client(self, context=None, version=MV_BASE):
        """A cinderclient for one request at one microversion."""
        auth = None
        if not service_credentials_set(self.conf):
            auth = self._context_auth(context)
        stype, sname, iface = self._catalog_info()
        return cinder_v3.Client(
            session=self.session, auth=auth,
            service_type=stype, service_name=sname or None,
            endpoint_type=iface,
            region_name=self.conf.cinder_os_region_name,
            api_version=api_versions.APIVersion(version))

    def api(self, context=None):
        return CinderAPI(lambda version: self.client(context, version),
                         self.conf.cinder_state_transition_timeout,
                         retries=self.conf.cinder_http_retries)


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
    """

    def __init__(self, client_for, timeout, retries=3, sleep=time.sleep,
                 clock=time.monotonic, backoff=None):
        self._client_for = client_for
        self._clients = {}
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        self._backoff = backoff or sleep
        self._clock = clock

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
        delay = RETRY_FIRST
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
            self._backoff(delay)
            delay = min(delay * 2, RETRY_MAX)
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
            return self.wait(volume.id, 'available', ('creating',),
                             'creation')
        except BaseException:
            self.delete_quietly(volume.id)
            raise

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

    def settle(self, volume_id, transitional, waiting_for):
        """Poll until the volume's status leaves ``transitional``.

        :raises BackendException: on timeout, naming the volume, its status
            and what was awaited
        """
        started = self._clock()
        deadline = started + self.timeout
        report = started + WAIT_REPORT
        delay = POLL_FIRST
        while True:
            volume = self.get(volume_id)
            if volume.status not in transitional:
                return volume
            now = self._clock()
            if now >= report:
                # A slow Cinder shows in the log while it is slow.
                LOG.info('Still waiting for %s of volume %s after %.0fs: '
                         'status %r', waiting_for, volume_id, now - started,
                         volume.status)
                report = now + WAIT_REPORT
            if now >= deadline:
                raise exceptions.BackendException(
                    'Timed out after %ss waiting for %s of volume %s: status '
                    'still %r' % (self.timeout, waiting_for, volume_id,
                                  volume.status))
            self._sleep(delay)
            delay = min(delay * POLL_FACTOR, POLL_MAX)

    def wait(self, volume_id, expected, transitional, waiting_for):
        """:meth:`settle`, then insist on status ``expected``."""
        volume = self.settle(volume_id, transitional, waiting_for)
        if volume.status != expected:
            raise exceptions.BackendException(
                'Volume %s is %r after %s, expected %r'
                % (volume_id, volume.status, waiting_for, expected))
        return volume

    def _gone(self, get):
        """Recovery of a lost delete: done when ``get()`` finds nothing."""
        try:
            get()
        except cinder_exc.NotFound:
            return None
        except Exception:
            pass  # ask again by deleting again
        return RETRY

    def delete(self, volume_id):
        volumes = self._client().volumes
        self._request('deletion', lambda: volumes.delete(volume_id),
                      recover=lambda: self._deleting(volume_id),
                      volume_id=volume_id)

    def _deleting(self, volume_id):
        try:
            if self._client().volumes.get(volume_id).status == 'deleting':
                return None
        except cinder_exc.NotFound:
            return None
        except Exception:
            pass
        return RETRY

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
            self.settle(volume_id, ('detaching', 'attaching', 'reserved',
                                    'creating', 'extending'),
                        'a status that allows deletion')
        except exceptions.NotFound:
            raise
        except exceptions.BackendException as e:
            LOG.warning('%s', e)
        if self.release_unattached(volume_id):
            try:
                self.settle(volume_id, ('in-use', 'detaching'), 'detach')
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
        with translated('force deletion', volume_id):
            self._client().volumes.force_delete(volume_id)

    def set_metadata(self, volume_id, metadata):
        self._request('metadata update', lambda: self._client(
        ).volumes.set_metadata(volume_id, metadata), volume_id=volume_id)

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

    def attachments_made_since(self, volume_id, before, mode, host):
        """Attachments of ``volume_id`` a request of ``host`` may have made.

        Cinder shows neither an attachment's host until it is attached nor
        when it was made: a request's own is one that was not there
        ``before``, in the ``mode`` it asked for (or none yet: Cinder
        reserves the attachment, then sets the mode once the driver
        answered), and, once attached, of its host. (Cinder refuses an
        instance id as a tag: only Nova may delete such an attachment.)
        """
        def find():
            client = self._client(MV_ATTACH)
            new = [a for a in client.attachments.list(
                search_opts={'volume_id': volume_id}, detailed=True)
                if a.id not in before and
                getattr(a, 'attach_mode', mode) in (mode, 'null', None)]
            if not new:
                return []
            hosts = {a.get('attachment_id'): a.get('host_name')
                     for a in getattr(client.volumes.get(volume_id),
                                      'attachments', None) or ()}
            return [a.id for a in new
                    if a.id not in hosts or hosts[a.id] == host]
        return self._request('attachment listing', find, volume_id=volume_id)

    def _undo_lost_attach(self, volume_id, before, mode, host):
        """Delete what an attachment create whose answer was lost made.

        Its connection_info went with the answer, so the attachment is of
        no use: deleted, and the create is sent again.
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
                          recover=lambda: self._gone(
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

    def default_volume_type(self):
        return self._request('lookup of the default volume type',
                             lambda: self._client().volume_types.default(
                             ).name)

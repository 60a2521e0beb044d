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

"""A fake Cinder that behaves like one, and a fake os-brick host.

:class:`FakeCinder` keeps volumes and attachments with Cinder's statuses and
transitions (``creating -> available``, ``extending -> in-use``,
``error_extending``, ``deleting`` then gone, status recomputed when
attachments go away; only attached attachments listed), the API's
refusals (400 on wrong status or microversion, 403 policy, 413 quota, 404)
and backs every volume with a sparse file, so tests check real bytes.
:class:`FakeClient` is the python-cinderclient surface the store uses, at
one microversion. :class:`FakeHost` plays os-brick over those files.
"""

import datetime
import os
import socket
import tempfile
import time
import uuid

from cinderclient import api_versions
from cinderclient import exceptions as cinder_exc
from oslo_utils import units

from cinder_ext_store import cinder_api
from cinder_ext_store import tuning as tuning_mod


def no_wait(seconds):
    """The sleep of unit tests' waits: a yield to other threads, no more."""
    time.sleep(min(seconds, 0.001))


class Volume(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Faults(object):
    """Failures a test arms, by call name; both fakes fail this way."""

    def __init__(self):
        self.faults = {}
        self.calls = []

    def fail(self, call, exc, times=1):
        """Make the next ``times`` calls of ``call`` raise ``exc``."""
        self.faults[call] = [exc] * times

    def _raise_armed(self, name):
        """Count the call ``name``; raise what a test armed for it."""
        queue = self.faults.get(name)
        if queue:
            raise queue.pop(0)


class FakeCinder(Faults):
    """State of a Cinder deployment with one backend.

    :param transition_polls: GETs a volume stays in a transitional status
    :param online_extend: the pool reports ``online_extend_support``
    :param host_sees_growth: the host sees a grown volume at once (a loop
        device refreshed by the driver) instead of only after a rescan
    :param pool_gib: the pool's capacity: the scheduler puts a volume that
        does not fit in ``error`` and leaves an extend that does not fit at
        the old size (as for a pool without online extend)
    :param gib: the bytes of a GiB (the store's tuning says the same)
    """

    def __init__(self, datadir, transition_polls=2, online_extend=True,
                 host_sees_growth=True, quota_gib=10 ** 6, pool_gib=None,
                 gib=units.Gi):
        super(FakeCinder, self).__init__()
        self.datadir = datadir
        self.gib = gib
        self.transition_polls = transition_polls
        self.online_extend = online_extend
        self.host_sees_growth = host_sees_growth
        self.quota_gib = quota_gib
        self.quota_volumes = -1
        #: the connection_info's driver_volume_type
        self.protocol = 'fake'
        self.pool_gib = pool_gib  # the pool's room; None: plenty
        self.policy_denies_extend_attached = False
        self.extend_fails_in_driver = False
        self.create_ends_in = 'available'
        self.volume_types = {'__DEFAULT__', 'fast'}
        self.type_specs = {}  # type -> the extra specs users see
        self.encrypted_types = {}  # type -> encryption provider
        self.admin = False  # whether the caller has Cinder's admin role
        self.volumes = {}
        self.attachments = {}
        #: Cinder's user messages: dicts of resource_uuid, event_id,
        #: user_message
        self.messages = []
        self.lost = {}
        self.extends_accepted = 0

    # -- helpers for tests -------------------------------------------------

    def lose_answer(self, call, exc, times=1):
        """Carry out the next ``times`` calls of ``call``, then raise ``exc``.

        What a connection reset or a timeout after Cinder acted looks like.
        """
        self.lost[call] = [exc] * times

    def answer(self, call, result=None):
        queue = self.lost.get(call)
        if queue:
            raise queue.pop(0)
        return result

    def path(self, volume_id):
        return os.path.join(self.datadir, 'volume-%s' % volume_id)

    def data(self, volume_id, length=None):
        with open(self.path(volume_id), 'rb') as f:
            return f.read(length) if length is not None else f.read()

    def count(self, call):
        return sum(1 for c in self.calls if c[0] == call)

    def used_gib(self):
        return sum(v['size'] for v in self.volumes.values())

    def finish_transitions(self):
        """Let every pending transition finish (as waiting long would)."""
        for vol in list(self.volumes.values()):
            while vol.get('pending'):
                self._advance(vol)

    # -- machinery ---------------------------------------------------------

    def _call(self, name, version, *args):
        self.calls.append((name, version) + args)
        self._raise_armed(name)

    def _volume(self, volume_id):
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise cinder_exc.NotFound(404, 'Volume %s could not be found.'
                                      % volume_id)

    def _grow_file(self, volume_id, size_gib):
        path = self.path(volume_id)
        if os.path.getsize(path) < size_gib * self.gib:
            os.truncate(path, size_gib * self.gib)

    def _advance(self, vol):
        """Transitions complete after ``transition_polls`` GETs."""
        pending = vol.get('pending')
        if not pending:
            return
        pending['polls'] -= 1
        if pending['polls'] > 0:
            return
        vol.pop('pending')
        if pending['status'] == 'deleted':
            del self.volumes[vol['id']]
            if os.path.exists(self.path(vol['id'])):
                os.unlink(self.path(vol['id']))
            return
        vol['status'] = pending['status']
        if 'size' in pending:
            vol['size'] = pending['size']
            if pending.get('host_sees', True):
                self._grow_file(vol['id'], vol['size'])
        if vol['status'] == 'available' and not os.path.exists(
                self.path(vol['id'])):
            with open(self.path(vol['id']), 'wb') as f:
                f.truncate(vol['size'] * self.gib)

    def _transition(self, vol, status, final, **changes):
        vol['status'] = status
        vol['pending'] = dict(status=final, polls=self.transition_polls,
                              **changes)

    def _recompute_status(self, vol):
        mine = [a for a in self.attachments.values()
                if a['volume_id'] == vol['id']]
        if not mine:
            vol['status'] = 'available'
        elif any(a['status'] == 'attached' for a in mine):
            vol['status'] = 'in-use'
        else:
            vol['status'] = 'reserved'

    # -- volumes -----------------------------------------------------------

    def create(self, version, size, name, metadata, volume_type):
        self._call('create', version, size)
        if volume_type and volume_type not in self.volume_types:
            raise cinder_exc.NotFound(404, 'Volume type %s not found'
                                      % volume_type)
        if self.used_gib() + size > self.quota_gib:
            raise cinder_exc.OverLimit(413, 'VolumeSizeExceedsAvailableQuota')
        vid = str(uuid.uuid4())
        vol = dict(id=vid, size=size, name=name, metadata=dict(metadata),
                   volume_type=volume_type or '__DEFAULT__',
                   multiattach=False, readonly=False,
                   encrypted=volume_type in self.encrypted_types,
                   created_at=datetime.datetime.now(
                       datetime.timezone.utc).strftime(
                           '%Y-%m-%dT%H:%M:%S.%f'))
        full = (self.pool_gib is not None and
                self.used_gib() + size > self.pool_gib)
        self.volumes[vid] = vol
        self._transition(vol, 'creating',
                         'error' if full else self.create_ends_in)
        if full:
            # What Cinder 29's scheduler records for the volume's owner.
            self.messages.append(dict(
                resource_uuid=vid, event_id='VOLUME_VOLUME_001_003',
                user_message='schedule allocate volume: Could not find any '
                             'available weighted backend.'))
        return self.get(version, vid, advance=False)

    def message_list(self, version, resource_uuid):
        self._call('message_list', version, resource_uuid)
        if version < api_versions.APIVersion('3.3'):
            raise cinder_exc.NotFound(404, 'messages need 3.3')
        return [Volume(id=str(i), **m) for i, m in enumerate(self.messages)
                if m['resource_uuid'] == resource_uuid]

    def get(self, version, volume_id, advance=True):
        self._call('get', version, volume_id)
        vol = self._volume(volume_id)
        if advance:
            self._advance(vol)
        # Cinder lists only attachments that are attached.
        attachments = [dict(attachment_id=a['id'], host_name=a['host'],
                            attached_at=a['attached_at'])
                       for a in self.attachments.values()
                       if a['volume_id'] == volume_id and
                       a['status'] == 'attached']
        return Volume(id=vol['id'], size=vol['size'], status=vol['status'],
                      name=vol['name'], metadata=dict(vol['metadata']),
                      volume_type=vol['volume_type'],
                      multiattach=vol['multiattach'],
                      created_at=vol['created_at'],
                      updated_at=vol.get('updated_at', vol['created_at']),
                      # Cinder shows it on volumes it made from an image.
                      volume_image_metadata=vol.get('image_metadata'),
                      encrypted=vol.get('encrypted', False),
                      attachments=attachments)

    def list(self, version, name=None):
        self._call('list', version, name)
        return [self.get(version, vid, advance=False)
                for vid, vol in list(self.volumes.items())
                if name is None or vol['name'] == name]

    def delete(self, version, volume_id, force=False):
        self._call('force_delete' if force else 'delete', version, volume_id)
        vol = self._volume(volume_id)
        if force and not self.admin:
            # Cinder 29: volume_extension:volume_admin_actions:force_delete
            # is rule:admin_api.
            raise cinder_exc.Forbidden(
                403, 'Policy doesn\'t allow volume_extension:volume_admin_'
                     'actions:force_delete to be performed.')
        if force:
            pass
        elif vol['status'] not in ('available', 'error', 'error_extending'):
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume status must be available or '
                     'error or error_extending, but current status is: %s.'
                     % vol['status'])
        if any(a['volume_id'] == volume_id
               for a in self.attachments.values()):
            raise cinder_exc.BadRequest(400, 'Volume has attachments')
        # The volume service deletes asynchronously: 'deleting', then gone.
        self._transition(vol, 'deleting', 'deleted')

    def detach(self, version, volume_id, attachment_id=None):
        """The legacy os-detach action, as Cinder 29's volume manager.

        Without an attachment id and with no attachment left, it sets the
        volume 'available'/'detached'; policy admin_or_owner.
        """
        self._call('detach', version, volume_id)
        vol = self._volume(volume_id)
        mine = [a for a in self.attachments.values()
                if a['volume_id'] == volume_id]
        if attachment_id is None and len(mine) > 1:
            raise cinder_exc.BadRequest(
                400, 'Error detaching volume - InvalidVolume: Detach volume '
                     'failed: More than one attachment, but no '
                     'attachment_id provided.')
        if mine and attachment_id is None:
            attachment_id = mine[0]['id']
        if attachment_id is not None:
            self.attachment_delete(version, attachment_id)
            return
        vol['status'] = 'available'

    def extend(self, version, volume_id, new_size):
        self._call('extend', version, volume_id, new_size)
        vol = self._volume(volume_id)
        if new_size <= vol['size']:
            raise cinder_exc.BadRequest(400, 'New size must be larger')
        if vol['status'] == 'in-use':
            if version < api_versions.APIVersion('3.42'):
                raise cinder_exc.BadRequest(
                    400, 'Invalid volume: Volume status must be available, '
                         'but current status is: in-use.')
            if self.policy_denies_extend_attached:
                raise cinder_exc.Forbidden(
                    403, 'Policy doesn\'t allow volume:extend_attached_volume'
                         ' to be performed.')
        elif vol['status'] != 'available':
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: current status is: %s.'
                     % vol['status'])
        if self.used_gib() - vol['size'] + new_size > self.quota_gib:
            raise cinder_exc.OverLimit(413, 'VolumeSizeExceedsAvailableQuota')
        self.extends_accepted += 1
        back = vol['status']
        full = (self.pool_gib is not None and
                self.used_gib() - vol['size'] + new_size > self.pool_gib)
        if full or (back == 'in-use' and not self.online_extend):
            # The scheduler rejects the pool: size unchanged, back in-use.
            self._transition(vol, 'extending', back)
        elif self.extend_fails_in_driver:
            self._transition(vol, 'extending', 'error_extending')
        else:
            self._transition(vol, 'extending', back, size=new_size,
                             host_sees=(back == 'available' or
                                        self.host_sees_growth))

    def set_metadata(self, version, volume_id, metadata):
        self._call('set_metadata', version, volume_id)
        self._volume(volume_id)['metadata'].update(metadata)

    def update(self, version, volume_id, name, metadata):
        # Cinder 29 replaces the metadata with what the update names.
        self._call('update', version, volume_id, name)
        vol = self._volume(volume_id)
        if name is not None:
            vol['name'] = name
        if metadata is not None:
            vol['metadata'] = dict(metadata)

    def update_readonly_flag(self, version, volume_id, flag):
        self._call('update_readonly_flag', version, volume_id)
        vol = self._volume(volume_id)
        if vol['status'] != 'available':
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume status must be available to '
                     'update readonly flag.')
        vol['readonly'] = flag

    # -- attachments -------------------------------------------------------

    def attachment_create(self, version, volume_id, connector, mode):
        self._call('attachment_create', version, volume_id, mode)
        if version < api_versions.APIVersion('3.27'):
            raise cinder_exc.NotFound(404, 'attachments need 3.27')
        vol = self._volume(volume_id)
        self._advance(vol)
        # Cinder 29 reserves a multiattach volume only while no other
        # attachment of it is being made.
        if vol['multiattach'] and vol['status'] not in ('available',
                                                        'in-use'):
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume %s status must be available or '
                     'in-use or downloading to reserve, but the current '
                     'status is %s.' % (volume_id, vol['status']))
        if vol['status'] != 'available' and not vol['multiattach']:
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume %s status must be available or '
                     'downloading to reserve, but the current status is %s.'
                     % (volume_id, vol['status']))
        aid = str(uuid.uuid4())
        self.attachments[aid] = dict(id=aid, volume_id=volume_id,
                                     host=connector.get('host'), mode=mode,
                                     status='attaching')
        # Exporting the volume refreshes what a new connection sees.
        self._grow_file(volume_id, vol['size'])
        vol['status'] = 'attaching'
        info = {'driver_volume_type': self.protocol,
                'device_path': self.path(volume_id), 'attachment_id': aid}
        if self.protocol == 'rbd':  # what Cinder's RBD driver adds
            info.update(name='volumes/volume-%s' % volume_id,
                        cluster_name='ceph', auth_username='cinder')
        return {'id': aid, 'status': 'attaching', 'connection_info': info}

    def attachment_complete(self, version, attachment_id):
        self._call('attachment_complete', version, attachment_id)
        att = self.attachments[attachment_id]
        att['status'] = 'attached'
        att['attached_at'] = datetime.datetime.now(
            datetime.timezone.utc).replace(tzinfo=None).isoformat()
        self._recompute_status(self.volumes[att['volume_id']])

    def attachment_list(self, version, volume_id, detailed=False):
        """Every attachment of the volume, in any status.

        As Cinder shows them: no host; the mode in the detailed view only.
        """
        self._call('attachment_list', version, volume_id)
        return [Volume(id=a['id'], status=a['status'],
                       volume_id=a['volume_id'],
                       **({'attach_mode': a['mode']} if detailed else {}))
                for a in self.attachments.values()
                if a['volume_id'] == volume_id]

    def attachment_show(self, version, attachment_id):
        self._call('attachment_show', version, attachment_id)
        if attachment_id not in self.attachments:
            raise cinder_exc.NotFound(404, 'attachment not found')
        return self.attachments[attachment_id]

    def attachment_delete(self, version, attachment_id):
        self._call('attachment_delete', version, attachment_id)
        try:
            att = self.attachments.pop(attachment_id)
        except KeyError:
            raise cinder_exc.NotFound(404, 'attachment not found')
        self._recompute_status(self.volumes[att['volume_id']])


class _Manager(object):
    def __init__(self, cloud, version):
        self.cloud = cloud
        self.version = version


class _Volumes(_Manager):
    def create(self, size, name=None, metadata=None, volume_type=None):
        return self.cloud.answer('create', self.cloud.create(
            self.version, size, name, metadata, volume_type))

    def get(self, volume_id):
        return self.cloud.answer('get', self.cloud.get(self.version,
                                                       volume_id))

    def list(self, search_opts=None, marker=None, limit=None):
        found = sorted(self.cloud.list(self.version,
                                       (search_opts or {}).get('name')),
                       key=lambda v: v.id)
        if marker is not None:
            found = [v for v in found if v.id > marker]
        return found[:limit] if limit else found

    def delete(self, volume_id):
        self.cloud.delete(self.version, volume_id)
        self.cloud.answer('delete')

    def force_delete(self, volume_id):
        self.cloud.delete(self.version, volume_id, force=True)

    def detach(self, volume_id, attachment_uuid=None):
        self.cloud.detach(self.version, volume_id, attachment_uuid)

    def extend(self, volume_id, new_size):
        self.cloud.extend(self.version, volume_id, new_size)
        self.cloud.answer('extend')

    def set_metadata(self, volume_id, metadata):
        self.cloud.set_metadata(self.version, volume_id, metadata)

    def update(self, volume_id, name=None, metadata=None):
        self.cloud.update(self.version, volume_id, name, metadata)

    def update_readonly_flag(self, volume_id, flag):
        self.cloud.update_readonly_flag(self.version, volume_id, flag)


class _Attachments(_Manager):
    def create(self, volume_id, connector, instance_id=None, mode='null'):
        return self.cloud.answer('attachment_create',
                                 self.cloud.attachment_create(
                                     self.version, volume_id, connector,
                                     mode))

    def list(self, search_opts=None, detailed=False):
        return self.cloud.attachment_list(self.version,
                                          search_opts['volume_id'], detailed)

    def show(self, attachment_id):
        return self.cloud.attachment_show(self.version, attachment_id)

    def complete(self, attachment_id):
        self.cloud.attachment_complete(self.version, attachment_id)
        self.cloud.answer('attachment_complete')

    def delete(self, attachment_id):
        self.cloud.attachment_delete(self.version, attachment_id)
        self.cloud.answer('attachment_delete')


class _VolumeTypes(_Manager):
    def find(self, name):
        self.cloud._call('volume_type_find', self.version, name)
        if name not in self.cloud.volume_types:
            raise cinder_exc.NotFound(404, 'Volume type %s not found' % name)
        return Volume(name=name, extra_specs=dict(
            self.cloud.type_specs.get(name, {})))

    def default(self):
        self.cloud._call('volume_type_default', self.version)
        return Volume(name='__DEFAULT__')


class _Quotas(_Manager):
    def get(self, project, usage=False):
        self.cloud._call('quota_get', self.version, project)
        volumes = len(self.cloud.volumes)
        info = {'id': project,
                'volumes': {'limit': self.cloud.quota_volumes,
                            'in_use': volumes},
                'gigabytes': {'limit': self.cloud.quota_gib,
                              'in_use': self.cloud.used_gib()}}
        return Volume(_info=info if usage else {
            k: v['limit'] if isinstance(v, dict) else v
            for k, v in info.items()})


class _HTTPClient(object):
    def get_project_id(self):
        return 'service-project'


class _EncryptionTypes(_Manager):
    def get(self, volume_type):
        self.cloud._call('encryption_type_get', self.version)
        if not self.cloud.admin:
            # Cinder 29: volume_extension:volume_type_encryption:get is
            # rule:admin_api.
            raise cinder_exc.Forbidden(403, 'Policy doesn\'t allow volume_'
                                       'extension:volume_type_encryption:'
                                       'get to be performed.')
        provider = self.cloud.encrypted_types.get(volume_type.name)
        return Volume(provider=provider) if provider else Volume()


class _Messages(_Manager):
    def list(self, search_opts=None):
        return self.cloud.message_list(
            self.version, (search_opts or {}).get('resource_uuid'))


class FakeClient(object):
    """python-cinderclient's v3 Client surface, at one microversion."""

    def __init__(self, cloud, version):
        version = api_versions.APIVersion(version)
        self.volumes = _Volumes(cloud, version)
        self.attachments = _Attachments(cloud, version)
        self.volume_types = _VolumeTypes(cloud, version)
        self.volume_encryption_types = _EncryptionTypes(cloud, version)
        self.messages = _Messages(cloud, version)
        self.quotas = _Quotas(cloud, version)
        self.client = _HTTPClient()


class FakeSession(object):
    """Stands in for :class:`cinder_api.CinderSession`."""

    def __init__(self, cloud, timeout, tuning=tuning_mod.DEFAULT):
        self.cloud = cloud
        self.timeout = timeout
        self.contexts = []
        self.backoffs = []  # retries wait no real time
        self.tuning = tuning.replace(backoff=self.backoffs.append)

    def api(self, context=None):
        self.contexts.append(context)
        return cinder_api.CinderAPI(
            lambda version: FakeClient(self.cloud, version), self.timeout,
            tuning=self.tuning)


class FileHandle(object):
    """Like os-brick's RBDVolumeIOWrapper: file-like, write returns None.

    Like its connector, it keeps a temporary ``brickrbd_*`` file
    (``rbd_conf``) that only a disconnect removes.
    """

    def __init__(self, path, host):
        self._f = open(path, 'r+b')
        self._host = host
        fd, self.rbd_conf = tempfile.mkstemp(prefix='brickrbd_')
        os.close(fd)

    def seek(self, offset, whence=0):
        self._f.seek(offset, whence)

    def tell(self):
        return self._f.tell()

    def write(self, data):
        self._host._call('write')
        self._f.write(data)

    def read(self, length):
        self._host._call('read')
        return self._f.read(length)

    def flush(self):
        self._host._call('flush')
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self):
        self._f.close()


class FakeConnector(object):
    def __init__(self, host):
        self.host = host

    def connect_volume(self, props):
        self.host._call('connect')
        path = props['device_path']
        self.host.connected[path] = self.host.connected.get(path, 0) + 1
        if self.host.device_override:
            return {'path': self.host.device_override}
        if self.host.handles:
            return {'path': FileHandle(path, self.host)}
        return {'path': path, 'type': 'block'}

    def disconnect_volume(self, props, device_info, force=False):
        self.host._call('disconnect')
        path = props['device_path']
        self.host.connected[path] -= 1
        if not self.host.connected[path]:
            del self.host.connected[path]
        if not isinstance(device_info['path'], str):
            device_info['path'].close()
            os.unlink(device_info['path'].rbd_conf)

    def extend_volume(self, props):
        self.host._call('extend_volume')
        if not self.host.can_extend:
            raise NotImplementedError()
        return os.path.getsize(props['device_path'])


class FakeHost(Faults):
    """os-brick on this host, over the fake backend's files.

    :param handles: hand out file-like handles (the RBD shape) instead of
        paths
    """

    def __init__(self, handles=False, can_extend=True):
        super(FakeHost, self).__init__()
        self.handles = handles
        self.device_override = None
        self.can_extend = can_extend
        self.connected = {}
        self.lent = []
        self.lent_sizes = []

    def _call(self, name):
        self.calls.append(name)
        self._raise_armed(name)

    @staticmethod
    def hostname():
        return socket.gethostname()

    def connector_properties(self):
        return {'host': self.hostname(), 'initiator': 'iqn.fake',
                'ip': '127.0.0.1'}

    privsep_error = None
    rbd_op_timeout = 0
    euid = staticmethod(os.geteuid)

    def privsep_problem(self):
        return self.privsep_error

    def connector(self, connection_info):
        self._call('connector')
        return FakeConnector(self)

    def privileged_uid(self):
        return 0

    def lend(self, device_info, size, props=None):
        # As BrickHost.lend for a glance-api that is not root (the size it
        # would insist on is recorded).
        self._call('lend')
        path = device_info.get('path')
        if isinstance(path, str):
            self.lent.append(path)
            self.lent_sizes.append(size())

    def give_back(self, device_info):
        path = device_info.get('path')
        if path in self.lent:
            self.lent.remove(path)

    def disconnect(self, connector, props, device_info, force=False):
        self.give_back(device_info)
        connector.disconnect_volume(props, device_info, force=force)

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

"""What crashed uploads and readers left behind, and how to clean it.

:func:`plan` looks at one store and returns :class:`Action` objects, each
saying what it would do and why; nothing changes until an action is run.
It finds, on this host (the state the store keeps in its lock path):

* uploads whose process is gone, or that failed and could not clean up
  (Cinder refused then): their read-write attachment and host connection,
  and their volume (the upload never finished, so no image uses it); the
  spare volumes of processes that are gone (Cinder still shows them as
  spares: no upload took them), recorded or not (a spare's metadata names
  its process);
* read shares (one read-only attachment per volume and host) none of
  whose reader processes is alive;
* attachments Cinder says are this host's (the connector's host name)
  that no record names (a record lost in a crash), attached for the
  grace period;

and, in Cinder (the store's project, its volume type), image volumes that
this Glance's database proves nobody uses: the image was deleted, or it
lives and its locations do not name the volume, which this store made
(its creation token) and nobody touched for the grace period.

What it cannot prove it keeps, and says so (:class:`Note`):

* without Glance's database, no image volume is deleted: a volume in
  ``attaching`` or ``error`` may be the only copy of an active image (a
  reader killed between attachment create and complete leaves that);
* an image this Glance does not know (another Glance's, or a purged
  record), a volume Cinder made from an image (``volume_image_metadata``:
  its image-volume cache, a user's volume) or one this store did not make;
* a live upload of this host (also while detached for offline growth), an
  image whose upload may still run (updated within the grace period) and
  a volume attached anywhere;
* what records written in another PID namespace, boot or host name (a
  container sharing the lock path, or this reconcile run outside
  glance-api's namespace): their processes cannot be judged from here.
"""

import collections
import datetime
import logging

from glance_store import exceptions

from cinder_ext_store import ceph_pool
from cinder_ext_store import cinder_api
from cinder_ext_store import host_records
from cinder_ext_store import ownership
from cinder_ext_store import spare_volumes

LOG = logging.getLogger(__name__)

#: Statuses of a Glance image whose upload may still be running.
UPLOADING = ('queued', 'saving', 'uploading', 'importing')
#: Statuses of a Glance image that no longer needs data.
DELETED = ('deleted',)


class Action(object):
    """One cleanup step: what, on which resource, why; ``run()`` does it."""

    def __init__(self, store, what, target, reason, run):
        self.store = store
        self.what = what
        self.target = target
        self.reason = reason
        self._run = run

    def run(self):
        self._run()

    def describe(self, verb):
        """``[store] <verb> <what> <target>: <reason>``."""
        return '[%s] %s%s %s: %s' % (self.store, verb, self.what,
                                     self.target, self.reason)


class Note(object):
    """Something reconcile kept without proof either way.

    ``target``: what, for a person; ``volume_id``: the volume it is about;
    ``undecided``: it could not judge it at all (the run's exit status
    says so).
    """

    def __init__(self, store, target, reason, volume_id, undecided=False):
        self.store = store
        self.target = target
        self.reason = reason
        self.volume_id = volume_id
        self.undecided = undecided

    @classmethod
    def of_volume(cls, store, volume, reason, undecided=False):
        return cls(store, 'volume %s (%s, %s)' % (
            volume.id, volume.name, volume.status), reason, volume.id,
            undecided)

    def describe(self):
        return '[%s] %s %s: %s' % (
            self.store, 'UNDECIDED, kept' if self.undecided else 'kept',
            self.target, self.reason)


class ImageRecord(collections.namedtuple(
        'ImageRecord', 'status deleted volumes updated_at')):
    """An image as this Glance's database holds it.

    ``volumes``: the ids of the volumes its live locations name;
    ``updated_at``: naive UTC, or None.
    """


class GlanceImages(object):
    """Images as Glance's database holds them (None: cannot ask)."""

    def __init__(self):
        self.reason = None
        try:
            from glance.common import exception as glance_exc
            from glance import context as glance_context
            from glance import db as glance_db
            self._api = glance_db.get_api()
            self._context = glance_context.get_admin_context()
            self._not_found = glance_exc.NotFound
            # Reach the database now, not at the first volume.
            self._api.image_get_all(self._context, limit=1)
        except Exception as e:
            self._api = None
            self.reason = str(e) or type(e).__name__

    @property
    def reachable(self):
        return self._api is not None

    def used_by(self, volume_id):
        """Live images whose live locations name ``volume_id``.

        Any image, not only the one the volume was made for: an admin may
        add a location of one image's volume to another.
        """
        rows = ownership.glance_locations(volume_id)
        named = {image_id for image_id, live, status in rows
                 if live and status in ('active', 'pending_delete')}
        # A queued image has no data to read: its location is of data
        # Glance refused (see _judge).
        return sorted(image_id for image_id in named
                      if getattr(self.image(image_id), 'status',
                                 None) != 'queued')

    def active_images_of(self, backend):
        """(image id, volume id) of active images' locations in ``backend``."""
        return ownership.active_images_of(backend)

    def image(self, image_id):
        """The :class:`ImageRecord` of ``image_id``, deleted ones included.

        None when this Glance never knew it (or purged it).
        """
        try:
            image = self._api.image_get(self._context, image_id,
                                        force_show_deleted=True)
        except self._not_found:
            return None
        volumes = {loc['url'].rstrip('/').rsplit('/', 1)[-1]
                   for loc in image.get('locations') or ()
                   if loc.get('status') != 'deleted' and
                   loc.get('url', '').startswith('cinder://')}
        return ImageRecord(image['status'],
                           bool(image.get('deleted')) or
                           image['status'] in DELETED,
                           volumes, _naive(image.get('updated_at')))


def _naive(stamp):
    if stamp is None or stamp.tzinfo is None:
        return stamp
    return stamp.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _age(volume, now):
    created = cinder_api.created_at(volume)
    return None if created is None else (now - created).total_seconds()


def plan(store, glance, older_than, now=None, seen=None, notes=None):
    """The actions that clean what dead processes left for ``store``.

    :param store: a configured :class:`~cinder_ext_store.store.Store`
    :param glance: a :class:`GlanceImages`
    :param older_than: grace period, in seconds, of Cinder-side volumes
    :param seen: what other stores' plans already take (several backends
        share a lock path, and may share a volume type); updated
    :param notes: a list that gets a :class:`Note` for each image volume
        kept without proof either way
    """
    seen = set() if seen is None else seen
    notes = [] if notes is None else notes
    now = now or cinder_api.utcnow()
    name = store.record_name
    api = store.api()
    actions = []
    crashed = set()
    for volume_id, marker in store.uploads.dead():
        crashed.add(volume_id)
        if ('upload', volume_id) in seen:
            continue
        seen.add(('upload', volume_id))
        actions.append(Action(
            name, 'release upload attachment',
            '%s of volume %s' % (marker.get('attachment_id') or '(none)',
                                 volume_id),
            ('the upload failed and could not clean up (process %s)'
             if marker.get('abandoned') else
             'the uploading process %s is gone') % marker.get('pid'),
            lambda v=volume_id: store.uploads.reclaim(api, v)))
        if marker.get('spare') and _still_spare(api, volume_id):
            seen.add(volume_id)
            actions.append(Action(
                name, 'delete spare volume', volume_id,
                'a spare volume of process %s, which is gone, and no '
                'upload took it' % marker.get('pid'),
                lambda v=volume_id: _delete_spare(api, v)))
    for volume_id, state in store.shares.dead_shares():
        if ('share', volume_id) in seen:
            continue
        seen.add(('share', volume_id))
        pids = ', '.join(sorted(state['readers'])) or 'none left'
        actions.append(Action(
            name, 'release read attachment',
            '%s of volume %s' % (state['attachment_id'], volume_id),
            'no reader process of this host is alive (recorded: %s)' % pids,
            lambda v=volume_id: store.shares.release_unless_read(api, v)))
    _note_foreign(store, name, seen, notes)
    actions += _leftover_files(store, api, name, seen, older_than)
    live = store.uploads.live()
    vtype = store.volume_type_name(api)
    every = api.volumes()
    volumes = [v for v in every if v.volume_type == vtype]
    _note_lost(store, api, glance, name, {v.id for v in every}, notes)
    _note_ceph(store, name, volumes, seen, notes)
    actions += _unrecorded_attachments(store, api, name, volumes, seen,
                                       older_than, now)
    for volume in volumes:
        if volume.id in seen or volume.id in live:
            continue
        if spare_volumes.is_spare(volume):
            action = _unrecorded_spare(name, api, volume)
            if action is not None:
                seen.add(volume.id)
                actions.append(action)
            continue
        if not _is_image_volume(volume):
            continue  # never ours to clean
        verdict, reason = _judge(volume, glance, older_than, now,
                                 volume.id in crashed)
        if verdict is None:
            continue
        seen.add(volume.id)
        if verdict == DELETE:
            actions.append(Action(
                name, 'delete volume', '%s (%s, %s)' % (
                    volume.id, volume.name, volume.status), reason,
                lambda v=volume.id, c=volume.id in crashed: _delete_if_still(
                    api, v, glance, older_than, now, c)))
        else:
            notes.append(Note.of_volume(name, volume, reason,
                                        undecided=verdict == UNDECIDED))
    return actions


DELETE, KEEP, UNDECIDED = 'delete', 'keep', 'undecided'


def _note_lost(store, api, glance, name, known, notes):
    """Say which active images of this backend name a volume that is gone.

    Nothing to clean (the image is Glance's), but nobody can read it from
    that location: its owner should know.
    """
    if not (glance.reachable and store.backend_group):
        return
    for image_id, volume_id in glance.active_images_of(store.backend_group):
        if volume_id in known:
            continue
        try:
            api.get(volume_id)
            continue  # another project's, which this store may see
        except exceptions.NotFound:
            pass
        notes.append(Note(
            name, 'image %s' % image_id,
            'its location names volume %s, which Cinder does not have: the '
            'image cannot be read from it (delete the image, or upload it '
            'again)' % volume_id, volume_id))


def _note_ceph(store, name, volumes, seen, notes):
    """Say what Cinder's RBD driver left in this backend's pool.

    Only where the store's last attach on this host recorded an RBD
    connection (the pool and Ceph user); read-only: these are Cinder's (see
    :mod:`~cinder_ext_store.ceph_pool`).
    """
    facts = store.uploads.records.load_backend(name)
    if not facts or facts.get('protocol') != 'rbd' or not facts.get('pool'):
        return
    ours = [v.id for v in volumes if _is_image_volume(v)]
    try:
        found = ceph_pool.leftovers(facts, ours)
    except Exception as e:
        notes.append(Note(name, 'Ceph pool %s' % facts['pool'],
                          'not looked at: %s' % (e or type(e).__name__),
                          None))
        return
    for kind, target, children in found:
        if (kind, target) in seen:
            continue  # another backend on the same pool said it
        seen.add((kind, target))
        if kind == 'deleted' and children:
            reason = ('Cinder deleted this volume and keeps its data while '
                      '%d clone(s) depend on it (%s); it goes with the last '
                      '(delete or flatten them)' % (len(children),
                                                    ', '.join(children)))
        elif kind == 'deleted':
            reason = ('Cinder deleted this volume and no clone depends on '
                      'it any more: Cinder lost track of it; an admin may '
                      'remove it (rbd snap unprotect each snapshot, rbd snap '
                      'purge, rbd rm)')
        else:
            reason = ('a snapshot Cinder made to clone this image volume, '
                      'which no clone uses any more: while it exists, '
                      "deleting the image leaves the volume's data in Ceph "
                      '(renamed .deleted) for good; an admin may remove it '
                      '(rbd snap unprotect, rbd snap rm)')
        notes.append(Note(name, 'Ceph image %s' % target, reason, None))


def _is_image_volume(volume):
    try:
        ownership.check_image_volume(volume)
    except exceptions.NotFound:
        return False
    return True


def _note_foreign(store, name, seen, notes):
    """Say what records of another place this lock path holds.

    Only a process of that PID namespace, boot and host can tell whether
    their writers live: what they name is kept (see host_records).
    """
    elsewhere = ('recorded in another PID namespace, boot or host than '
                 "this reconcile's: run reconcile there, in glance-api's "
                 'own namespace')
    for volume_id, marker in store.uploads.foreign():
        if ('foreign upload', volume_id) not in seen:
            seen.add(('foreign upload', volume_id))
            notes.append(Note(name, 'upload of volume %s by %s' % (
                volume_id, host_records.where(marker)), elsewhere,
                volume_id))
    for volume_id, holders in store.shares.foreign_shares():
        if ('foreign share', volume_id) not in seen:
            seen.add(('foreign share', volume_id))
            notes.append(Note(name, 'read share of volume %s held by %s' % (
                volume_id, '; '.join(map(host_records.where, holders))),
                elsewhere, volume_id))


def _unrecorded_attachments(store, api, name, volumes, seen, older_than,
                            now):
    """Release attachments of this host that no record names.

    A record lost in a crash (a disk that lost it, a lock path wiped
    while glance-api ran) leaves an attachment that Cinder says is this
    host's (its connector's host name) and that nothing here knows. It is
    released when no record of this lock path concerns its volume at all
    (a record being made names no attachment yet) and it has been attached
    for the grace period. Another glance-api with this host name (a
    container sharing it) would be indistinguishable: each glance-api
    needs a host name of its own (see the operator guide).
    """
    host = store.host.hostname()
    recorded = store.shares.records.volumes_named()
    actions = []
    for volume in volumes:
        if volume.id in recorded:
            continue
        for attachment in getattr(volume, 'attachments', None) or ():
            attachment_id = attachment.get('attachment_id')
            if (attachment.get('host_name') != host or
                    ('attachment', attachment_id) in seen):
                continue
            attached = cinder_api.parse_stamp(attachment.get('attached_at'))
            if _recent(attached, now, older_than):
                continue
            seen.add(('attachment', attachment_id))
            actions.append(Action(
                name, 'release unrecorded attachment', '%s of volume %s' % (
                    attachment_id, volume.id),
                'attached to this host (%s) for %ds and named by no record '
                'of its lock path (lost in a crash); its host connection, '
                'if the transport keeps one, is not known without the '
                'record' % (host, (now - attached).total_seconds()),
                lambda v=volume.id, a=attachment_id: _release_unrecorded(
                    store, api, v, a)))
    return actions


def _release_unrecorded(store, api, volume_id, attachment_id):
    """Delete the attachment unless a record of its volume appeared."""
    with store.shares.lock(volume_id):
        if volume_id in store.shares.records.volumes_named():
            raise exceptions.BackendException(
                'volume %s has a record again: a process of this host '
                'uses it; kept' % volume_id)
        api.attachment_delete(attachment_id, volume_id)


def _leftover_files(store, api, name, seen, older_than):
    """Remove the lock and leftover files of volumes that are gone."""
    records = store.shares.records
    actions = []
    for volume_id, names in sorted(records.leftovers(older_than).items()):
        if ('files', volume_id) in seen:
            continue
        try:
            api.get(volume_id)
            continue  # it exists: its lock may be taken again
        except exceptions.NotFound:
            pass
        seen.add(('files', volume_id))
        actions.append(Action(
            name, 'remove files', '%s of volume %s' % (
                ', '.join(sorted(names)), volume_id),
            'the volume no longer exists',
            lambda n=names: records.remove_files(n)))
    return actions


def _recent(stamp, now, older_than):
    return stamp is None or (now - stamp).total_seconds() < older_than


def _judge(volume, glance, older_than, now, crashed):
    """(verdict, reason) of one image volume.

    DELETE, KEEP (said), UNDECIDED, or (None, None) for a volume kept
    without a word (it backs an image, it is young).
    """
    image_id = ownership.image_of(volume)
    if not glance.reachable:
        if crashed or volume.status in ('attaching', 'error', 'creating',
                                        'error_extending'):
            return UNDECIDED, (
                "Glance's database cannot be read: an image volume is "
                'never deleted without it (image %s)' % image_id)
        return None, None
    found = glance.image(image_id)
    if glance.used_by(volume.id):
        return None, None  # backs a live image
    if found is not None and volume.id in found.volumes:
        if found.status != 'queued' or found.deleted:
            return None, None  # backs the image
        # Glance 33 keeps the location of data it refused after add()
        # returned (its format checks: 415) on the image it puts back to
        # queued; nothing reads a queued image's data, and a new upload
        # brings its own.
        if (getattr(volume, 'attachments', None) or
                _recent(cinder_api.created_at(volume), now, older_than) or
                _recent(found.updated_at, now, older_than)):
            return None, None
        return DELETE, ('image %s is queued: Glance refused the data this '
                        'store wrote (e.g. its disk format check) and kept '
                        'the location' % image_id)
    if crashed:
        # This host's record proves the store made it for an upload that
        # died before add() returned: no image can name it.
        return DELETE, 'its upload died before it finished (image %s %s)' % (
            image_id, found.status if found else 'unknown to Glance')
    if getattr(volume, 'attachments', None):
        return None, None  # left to the host it is attached to
    if (_recent(cinder_api.created_at(volume), now, older_than) or
            _recent(cinder_api.updated_at(volume), now, older_than)):
        return None, None
    if getattr(volume, 'volume_image_metadata', None):
        # Cinder made it from the image (its image-volume cache, a volume
        # of a user): Cinder's, whatever Glance says.
        return None, None
    if found is None:
        return KEEP, ('image %s is unknown to this Glance (another '
                      "Glance's, or its record was purged)" % image_id)
    if found.deleted:
        return DELETE, 'image %s was deleted in Glance' % image_id
    if not cinder_api.made_by_store(volume):
        return KEEP, ('image %s is %s and does not name this volume, but '
                      'this store did not make it (no creation token)'
                      % (image_id, found.status))
    if found.status in UPLOADING and _recent(found.updated_at, now,
                                             older_than):
        return None, None  # its upload may still run, on another host
    return DELETE, ('image %s is %s and its locations do not name this '
                    'volume, which this store made (%ds old)'
                    % (image_id, found.status, _age(volume, now)))


def _delete_if_still(api, volume_id, glance, older_than, now, crashed):
    """Delete an image volume if it is still judged so.

    Between the plan and its run a user may have uploaded again or an
    image may have come to name the volume: judged again from fresh
    answers of Cinder and Glance (at the plan's time: what changed since
    is recent).
    """
    verdict, reason = _judge(api.get(volume_id), glance, older_than, now,
                             crashed)
    if verdict != DELETE:
        raise exceptions.BackendException(
            'volume %s is no longer to be deleted: %s'
            % (volume_id, reason or 'it backs an image now, or is in use'))
    _delete(api, volume_id)


def _still_spare(api, volume_id):
    """Whether Cinder shows the volume as an untaken spare.

    An upload may have taken it (renamed it, given it an image's
    metadata) before the process died: that volume is judged as an image
    volume of a crashed upload.
    """
    try:
        return spare_volumes.is_spare(api.get(volume_id))
    except exceptions.NotFound:
        return False


def _unrecorded_spare(name, api, volume):
    """A spare no record names: its process died before it recorded it.

    Judged by the process its metadata names (:data:`spare_volumes.
    MADE_BY`); another place's, a live process's (about to record it) or
    one without that metadata is kept.
    """
    made_by = spare_volumes.maker(volume)
    if made_by is None or host_records.judge(made_by) != host_records.DEAD:
        return None
    return Action(name, 'delete spare volume', volume.id,
                  'a spare volume of process %s, which is gone, and no '
                  'record names it (the process died making it)'
                  % made_by['pid'],
                  lambda: _delete_spare(api, volume.id))


def _delete_spare(api, volume_id):
    """Delete a dead process's spare if Cinder still shows a spare."""
    try:
        volume = api.get(volume_id)
    except exceptions.NotFound:
        return
    if not spare_volumes.is_spare(volume):
        raise exceptions.BackendException(
            'volume %s is no longer a spare (%s): an upload took it; it is '
            'judged as an image volume' % (volume_id, volume.name))
    _delete(api, volume_id)


def _delete(api, volume_id):
    """Delete a volume and its attachments; errors are raised."""
    try:
        api.delete_with_attachments(volume_id)
    except exceptions.Forbidden:
        raise exceptions.BackendException(
            'Cinder refuses to delete volume %s (status %s) and only an '
            'admin may force-delete it: openstack volume delete --force %s'
            % (volume_id, api.get(volume_id).status, volume_id))


def run(actions, apply, out):
    """Print the actions; with ``apply``, carry them out.

    :returns: the number of actions that failed
    """
    failed = 0
    for action in actions:
        if not apply:
            out(action.describe('would '))
            continue
        try:
            action.run()
            out(action.describe('done: '))
        except Exception as e:
            failed += 1
            out('%s -- %s' % (action.describe('FAILED: '), e))
            LOG.exception('reconcile: %s', action.describe('failed: '))
    return failed

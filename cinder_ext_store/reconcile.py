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
  and their volume (the upload never finished, so no image uses it);
* read shares (one read-only attachment per volume and host) none of
  whose reader processes is alive;

and, in Cinder (the store's project, its volume type):

* image volumes whose Glance image is gone, or does not use them, past the
  grace period. Glance is asked through its database, as glance-api itself
  reads it; when it cannot be reached, only volumes stuck in ``creating``,
  ``error``, ``error_extending`` or ``attaching`` past the grace period
  are taken.

A volume that backs an image (one of the image's locations names it) is
never touched, nor is an attachment a live process holds; a volume that
is attached but not provably by a dead process of this host is left to
the host it is attached to.
"""

import logging

from glance_store import exceptions

from cinder_ext_store import cinder_api
from cinder_ext_store import ownership

LOG = logging.getLogger(__name__)

#: Statuses of a volume that no live upload keeps for long.
STUCK = ('creating', 'error', 'error_extending', 'attaching')
#: Statuses of a Glance image whose data is not (yet) in a location.
UNFINISHED = ('queued', 'saving', 'uploading', 'importing', 'killed')


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

    def image(self, image_id):
        """(status, ids of the volumes its locations name), or None."""
        try:
            image = self._api.image_get(self._context, image_id)
        except self._not_found:
            return None
        volumes = {loc['url'].rstrip('/').rsplit('/', 1)[-1]
                   for loc in image.get('locations') or ()
                   if loc.get('status') != 'deleted' and
                   loc.get('url', '').startswith('cinder://')}
        return image['status'], volumes


def _age(volume, now):
    created = cinder_api.created_at(volume)
    return None if created is None else (now - created).total_seconds()


def _volume_type(store, api):
    return store.store_conf.cinder_volume_type or api.default_volume_type()


def plan(store, glance, older_than, now=None, seen=None):
    """The actions that clean what dead processes left for ``store``.

    :param store: a configured :class:`~cinder_ext_store.store.Store`
    :param glance: a :class:`GlanceImages`
    :param older_than: grace period, in seconds, of Cinder-side volumes
    :param seen: what other stores' plans already take (several backends
        share a lock path, and may share a volume type); updated
    """
    seen = set() if seen is None else seen
    now = now or cinder_api.utcnow()
    name = store.backend_group or 'glance_store'
    api = store.cinder.api()
    actions = []
    crashed = set()
    for volume_id, marker in store.shares.dead_uploads():
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
            lambda v=volume_id: store.shares.reclaim_upload(api, v)))
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
    vtype = _volume_type(store, api)
    for volume in api.volumes():
        if volume.volume_type != vtype or volume.id in seen:
            continue
        try:
            ownership.check_image_volume(volume)
        except exceptions.NotFound:
            continue  # not an image volume: never ours to clean
        reason = _why_orphan(volume, glance, older_than, now,
                             volume.id in crashed)
        if reason:
            seen.add(volume.id)
            actions.append(Action(
                name, 'delete volume', '%s (%s, %s)' % (
                    volume.id, volume.name, volume.status), reason,
                lambda v=volume.id: _delete(api, v)))
    return actions


def _why_orphan(volume, glance, older_than, now, crashed):
    """Why ``volume`` is garbage, or None to keep it."""
    image_id = ownership.image_of(volume)
    age = _age(volume, now)
    young = age is None or age < older_than
    attached = bool(getattr(volume, 'attachments', None))
    if glance.reachable:
        found = glance.image(image_id)
        if found is not None and volume.id in found[1]:
            return None  # backs the image
        if crashed:
            return 'its upload died before it finished (image %s %s)' % (
                image_id, found[0] if found else 'gone')
        if young or attached:
            return None
        if found is None:
            return 'image %s is gone from Glance (volume %ds old)' % (
                image_id, age)
        status = found[0]
        if status in UNFINISHED:
            return ('image %s is %s and never used this volume (%ds old)'
                    % (image_id, status, age))
        return ('image %s is %s and its locations do not name this volume '
                '(%ds old)' % (image_id, status, age))
    if crashed:
        return 'its upload died before it finished'
    if young or volume.status not in STUCK:
        return None
    return ('stuck in %s for %ds (Glance cannot be asked: only stuck volumes '
            'are taken)' % (volume.status, age))


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

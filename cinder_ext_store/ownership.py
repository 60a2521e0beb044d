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

"""Which volumes a request may use as image data, and who owns an image.

glance_store builds every location from its URI alone, so the store never
learns which image a ``cinder://`` location was registered for. The rules
here rest on what the store does know: the volume (its name and metadata,
written by this store, the in-tree driver or Cinder's upload-to-image) and
the request (its project and whether it is an admin).

- Every use: the volume must be an image volume, ``image-<image id>`` with
  ``image_owner`` or ``glance_image_id`` metadata, and name the same image
  as ``glance_image_id`` and as the location when the caller passes one.
  Cinder writes ``image_owner`` before it registers a location and
  ``glance_image_id`` only after, so either one is enough.
- Registering (Glance asks ``get_size`` on every location add): the
  image the volume was written for must belong to the requester's
  project, unless the requester is an admin or a service (role
  ``service``: Cinder registers its upload-to-image volumes with its own
  service user; Glance trusts only that role to add such locations). This
  stops a user from pointing their own image at another project's volume
  where Glance lets users add locations.
- Deleting: likewise (admins only are trusted), so that deleting an image
  cannot delete a volume that holds another project's image.

"Belongs to" is asked of Glance's database when the store runs inside
glance-api, so that an image given to another project stays deletable by
its new owner; elsewhere, and for an image the requester cannot see, the
volume's ``image_owner`` metadata answers.
Reads are not limited by owner: public and shared images are read by other
projects, and Glance has already checked that the requester may see the
image.
"""

import logging
import re

from glance_store import exceptions

LOG = logging.getLogger(__name__)

_NAME = re.compile(r'^image-(?P<image_id>\S+)$')


def _metadata(volume):
    return getattr(volume, 'metadata', None) or {}


def image_of(volume):
    """The image id the volume's name gives, or None."""
    match = _NAME.match(getattr(volume, 'name', None) or '')
    return match.group('image_id') if match else None


def check_image_volume(volume, image_id=None):
    """Refuse a volume that is not an image volume (of that image).

    :raises NotFound: Glance then treats the location as invalid (HTTP 400
        on a location add) or the data as missing
    """
    named = image_of(volume)
    meta = _metadata(volume)
    written_for = meta.get('glance_image_id')
    if named is None or not (written_for or meta.get('image_owner')):
        raise exceptions.NotFound(
            message='Volume %s is not an image volume (name %r, no '
                    'image_owner or glance_image_id metadata); refusing it'
                    % (volume.id, getattr(volume, 'name', None)))
    for claimed in (written_for, image_id):
        if claimed and claimed != named:
            raise exceptions.NotFound(
                message='Volume %s holds image %s, not image %s'
                        % (volume.id, named, claimed))


class GlanceUnavailable(Exception):
    """The store does not run inside a glance-api that can be asked."""


def _glance_owner(context, image_id):
    """The image's owner from Glance's database; None if not visible."""
    try:
        from glance.common import exception as glance_exc
        from glance import db as glance_db
    except ImportError:
        raise GlanceUnavailable('glance is not installed here')
    try:
        api = glance_db.get_api()
    except Exception as e:
        raise GlanceUnavailable('no Glance database: %s' % e)
    try:
        return api.image_get(context, image_id)['owner']
    except (glance_exc.NotFound, glance_exc.Forbidden):
        return None


def _is_admin(context):
    return bool(getattr(context, 'is_admin', False))


def _is_service(context):
    roles = (list(getattr(context, 'roles', None) or ()) +
             list(getattr(context, 'service_roles', None) or ()))
    return 'service' in roles


def _ask_glance(context, image_id, lookup=None):
    """The image's owner as Glance sees it, or None if it cannot say."""
    try:
        return (lookup or _glance_owner)(context, image_id) or None
    except GlanceUnavailable:
        return None
    except Exception as e:
        LOG.warning('Cannot read the owner of image %s from Glance: %s',
                    image_id, e)
        return None


def owner_of(volume, context, lookup=None):
    """The project whose image the volume holds, or None if unknown."""
    image_id = image_of(volume)
    owner = _ask_glance(context, image_id, lookup) if image_id else None
    return owner or _metadata(volume).get('image_owner')


def check_may_register(volume, context, lookup=None):
    """Refuse registering another project's image volume as a location.

    :raises NotFound: Glance answers a location add with HTTP 400
    """
    if context is None or _is_admin(context) or _is_service(context):
        return
    owner = owner_of(volume, context, lookup)
    if owner != context.project_id:
        LOG.warning('Refused volume %s as a location for project %s: it '
                    'holds an image of project %s', volume.id,
                    context.project_id, owner)
        raise exceptions.NotFound(
            message='Volume %s holds an image of another project'
                    % volume.id)


def check_may_delete(volume, context, lookup=None):
    """Refuse deleting a volume that holds another project's image.

    A volume whose owner nothing records (older writers) may be deleted.

    :raises Forbidden: Glance answers the image delete with HTTP 403 and
        keeps the image
    """
    if context is None or _is_admin(context):
        return
    owner = owner_of(volume, context, lookup)
    if owner is not None and owner != context.project_id:
        LOG.warning('Refused to delete volume %s for project %s: it holds '
                    'an image of project %s', volume.id, context.project_id,
                    owner)
        raise exceptions.Forbidden(
            message='Volume %s holds an image of project %s; only that '
                    'project or an admin may delete it' % (volume.id, owner))


def glance_locations(volume_id):
    """Every location of this Glance's database naming ``volume_id``.

    :returns: (image id, image live, location status) tuples; deleted
        locations left out
    """
    try:
        from glance.db.sqlalchemy import api as db_api
        from glance.db.sqlalchemy import models
    except ImportError:
        raise GlanceUnavailable('glance is not installed here')
    loc, image = models.ImageLocation, models.Image
    try:
        with db_api.session_for_read() as session:
            rows = session.query(
                loc.image_id, image.deleted, image.status, loc.status,
                loc.value).join(image, loc.image_id == image.id).filter(
                    loc.deleted.is_(False),
                    loc.value.like('cinder://%' + volume_id)).all()
    except Exception as e:
        raise GlanceUnavailable('no Glance database: %s' % e)
    return [(image_id, not deleted and status not in ('deleted', 'killed'),
             loc_status) for image_id, deleted, status, loc_status, value
            in rows if value.rstrip('/').rsplit('/', 1)[-1] == volume_id]


def active_images_of(backend):
    """(image id, volume id) of each active image's location in ``backend``.

    The live ``cinder://<backend>/<volume>`` locations of images Glance
    serves (reconcile looks for those whose volume is gone).
    """
    try:
        from glance.db.sqlalchemy import api as db_api
        from glance.db.sqlalchemy import models
    except ImportError:
        raise GlanceUnavailable('glance is not installed here')
    loc, image = models.ImageLocation, models.Image
    prefix = 'cinder://%s/' % backend
    try:
        with db_api.session_for_read() as session:
            rows = session.query(loc.image_id, loc.value).join(
                image, loc.image_id == image.id).filter(
                    loc.deleted.is_(False), loc.status == 'active',
                    image.deleted.is_(False), image.status == 'active',
                    loc.value.like(prefix + '%')).all()
    except Exception as e:
        raise GlanceUnavailable('no Glance database: %s' % e)
    return [(image_id, value[len(prefix):].strip('/'))
            for image_id, value in rows]


def _locations_or_none(volume_id, lookup):
    """:func:`glance_locations`, or None when Glance cannot be asked."""
    try:
        return (lookup or glance_locations)(volume_id)
    except GlanceUnavailable:
        return None
    except Exception as e:
        LOG.warning('Cannot read which images name volume %s from Glance: '
                    '%s', volume_id, e)
        return None


def images_naming(volume_id, lookup=None):
    """The ids of the images whose live locations name ``volume_id``.

    None when Glance cannot be asked.
    """
    rows = _locations_or_none(volume_id, lookup)
    if rows is None:
        return None
    return sorted({image_id for image_id, _live, _status in rows})


def other_images_using(volume_id, lookup=None):
    """The images besides the one being deleted that still use the volume.

    Glance calls the store's delete while the image being deleted still
    names the volume (its location is ``active``, or ``pending_delete``
    when the scrubber deletes it later), and the store is never told which
    image that is. So the volume is another image's too when two or more
    images name it and one of them lives with an ``active`` location: then
    the ids of those images; else an empty list. None when Glance cannot
    be asked.
    """
    rows = _locations_or_none(volume_id, lookup)
    if rows is None:
        return None
    naming = {image_id for image_id, _live, status in rows
              if status in ('active', 'pending_delete')}
    live = {image_id for image_id, alive, status in rows
            if alive and status == 'active'}
    if len(naming) >= 2 and live:
        return sorted(naming)
    return []


def owner_for_upload(context, image_id, lookup=None):
    """The project that owns the image being uploaded, or None.

    Glance lets a non-admin upload only into its own project's images, so
    the request's project is the owner. An admin may upload into any
    project's image; then the owner is read from Glance's database, in the
    glance-api process the store runs in (a request back to the Glance API
    could wait on the very workers that are busy with this upload).

    :param lookup: callable(context, image_id) -> owner; Glance's by default
    """
    if context is None:
        return None
    if not _is_admin(context):
        return context.project_id
    owner = _ask_glance(context, image_id, lookup)
    if owner is None:
        LOG.warning('Owner of image %s unknown (not inside glance-api, or '
                    'Glance did not answer); the image volume gets no '
                    'image_owner, so Cinder clones it only for the project '
                    'that owns the image', image_id)
    return owner

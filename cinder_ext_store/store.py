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

"""The cinder_ext Glance store: image data in Cinder volumes.

A drop-in for glance_store's in-tree ``cinder`` driver: same locations
(``cinder://[<backend>/]<volume-id>``), volume names, metadata and options.
This module only states the flow; Cinder calls live in
:mod:`~cinder_ext_store.cinder_client`, attachments in
:mod:`~cinder_ext_store.attachment`, bytes in
:mod:`~cinder_ext_store.datapath` and volume growth in
:mod:`~cinder_ext_store.growth`.
"""

import logging
import socket
import time

from glance_store import capabilities
from glance_store.common import utils as gs_utils
import glance_store.driver
from glance_store import exceptions
import glance_store.location
from oslo_utils import excutils
from oslo_utils import units

from cinder_ext_store import attachment
from cinder_ext_store import cinder_client
from cinder_ext_store import datapath
from cinder_ext_store import growth
from cinder_ext_store import host as host_mod
from cinder_ext_store import options

LOG = logging.getLogger(__name__)

SCHEME = 'cinder'
STORE_TYPE = 'cinder_ext'


class StoreLocation(glance_store.location.StoreLocation):
    """``cinder://<volume-id>`` or ``cinder://<backend>/<volume-id>``."""

    def process_specs(self):
        self.scheme = SCHEME
        self.volume_id = self.specs.get('volume_id')

    def get_uri(self):
        if self.backend_group:
            return '%s://%s/%s' % (SCHEME, self.backend_group,
                                   self.volume_id)
        return '%s://%s' % (SCHEME, self.volume_id)

    def parse_uri(self, uri):
        self.validate_schemas(uri, valid_schemas=(SCHEME + '://',))
        parts = uri[len(SCHEME) + 3:].split('/')
        if len(parts) > 2 or (len(parts) == 2 and not parts[0]):
            raise exceptions.BadStoreUri(
                message='Malformed cinder URI %r: expected '
                        'cinder://[<backend>/]<volume-id>' % uri)
        if not gs_utils.is_uuid_like(parts[-1]):
            raise exceptions.BadStoreUri(
                message='Cinder URI %r does not end in a volume UUID' % uri)
        self.scheme = SCHEME
        self.volume_id = parts[-1]


class Store(glance_store.driver.Store):
    """Glance store keeping each image in its own Cinder volume."""

    _CAPABILITIES = (capabilities.BitMasks.READ_RANDOM |
                     capabilities.BitMasks.WRITE_ACCESS |
                     capabilities.BitMasks.DRIVER_REUSABLE)
    OPTIONS = options.OPTIONS
    EXAMPLE_URL = 'cinder://<VOLUME_ID>'

    def __init__(self, conf, backend=None):
        super(Store, self).__init__(conf, backend=backend)
        if self.backend_group:
            self.store_conf = glance_store.driver.BackendGroupConfiguration(
                self.OPTIONS, self.backend_group, conf=self.conf)
            self._url_prefix = '%s://%s' % (SCHEME, self.backend_group)
        else:
            self.store_conf = self.conf.glance_store
            self._url_prefix = '%s://' % SCHEME
        self.cinder = cinder_client.CinderSession(self.store_conf)
        self.host = host_mod.BrickHost(self.store_conf, self.conf)
        self._load_growth_settings()

    def _load_growth_settings(self):
        self.policy = growth.GrowthPolicy.from_conf(self.store_conf)
        self.online_extend = growth.OnlineExtend(
            self.store_conf.cinder_do_extend_attached)

    @property
    def _name(self):
        return self.backend_group or STORE_TYPE

    def get_schemes(self):
        # Glance's multi-store looks the store *type* up as a scheme, and
        # locations keep the in-tree scheme.
        return (STORE_TYPE, SCHEME)

    def configure_add(self):
        """Check that this store can write; reset what it learned."""
        missing = host_mod.missing_modules()
        if cinder_client.cinder_v3 is None:
            missing.insert(0, 'python-cinderclient')
        if missing:
            raise exceptions.BadStoreConfiguration(
                store_name=self._name,
                reason='%s not installed' % ', '.join(missing))
        reason = cinder_client.incomplete_credentials(self.store_conf)
        if reason:
            raise exceptions.BadStoreConfiguration(store_name=self._name,
                                                   reason=reason)
        self._load_growth_settings()
        self._check_volume_type()

    def _check_volume_type(self):
        vtype = self.store_conf.cinder_volume_type
        if not vtype:
            return
        if not cinder_client.service_credentials_set(self.store_conf):
            LOG.info('Store %s: cannot check volume type %s at start-up '
                     'without service credentials', self._name, vtype)
            return
        try:
            exists = self.cinder.api().volume_type_exists(vtype)
        except Exception as e:
            LOG.warning('Store %s: could not check volume type %s: %s',
                        self._name, vtype, e)
            return
        if not exists:
            LOG.warning('Store %s: cinder_volume_type %s does not exist in '
                        'Cinder; volume creation will fail', self._name,
                        vtype)

    # -- helpers -----------------------------------------------------------

    def _api(self, context):
        return self.cinder.api(context)

    def _location_uri(self, volume_id):
        if self.backend_group:
            return '%s/%s' % (self._url_prefix, volume_id)
        return '%s%s' % (self._url_prefix, volume_id)

    @staticmethod
    def _image_size(volume):
        recorded = (volume.metadata or {}).get('image_size')
        if recorded and int(recorded) > 0:
            return int(recorded)
        return volume.size * growth.GIB

    @staticmethod
    def _check_belongs(volume, location):
        """Refuse a volume that holds another image's data."""
        owner = (volume.metadata or {}).get('glance_image_id')
        if location.image_id and owner and owner != location.image_id:
            raise exceptions.NotFound(
                message='Volume %s holds image %s, not image %s'
                        % (volume.id, owner, location.image_id))

    def _volume_for(self, api, location):
        volume = api.get(location.store_location.volume_id)
        self._check_belongs(volume, location)
        return volume

    # -- the store API -----------------------------------------------------

    @glance_store.driver.back_compat_add
    @capabilities.check
    def add(self, image_id, image_file, image_size, hashing_algo,
            context=None, verifier=None):
        """Write an image into a new volume; returns the 5-tuple."""
        started = time.monotonic()
        image_size = image_size or 0  # chunked uploads: 0 (or None)
        api = self._api(context)
        hashes = datapath.Hashes(hashing_algo, verifier)
        known = image_size > 0
        size_gib = (growth.gib_for(image_size) if known
                    else self.policy.initial_gib)
        metadata = {'glance_image_id': image_id,
                    'image_size': str(image_size)}
        if context is not None and context.project_id:
            metadata['image_owner'] = context.project_id
        LOG.info('Storing image %s (%s) in a %d GiB volume of store %s',
                 image_id, '%d bytes' % image_size if known else
                 'size unknown', size_gib, self._name)
        try:
            volume = api.create(size_gib, 'image-%s' % image_id, metadata,
                                self.store_conf.cinder_volume_type)
            try:
                target = growth.TargetVolume(
                    api, self.host, volume, self.policy, self.online_extend,
                    growable=not known,
                    direct=self.store_conf.cinder_ext_direct_io)
                written = self._write(target, image_file, image_size, hashes)
                if written != image_size:
                    api.set_metadata(volume.id, {'image_size': str(written)})
                api.set_readonly(volume.id)
            except BaseException:
                with excutils.save_and_reraise_exception():
                    LOG.error('Upload of image %s into volume %s failed; '
                              'deleting the volume', image_id, volume.id)
                    api.delete_quietly(volume.id)
            md5, multihash = hashes.hexdigests()
        finally:
            hashes.close()
        elapsed = time.monotonic() - started
        LOG.info('Image %s stored in volume %s: %d bytes in %.2fs '
                 '(%.1f MiB/s), %d extend(s), %d attachment(s)',
                 image_id, volume.id, written, elapsed,
                 written / units.Mi / max(elapsed, 1e-6), target.extends,
                 target.attach_cycles)
        metadata = {'store': self.backend_group} if self.backend_group else {}
        return (self._location_uri(volume.id), written, md5, multihash,
                metadata)

    def _write(self, target, image_file, image_size, hashes):
        target.open()
        try:
            written = datapath.copy_image(image_file, target, image_size,
                                          hashes,
                                          self.store_conf.cinder_ext_read_size)
        except BaseException:
            with excutils.save_and_reraise_exception():
                target.close(succeeded=False)
        target.close(succeeded=True)
        return written

    @capabilities.check
    def get(self, location, offset=0, chunk_size=None, context=None):
        """Iterate over the image; ``chunk_size`` is the length to read.

        :returns: (iterator, length)
        """
        api = self._api(context)
        volume = self._volume_for(api, location)
        size = self._image_size(volume)
        if offset < 0 or offset > size:
            raise exceptions.BackendException(
                'Offset %d is outside image volume %s of %d bytes'
                % (offset, volume.id, size))
        length = size - offset
        if chunk_size is not None:
            length = min(chunk_size, length)
        reader = attachment.VolumeReader(api, self.host, volume.id, offset,
                                         length, self.READ_CHUNKSIZE)
        return reader, length

    def get_size(self, location, context=None):
        volume = self._volume_for(self._api(context), location)
        return self._image_size(volume)

    @capabilities.check
    def delete(self, location, context=None):
        """Delete the image's volume, detaching our leftover attachments."""
        api = self._api(context)
        volume = self._volume_for(api, location)
        hostname = socket.gethostname()
        mine = [att['attachment_id']
                for att in getattr(volume, 'attachments', None) or ()
                if att.get('host_name') == hostname and
                att.get('attachment_id')]
        for attachment_id in mine:
            LOG.warning('Volume %s still has attachment %s on this host; '
                        'deleting it', volume.id, attachment_id)
            try:
                api.attachment_delete(attachment_id, volume.id)
            except exceptions.NotFound:
                pass  # a reader released it meanwhile
        if mine:
            api.wait(volume.id, 'available', ('in-use', 'detaching',
                                              'attaching', 'reserved'),
                     'detach before deletion')
        api.delete(volume.id)
        LOG.info('Deleted image volume %s', volume.id)

    def is_image_associated_with_store(self, context, volume_id):
        """Whether a legacy ``cinder://<id>`` image belongs to this store.

        It does when the volume's type is this store's ``cinder_volume_type``
        (or, when that is unset, Cinder's default type).
        """
        try:
            api = self._api(context)
            volume = api.get(volume_id)
            wanted = self.store_conf.cinder_volume_type
            if not wanted:
                wanted = api.default_volume_type()
            return volume.volume_type == wanted
        except Exception as e:
            LOG.warning('Store %s: cannot tell whether volume %s belongs to '
                        'it: %s', self._name, volume_id, e)
            return False

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
This module only states the flow. Where the rest lives:

* :mod:`~cinder_ext_store.options` - the options, with their help;
* :mod:`~cinder_ext_store.tuning` - built-in sizes and timings;
* :mod:`~cinder_ext_store.cinder_session` - credentials, TLS, endpoint;
* :mod:`~cinder_ext_store.cinder_api` - Cinder calls, retries, lost
  answers, waits, errors, Cinder's GiB;
* :mod:`~cinder_ext_store.brick_host` - os-brick and privsep on this host;
* :mod:`~cinder_ext_store.privileged` - the store's own privileged helper
  (lends attached devices to glance-api's user);
* :mod:`~cinder_ext_store.attachments` - attach / detach with cleanup;
* :mod:`~cinder_ext_store.host_records`,
  :mod:`~cinder_ext_store.upload_markers`,
  :mod:`~cinder_ext_store.read_share` - what this host holds, on record;
* :mod:`~cinder_ext_store.ownership` - whose image volume, which images
  name it;
* :mod:`~cinder_ext_store.devices` - an attached volume's bytes;
* :mod:`~cinder_ext_store.hashing` - md5, multihash, verifier;
* :mod:`~cinder_ext_store.pipeline` - the bounded copy of an upload;
* :mod:`~cinder_ext_store.write_target` - an upload's volume, grown;
* :mod:`~cinder_ext_store.growth` - how much to grow, online or not;
* :mod:`~cinder_ext_store.reader` - the download iterator;
* :mod:`~cinder_ext_store.stats` - what each add and get did;
* :mod:`~cinder_ext_store.check`, :mod:`~cinder_ext_store.reconcile`,
  :mod:`~cinder_ext_store.cli` - the operator tools, which use the public
  surface of :class:`Store` (``name``, ``api()``, ``check_lock_path()``,
  ``volume_type()``, ``uploads``, ``shares``).
"""

import logging
import os
import tempfile
import threading

from glance_store import capabilities
from glance_store.common import utils as gs_utils
import glance_store.driver
from glance_store import exceptions
import glance_store.location
from oslo_config import cfg
from oslo_utils import excutils
from oslo_utils import units

from cinder_ext_store import brick_host
from cinder_ext_store import cinder_session
from cinder_ext_store import errors
from cinder_ext_store import growth
from cinder_ext_store import hashing
from cinder_ext_store import host_records
from cinder_ext_store import memory
from cinder_ext_store import options
from cinder_ext_store import ownership
from cinder_ext_store import pipeline
from cinder_ext_store import read_share
from cinder_ext_store import reader
from cinder_ext_store import spare_volumes
from cinder_ext_store import stats as stats_mod
from cinder_ext_store import tuning as tuning_mod
from cinder_ext_store import upload_markers
from cinder_ext_store import write_target

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
    """Glance store keeping each image in its own Cinder volume.

    :param tuning: built-in sizes and timings
        (:class:`~cinder_ext_store.tuning.Tuning`); tests pass smaller ones
    """

    _CAPABILITIES = (capabilities.BitMasks.READ_RANDOM |
                     capabilities.BitMasks.WRITE_ACCESS |
                     capabilities.BitMasks.DRIVER_REUSABLE)
    OPTIONS = options.OPTIONS
    EXAMPLE_URL = 'cinder://<VOLUME_ID>'

    def __init__(self, conf, backend=None, tuning=tuning_mod.DEFAULT):
        self.tuning = tuning
        super(Store, self).__init__(conf, backend=backend)
        if self.backend_group:
            self.store_conf = glance_store.driver.BackendGroupConfiguration(
                self.OPTIONS, self.backend_group, conf=self.conf)
            self._url_prefix = '%s://%s' % (SCHEME, self.backend_group)
        else:
            self.store_conf = self.conf.glance_store
            self._url_prefix = '%s://' % SCHEME
        self.cinder = cinder_session.CinderSession(self.store_conf, self.name,
                                                   tuning)
        self.host = brick_host.BrickHost(self.store_conf, self.conf)
        self._observers = []
        self._shares = None
        self._shares_lock = threading.Lock()
        self._spares = None
        self._spares_lock = threading.Lock()
        self._load_growth_settings()

    def _load_growth_settings(self):
        self.policy = growth.GrowthPolicy.from_conf(self.store_conf)
        self.online_extend = growth.OnlineExtend(
            self.store_conf.cinder_do_extend_attached,
            ttl=self.tuning.refusal_ttl, clock=self.tuning.clock)

    @property
    def name(self):
        """The store's name in logs and errors: its backend, else its type."""
        return self.backend_group or STORE_TYPE

    def get_schemes(self):
        # Glance's multi-store looks the store *type* up as a scheme, and
        # locations keep the in-tree scheme.
        return (STORE_TYPE, SCHEME)

    def add_observer(self, callback):
        """Call ``callback(stats)`` after every add and get of this store.

        ``stats`` is the operation's
        :class:`~cinder_ext_store.stats.TransferStats`; for a get it comes
        when the volume is released. Called in the operation's thread.
        """
        self._observers.append(callback)

    def remove_observer(self, callback):
        self._observers.remove(callback)

    def _report(self, stats, error=None):
        """Log what an operation did, once, and tell the observers.

        Call it outside an exception handler: oslo.log would append the
        error a second time to a warning logged inside one.
        """
        stats.finish(error)
        if error is None or stats.aborted:
            LOG.info('%s', stats)
        else:
            LOG.warning('%s', stats)
        for callback in list(self._observers):
            try:
                callback(stats)
            except Exception:
                LOG.exception('Store %s: stats observer %r failed',
                              self.name, callback)

    def configure_add(self):
        """Check that this store can write; reset what it learned."""
        reason = cinder_session.incomplete_credentials(self.store_conf)
        if reason:
            raise exceptions.BadStoreConfiguration(store_name=self.name,
                                                   reason=reason)
        self.check_lock_path()
        reason = self.host.privsep_problem()
        if reason:
            raise exceptions.BadStoreConfiguration(store_name=self.name,
                                                   reason=reason)
        self._load_growth_settings()
        self._check_volume_type()

    def check_lock_path(self):
        """Readers and reconcile need a writable lock path: refuse without.

        :returns: the lock path
        """
        path = self.lock_path()
        try:
            os.makedirs(path, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=path, prefix='.cinder-ext-')
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise exceptions.BadStoreConfiguration(
                store_name=self.name,
                reason='lock path %s is not writable by this process (uid '
                       '%d): %s; make it writable by the user glance-api '
                       'runs as, or set [oslo_concurrency] lock_path'
                       % (path, os.geteuid(), e))
        return path

    def volume_type_name(self, api):
        """The name of the volume type this store creates volumes of."""
        return self.store_conf.cinder_volume_type or api.default_volume_type()

    def volume_type(self, api):
        """The volume type this store creates volumes of.

        :returns: (name, the type as Cinder shows it, or None when the
            store's project sees no type of that name); unset in the
            configuration, Cinder's default type
        """
        name = self.volume_type_name(api)
        return name, api.volume_type(name)

    def _check_volume_type(self):
        vtype = self.store_conf.cinder_volume_type
        if not vtype:
            return
        if not cinder_session.service_credentials_set(self.store_conf):
            LOG.info('Store %s: cannot check volume type %s at start-up '
                     'without service credentials', self.name, vtype)
            return
        try:
            api = self.api()
            found = self.volume_type(api)[1]
            encrypted = found and api.volume_type_encrypted(found)
        except Exception as e:
            LOG.warning('Store %s: could not check volume type %s: %s',
                        self.name, vtype, e)
            return
        if found is None:
            LOG.warning('Store %s: cinder_volume_type %s does not exist in '
                        'Cinder; volume creation will fail', self.name,
                        vtype)
        elif encrypted:
            raise exceptions.BadStoreConfiguration(
                store_name=self.name,
                reason='volume type %s is encrypted (%s): the store would '
                       'write image data in plaintext over the LUKS header; '
                       'use a volume type without encryption'
                       % (vtype, encrypted))

    # -- helpers -----------------------------------------------------------

    @property
    def shares(self):
        """This host's shared read attachments (made on first use)."""
        with self._shares_lock:
            if self._shares is None:
                records = host_records.Records(self.lock_path())
                self._uploads = upload_markers.UploadMarkers(
                    records, self.host, backend=self.record_name)
                self._shares = read_share.ReadShares(
                    records, self.host, self._uploads,
                    retries=self.store_conf.cinder_attachment_retry_attempts,
                    direct=self.store_conf.cinder_ext_direct_io,
                    sleep=self.tuning.sleep)
            return self._shares

    @property
    def spares(self):
        """This process's spare volumes (made on first use)."""
        uploads = self.uploads
        with self._spares_lock:
            if self._spares is None:
                count = self.store_conf.cinder_ext_spare_volumes
                if count and not cinder_session.service_credentials_set(
                        self.store_conf):
                    LOG.warning('Store %s: cinder_ext_spare_volumes needs '
                                'the service credentials (cinder_store_*) '
                                'to make volumes outside a request; no '
                                'spare volumes', self.name)
                    count = 0
                self._spares = spare_volumes.SpareVolumes(
                    count, self.api, self.host, uploads,
                    volume_type=self.store_conf.cinder_volume_type,
                    direct=self.store_conf.cinder_ext_direct_io)
            return self._spares

    @property
    def record_name(self):
        """This store's name in the host's records: its backend."""
        return self.backend_group or 'glance_store'

    @property
    def uploads(self):
        """This host's upload markers."""
        return self.shares.uploads

    def lock_path(self):
        """Where this host's locks and records live (glance-api's).

        :raises BadStoreConfiguration: none is configured
        """
        for group in ('oslo_concurrency', 'os_brick'):
            try:
                path = self.conf[group].lock_path
            except (cfg.NoSuchOptError, cfg.NoSuchGroupError, KeyError):
                path = None
            if path:
                return path
        raise exceptions.BadStoreConfiguration(
            store_name=self.name,
            reason='no lock path: set [oslo_concurrency] lock_path (readers '
                   'of one image share state and locks there)')

    def api(self, context=None):
        """The Cinder API for one request (``context``: Glance's)."""
        return self.cinder.api(context)

    def _location_uri(self, volume_id):
        if self.backend_group:
            return '%s/%s' % (self._url_prefix, volume_id)
        return '%s%s' % (self._url_prefix, volume_id)

    @staticmethod
    def _image_size(api, volume):
        """The image's bytes: ``image_size`` metadata, 0 included.

        Volumes without it (made by Cinder's upload-to-image, or by older
        tools) hold the image in the whole volume.
        """
        try:
            return int((volume.metadata or {})['image_size'])
        except (KeyError, TypeError, ValueError):
            return api.bytes_for(volume.size)

    @staticmethod
    def _volume_for(api, location):
        """The location's volume, refused unless it is an image volume."""
        volume = api.get(location.store_location.volume_id)
        ownership.check_image_volume(volume, location.image_id)
        return volume

    # -- the store API -----------------------------------------------------

    @glance_store.driver.back_compat_add
    @capabilities.check
    def add(self, image_id, image_file, image_size, hashing_algo,
            context=None, verifier=None):
        """Write an image into a new volume of its own.

        :param image_id: Glance's id of the image (names the volume)
        :param image_file: the data (``read(n)``, b'' at the end)
        :param image_size: the declared size in bytes; 0 or None when
            unknown (chunked uploads), the volume then grows as data comes
        :param hashing_algo: the multihash algorithm (e.g. ``sha512``)
        :param context: Glance's request context (owner, token, catalog)
        :param verifier: a signature verifier fed every byte, or None
        :returns: (location URI, bytes written, md5 hex, multihash hex,
            location metadata)
        :raises StorageFull: over the size cap, quota or pool capacity
        :raises Invalid: more or fewer bytes than declared
        :raises BackendException: Cinder or the host failed; the volume
            is deleted (or recorded for reconcile) either way
        """
        stats = stats_mod.TransferStats(
            'add', self.name, image_id=image_id,
            progress_interval=self.store_conf.cinder_ext_progress_interval)
        stats.total = image_size or None
        error = None
        try:
            # Before the volume: an upload that waits holds nothing else.
            with self._reserve_memory(2 * self.tuning.buffer_size, stats,
                                      'an upload'):
                result = self._add(image_id, image_file, image_size or 0,
                                   hashing_algo, context, verifier, stats)
        except BaseException as e:
            error = e
        self._report(stats, error)
        if error is not None:
            raise error  # unchanged, with its traceback
        return result

    def _add(self, image_id, image_file, image_size, hashing_algo, context,
             verifier, stats):
        # Chunked uploads reach the store with image_size 0 (or None).
        api = self.api(context)
        hashes = hashing.ImageHashes(hashing_algo, verifier)
        known = image_size > 0
        cap = options.image_size_cap(self.store_conf, self.conf)
        if image_size > cap:
            raise exceptions.StorageFull(
                message='Image %s declares %d bytes, more than the %d bytes '
                        'store %s accepts (cinder_ext_image_size_cap, else '
                        "Glance's image_size_cap)"
                        % (image_id, image_size, cap, self.name))
        size_gib = (api.gib_for(image_size) if known
                    else self.policy.initial_gib)
        metadata = {'glance_image_id': image_id,
                    'image_size': str(image_size)}
        # What Cinder's clone check compares with the image's owner.
        owner = ownership.owner_for_upload(context, image_id)
        if owner:
            metadata['image_owner'] = owner
        LOG.info('Storing image %s (%s) in a %d GiB volume of store %s',
                 image_id, '%d bytes' % image_size if known else
                 'size unknown', size_gib, self.name)
        spare = self.spares.take(size_gib) if known else None
        claim = None
        try:
            if spare is None:
                with stats.phase('create'):
                    volume = api.create(size_gib, 'image-%s' % image_id,
                                        metadata,
                                        self.store_conf.cinder_volume_type)
            else:
                volume = spare.volume
            stats.volume_id = volume.id
            try:
                # Before anything else, so that reconcile knows whose it is
                # should this process die; a marker that cannot be written
                # fails the upload (and deletes the volume). A spare's
                # names its attachment already.
                if spare is None:
                    self.uploads.uploading(volume.id)
                else:
                    claim = spare_volumes.Claim(api, spare,
                                                'image-%s' % image_id,
                                                metadata)
                if getattr(volume, 'encrypted', False):
                    raise exceptions.BackendException(
                        'Volume %s of type %s is encrypted: the store would '
                        'write the image in plaintext over its LUKS header; '
                        'configure a volume type without encryption'
                        % (volume.id, volume.volume_type))
                target = write_target.WriteTarget(
                    api, self.host, volume, self.policy, self.online_extend,
                    growable=not known, stats=stats, max_bytes=cap,
                    # A spare's marker says so until the upload ends:
                    # reconcile deletes it only while Cinder shows a spare.
                    on_attach=lambda att: self.uploads.uploading(
                        volume.id, att, spare=spare is not None),
                    direct=self.store_conf.cinder_ext_direct_io,
                    attachment=spare and spare.attachment)
                written = self._write(target, image_file, image_size, hashes,
                                      stats)
                if claim is not None:
                    with stats.phase('claim'):
                        claim.wait()
                with stats.phase('finalize'):
                    if written != image_size:
                        api.set_metadata(volume.id,
                                         {'image_size': str(written)})
                    api.set_readonly(volume.id)
            except BaseException as e:
                with excutils.save_and_reraise_exception():
                    if stats.aborted:
                        # The client went away, or Glance (an import's
                        # liveness check, its size cap) stopped the data.
                        LOG.info('Upload of image %s into volume %s stopped '
                                 'by its data stream (%s); deleting the '
                                 'volume', image_id, volume.id,
                                 stats_mod.describe(e))
                    else:
                        LOG.error('Upload of image %s into volume %s failed; '
                                  'deleting the volume', image_id, volume.id)
                    if spare is not None:
                        # Still open if the write never began (a no-op
                        # once the write target tore it down).
                        spare.attachment.abort()
                    if claim is not None:
                        claim.wait_quietly()
                    # What cannot be deleted now stays on record for
                    # cinder-ext-store reconcile.
                    abandoned = not api.delete_quietly(volume.id)
                    self.uploads.uploaded(volume.id, abandoned=abandoned)
            else:
                self.uploads.uploaded(volume.id)
            md5, multihash = hashes.hexdigests()
        finally:
            hashes.close()
        metadata = {'store': self.backend_group} if self.backend_group else {}
        return (self._location_uri(volume.id), written, md5, multihash,
                metadata)

    def _write(self, target, image_file, image_size, hashes, stats):
        copy = pipeline.CopyPipeline(target, hashes,
                                     self.store_conf.cinder_ext_read_size,
                                     image_size, progress=stats,
                                     buffer_size=self.tuning.buffer_size)
        try:
            with target, stats.phase('copy'):
                stats.bytes = copy.run(image_file)
        except BaseException as e:
            # The data stream stopped it, or its bytes were not the size
            # declared for them: the user's or Glance's doing, not a
            # failure of the store (Glance answers 400 to the latter).
            stats.aborted = (copy.source_failed or
                             isinstance(e, exceptions.Invalid))
            raise
        return stats.bytes

    @capabilities.check
    def get(self, location, offset=0, chunk_size=None, context=None):
        """Read an image: an iterator over its bytes, and their number.

        :param location: the image's location (Glance builds it from the
            URI alone; it carries no image id)
        :param offset: the first byte to read
        :param chunk_size: the number of bytes to read from ``offset``
            (None: to the end); Glance's name for a range's length
        :param context: Glance's request context
        :returns: (iterator, length); the iterator holds the volume
            attached until it is exhausted or closed
        :raises NotFound: the volume is gone or being deleted
        :raises ReadFailed: the volume cannot be read now, or the offset
            lies outside the image (the iterator raises it too)
        """
        stats = stats_mod.TransferStats(
            'get', self.name,
            progress_interval=self.store_conf.cinder_ext_progress_interval)
        # Named in the log line even when the lookup fails.
        stats.volume_id = getattr(location.store_location, 'volume_id', None)
        try:
            api = self.api(context)
            with stats.phase('lookup'):
                volume = self._volume_for(api, location)
            stats.volume_id = volume.id
            stats.image_id = (volume.metadata or {}).get('glance_image_id')
            self._check_readable(volume)
            size = self._image_size(api, volume)
            if offset < 0 or offset > size:
                raise exceptions.BackendException(
                    'Offset %d is outside image volume %s of %d bytes'
                    % (offset, volume.id, size))
            length = size - offset
            if chunk_size is not None:
                length = min(chunk_size, length)
            stats.total = length
            it = reader.ImageReader(
                self.shares, api, volume, offset, length,
                self.READ_CHUNKSIZE, stats, self._report,
                reserve=lambda nbytes: self._reserve_memory(
                    nbytes, stats, 'a download'))
        except BaseException as e:
            if stats.image_id is None and stats.volume_id:
                # Glance never passes the image: its database names it.
                stats.image_id = ','.join(
                    ownership.images_naming(stats.volume_id) or ()) or None
            self._report(stats, e)
            errors.raise_as_read_error(e)
        return it, length

    def _reserve_memory(self, nbytes, stats, what):
        """Room for a transfer's buffers in this process's budget.

        :returns: a :class:`~cinder_ext_store.memory.Reservation` (also a
            context manager); the time waited is the ``memory`` phase
        :raises Busy: no room within ``Tuning.memory_wait``
        """
        mib = self.store_conf.cinder_ext_transfer_memory_mb
        if not mib:
            return memory.Reservation(None, 0)
        budget = memory.process_budget(mib * units.Mi)
        started = self.tuning.clock()
        try:
            return budget.reserve(nbytes, self.tuning.memory_wait,
                                  self.tuning.clock, what)
        finally:
            waited = self.tuning.clock() - started
            if waited > 0.001:
                stats.phases['memory'] = waited

    def get_size(self, location, context=None):
        """The image's size; Glance asks it of every location it adds."""
        api = self.api(context)
        volume = self._volume_for(api, location)
        ownership.check_may_register(volume, context)
        return self._image_size(api, volume)

    @staticmethod
    def _check_readable(volume):
        """Fail at once on a volume no reader can attach now."""
        if volume.status == 'deleting':
            raise exceptions.NotFound(
                message='Image volume %s is being deleted' % volume.id)
        # Attaching and detaching: another reader on this host (whose
        # share the lock serialises) or elsewhere (retried).
        if volume.status not in ('available', 'in-use', 'reserved',
                                 'attaching', 'detaching'):
            raise exceptions.BackendException(
                'Image volume %s cannot be read in status %r'
                % (volume.id, volume.status))

    @capabilities.check
    def delete(self, location, context=None):
        """Delete the image's volume, unless another image still names it.

        :param location: the image's location
        :param context: Glance's request context (whose image it is)
        :raises InUseByStore: readers on this host still read it, or
            Cinder holds it attached elsewhere (Glance answers 409)
        :raises Forbidden: it holds another project's image (403)
        :raises NotFound: the volume is already gone
        """
        api = self.api(context)
        volume = self._volume_for(api, location)
        ownership.check_may_delete(volume, context)
        sharing = ownership.other_images_using(volume.id)
        if sharing:
            # Two images name one volume (a location added by an admin, a
            # service or with show_multiple_locations): deleting one must
            # not take the other's data. Glance drops this location only.
            LOG.warning('Image volume %s is not deleted: images %s name it; '
                        'it goes with the last of them', volume.id,
                        ', '.join(sharing))
            return
        if sharing is None:
            LOG.debug('Glance cannot say which images use volume %s (not '
                      'inside glance-api): deleting it', volume.id)
        readers = self._readers_left(api, volume.id)
        if readers:
            LOG.info('Image volume %s is not deleted: %d reader(s) on this '
                     'host still read it after %d s', volume.id, readers,
                     self.tuning.readers_leave)
            raise exceptions.InUseByStore(
                message='The image is being read by %d download(s) on this '
                        'glance-api host; try again when they ended'
                        % readers)
        try:
            api.delete(volume.id)
        except exceptions.BackendException as e:
            # Another host may have attached it since it was looked at.
            status = api.get(volume.id).status
            if status in ('in-use', 'attaching', 'reserved'):
                LOG.info('Image volume %s is not deleted: it is %s (%s)',
                         volume.id, status, e)
                raise exceptions.InUseByStore(
                    message='The image is being read (its volume is %s, '
                            'maybe on another glance-api host); try again '
                            'when the downloads ended' % status)
            LOG.error('Deleting image volume %s failed: %s', volume.id, e)
            raise
        LOG.info('Deleted image volume %s', volume.id)

    def _readers_left(self, api, volume_id):
        """This host's readers of the volume once they had time to leave.

        A reader about to end (Glance's cancelled hash pass, a download
        sending its last bytes) should not turn a delete into a 409.
        """
        tuning = self.tuning
        deadline = tuning.clock() + tuning.readers_leave
        delays = tuning.poll_delays()
        while True:
            readers = self.shares.release_unless_read(api, volume_id)
            if not readers or tuning.clock() >= deadline:
                return readers
            tuning.sleep(next(delays))

    def is_image_associated_with_store(self, context, volume_id):
        """Whether a legacy ``cinder://<id>`` image belongs to this store.

        It does when the volume's type is this store's ``cinder_volume_type``
        (or, when that is unset, Cinder's default type).
        """
        try:
            api = self.api(context)
            volume = api.get(volume_id)
            return volume.volume_type == self.volume_type_name(api)
        except Exception as e:
            LOG.warning('Store %s: cannot tell whether volume %s belongs to '
                        'it: %s', self.name, volume_id, e)
            return False

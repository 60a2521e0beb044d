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

"""Spare volumes: made and attached ahead, so a small upload writes at once.

Most of a small image's upload is Cinder's: creating its volume and
attaching it cost several times the copy. With ``cinder_ext_spare_volumes``
set, each glance-api process keeps that many volumes of the smallest size
created and attached read-write; an upload of known size that fits takes
one and starts writing, then the volume becomes the image's as any other
(named ``image-<id>``, the image's metadata, detached, read-only), and a
thread of the process makes the next spare.

A spare is an upload that has no image yet, and is recorded as one (an
upload marker with ``spare``, kept by the upload that takes it until it
ends): while its process lives, reconcile keeps it; once the process is
gone, reconcile releases its attachment and deletes the volume if Cinder
still shows a spare (its name); one an upload renamed is judged as that
image's volume. A spare's metadata names the process that made it, so a
process that died between Cinder's create and its record leaves a volume
reconcile can still judge. A process that ends normally deletes its spares
itself (waiting for one being made).
"""

import atexit
import collections
import json
import logging
import os
import threading
import time

from cinder_ext_store import attachments
from cinder_ext_store import host_records

LOG = logging.getLogger(__name__)

#: The name of a spare volume until an upload takes it.
NAME = 'cinder-ext-spare'
#: Its metadata naming the process that made it (JSON, as host records
#: name processes): reconcile judges a spare no record names by it.
MADE_BY = 'cinder_ext_spare_of'
#: Seconds between attempts after a spare could not be made.
RETRY_DELAY = 30


def is_spare(volume):
    """Whether Cinder shows ``volume`` as an untaken spare."""
    return (volume.name == NAME and
            'glance_image_id' not in (volume.metadata or {}))


def maker(volume):
    """The process that made a spare (pid, start, place), or None."""
    try:
        found = json.loads((volume.metadata or {})[MADE_BY])
    except (KeyError, TypeError, ValueError):
        return None
    needed = tuple(host_records.PLACE) + ('pid', 'start')
    if not (isinstance(found, dict) and
            all(found.get(k) is not None for k in needed)):
        return None
    return found


class Spare(object):
    """One ready spare: its volume and its open read-write attachment."""

    def __init__(self, volume, attachment):
        self.volume = volume
        self.attachment = attachment


class Claim(object):
    """A taken spare becoming the image's volume, beside the copy.

    One Cinder update sets the name and replaces the metadata (the
    image's, with the spare's creation token), in a thread of its own
    while the data is written: :meth:`wait` before the upload finishes.
    """

    def __init__(self, api, spare, name, metadata):
        self.volume_id = spare.volume.id
        kept = {k: v for k, v in (spare.volume.metadata or {}).items()
                if k != MADE_BY}
        self._call = lambda: api.rename(spare.volume.id, name,
                                        dict(kept, **metadata))
        self._error = None
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True,
                         name='cinder-ext-claim').start()

    def _run(self):
        try:
            self._call()
        except BaseException as e:
            self._error = e
        finally:
            self._done.set()

    def wait(self):
        """Return once Cinder answered; raise what it raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error

    def wait_quietly(self):
        """Wait for the answer, whatever it was (the upload failed)."""
        self._done.wait()


class SpareVolumes(object):
    """This process's spares for one store.

    :param count: spares to keep ready (``cinder_ext_spare_volumes``)
    :param api_for: returns a CinderAPI with the store's service
        credentials (spares are made outside any request)
    :param host: the :class:`~cinder_ext_store.brick_host.BrickHost`
    :param uploads: this host's :class:`~cinder_ext_store.upload_markers.
        UploadMarkers`, which record each spare
    :param volume_type: the store's volume type
    :param direct: open devices with O_DIRECT where they allow it
    """

    def __init__(self, count, api_for, host, uploads, volume_type=None,
                 direct=False, retry_delay=RETRY_DELAY, sleep=time.sleep):
        self.count = count
        self._api_for = api_for
        self.host = host
        self.uploads = uploads
        self.volume_type = volume_type
        self.direct = direct
        self.retry_delay = retry_delay
        self._sleep = sleep
        self._ready = collections.deque()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._pid = None
        self._stopped = False
        self._idle = threading.Event()  # no spare is being made
        self._idle.set()
        #: starts the maker thread (``spawn(target)``)
        self.spawn = _daemon

    def take(self, size_gib):
        """A ready spare of ``size_gib``, or None (then one is made).

        Only the smallest volume is kept spare: a larger image's volume is
        made for it, as without spares.
        """
        if not self.count:
            return None
        self._start()
        spare = None
        with self._lock:
            if self._ready and self._ready[0].volume.size == size_gib:
                spare = self._ready.popleft()
        self._wanted.set()
        if spare is not None:
            LOG.debug('Upload takes spare volume %s', spare.volume.id)
        return spare

    def _start(self):
        """Start this process's maker thread, once per process."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None:
                # A forked child: the parent's spares are the parent's.
                self._ready = collections.deque()
            self._pid = os.getpid()
            self._stopped = False
        self.spawn(self._run)
        atexit.register(self.stop)

    def stop(self, wait=30):
        """Make no more spares; release the ready ones (the process ends).

        A spare being made is waited for (up to ``wait`` seconds) and
        released too: a process that exits mid-create leaves a volume only
        reconcile finds (by :data:`MADE_BY`).
        """
        self._stopped = True
        self._idle.wait(wait)
        self.release_all()

    def _run(self):
        while not self._stopped:
            self._wanted.wait(60)
            self._wanted.clear()
            if not self.fill():
                self._sleep(self.retry_delay)

    def fill(self):
        """Make spares until ``count`` are ready; False if one failed."""
        while not self._stopped and len(self._ready) < self.count:
            self._idle.clear()
            try:
                spare = self.make()
            except Exception as e:
                LOG.error('Could not make a spare volume (next attempt in '
                          '%d s): %s', self.retry_delay, e)
                return False
            else:
                with self._lock:
                    self._ready.append(spare)
            finally:
                self._idle.set()
            if self._stopped:
                self.release_all()
        return True

    @property
    def ready(self):
        """The number of ready spares."""
        return len(self._ready)

    def make(self):
        """Create, record and attach one spare; all or nothing."""
        api = self._api_for()
        made_by = json.dumps(host_records.identity(), sort_keys=True)
        volume = api.create(api.gib_for(1), NAME, {MADE_BY: made_by},
                            self.volume_type)
        try:
            self.uploads.uploading(volume.id, spare=True)
            if getattr(volume, 'encrypted', False):
                raise ValueError('volume type %s is encrypted'
                                 % volume.volume_type)
            attachment = attachments.Attachment(
                api, self.host, volume.id, 'rw', direct=self.direct,
                size_gib=volume.size)
            attachment.open()
            try:
                self.uploads.uploading(volume.id, attachment, spare=True)
            except BaseException:
                attachment.abort()
                raise
        except BaseException:
            abandoned = not api.delete_quietly(volume.id)
            self.uploads.uploaded(volume.id, abandoned=abandoned)
            raise
        LOG.info('Spare volume %s (%d GiB) ready for an upload', volume.id,
                 volume.size)
        return Spare(volume, attachment)

    def release_all(self):
        """Detach and delete the ready spares."""
        while True:
            with self._lock:
                if not self._ready:
                    return
                spare = self._ready.popleft()
            volume_id = spare.volume.id
            error = None
            try:
                spare.attachment.close()
                if not spare.attachment.api.delete_quietly(volume_id):
                    error = 'Cinder did not delete it'
            except Exception as e:
                error = e
            if error is None:
                LOG.info('Spare volume %s detached and deleted', volume_id)
            else:
                LOG.error('Spare volume %s stays for cinder-ext-store '
                          'reconcile: %s', volume_id, error)
            self.uploads.uploaded(volume_id, abandoned=error is not None)


def _daemon(target):
    threading.Thread(target=target, daemon=True,
                     name='cinder-ext-spares').start()

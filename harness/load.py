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

"""A load run: many Glance users at once, every download verified.

``clients`` threads, each its own keystone session, run a weighted mix of
operations through the real Glance and Cinder APIs until ``duration``
ends: image create + upload (known size, or chunked without one), verified
downloads, deletes (each client keeps a few images), volumes from images
(Cinder clones them) and upload-to-image (Cinder registers a clone, Glance
hashes it through the store). Sizes are mostly small, some large.
Meanwhile the chaos thread restarts cinder-volume and SIGKILLs a glance-api
worker (uWSGI starts another), and a sampler records every worker's RSS.
At the end: the clients delete what they hold, ``reconcile --apply`` runs
as glance-api's user, and the leak snapshot is compared with the start.

An error counts as expected only when its operation overlapped a chaos
event (a killed worker's requests fail; a stopped volume service may
outlast the retries); a download that returns the full size with other
bytes is corrupt, always.
"""

import collections
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import pwd
import random
import signal
import subprocess
import tempfile
import threading
import time

from harness import glance as glance_mod
from harness import images
from harness import leaks
from harness import procfs
from harness import waiting

MiB = 1024 * 1024
GiB = 1024 * MiB
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: operation -> weight in the mix
MIX = {'upload': 25, 'upload-chunked': 10, 'download': 45,
       'volume-from-image': 8, 'upload-to-image': 2}
#: Statuses only Cinder's volume service moves a volume out of: after
#: the run, a volume of upload-to-image still in one was left by the
#: killed service (any other leftover is the leak check's).
CINDER_STUCK = ('creating', 'uploading', 'downloading')
#: Seconds after a chaos event during which failures are expected (the
#: volume service's start, a worker's in-flight requests).
SETTLE = 15


@dataclasses.dataclass
class Settings(object):
    duration: float = 600
    clients: int = 6
    #: images a client keeps; the oldest is deleted beyond it
    keep: int = 3
    small_mib: tuple = (1, 64)
    #: share of large images and their range (GiB); 0: none
    large_share: float = 0.1
    large_gib: tuple = (0.5, 2.0)
    chaos: bool = True
    seed: int = 0
    rss_interval: float = 2.0
    #: through the in-tree driver's glance-api (a comparison; no chaos)
    intree: bool = False
    #: operation -> weight
    mix: dict = dataclasses.field(default_factory=lambda: dict(MIX))


@dataclasses.dataclass
class Op(object):
    name: str
    started: float
    seconds: float
    bytes: int = 0
    error: str = None
    corrupt: bool = False
    expected: bool = False


@dataclasses.dataclass
class Image(object):
    id: str
    size: int
    sha256: str
    seed: int


class Recorder(object):
    """What every thread did, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.chaos = []  # (name, start, end)
        self.rss = []  # (t, {pid: bytes})

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def timed(self, name, func, nbytes=0):
        """Run ``func()``; record it. Returns its value, None if it failed."""
        started = time.monotonic()
        op = Op(name, started, 0.0, nbytes)
        try:
            value = func()
        except Corrupt as e:
            op.error, op.corrupt, value = 'corrupt: %s' % e, True, None
        except Exception as e:
            op.error, value = _kind(e), None
        op.seconds = time.monotonic() - started
        self.add(op)
        return value

    def judge(self):
        """Mark errors that overlapped a chaos event as expected."""
        for op in self.ops:
            if op.error and not op.corrupt:
                op.expected = any(
                    op.started <= end + SETTLE and
                    op.started + op.seconds >= start
                    for _name, start, end in self.chaos)


class Corrupt(Exception):
    """A download that returned other bytes than were uploaded."""


def _kind(error):
    status = getattr(error, 'status_code', None) or getattr(
        getattr(error, 'response', None), 'status_code', None)
    return '%s%s' % (type(error).__name__,
                     ' %s' % status if status else '')


def image_size(rng, settings):
    if settings.large_share and rng.random() < settings.large_share:
        low, high = settings.large_gib
        return int(rng.uniform(low, high) * GiB) + rng.randrange(4096)
    low, high = settings.small_mib
    return int(rng.uniform(low, high) * MiB) + rng.randrange(4096)


class Client(threading.Thread):
    """One user running the mix until the deadline."""

    def __init__(self, index, cloud, backend, volume_type, settings,
                 recorder, deadline, glance_url=None):
        super(Client, self).__init__(name='load-client-%d' % index,
                                     daemon=True)
        self.rng = random.Random('%s-%d' % (settings.seed, index))
        self.index = index
        self.backend = backend
        self.volume_type = volume_type
        self.settings = settings
        self.rec = recorder
        self.deadline = deadline
        session = cloud.new_session()  # one per thread
        self.user = glance_mod.GlanceUser(cloud, session=session,
                                          url=glance_url)
        self.cinder = cloud.cinder(session=session)
        self.images = collections.OrderedDict()
        #: this user's volumes that could not be deleted
        self.stuck = []
        #: images whose delete failed
        self.undeleted = []
        #: images Cinder made by upload-to-image
        self.registered = []

    def run(self):
        ops, weights = zip(*self.settings.mix.items())
        while time.monotonic() < self.deadline:
            name = self.rng.choices(ops, weights)[0]
            if name != 'upload' and name != 'upload-chunked' and \
                    not self.images:
                name = 'upload'
            getattr(self, name.replace('-', '_'))()
            while len(self.images) > self.settings.keep:
                self.delete(next(iter(self.images)))

    def _upload(self, sized):
        size = image_size(self.rng, self.settings)
        seed = self.rng.randrange(1 << 30)
        src = images.ImageSource(size, seed=seed)

        def upload():
            image = self.user.create('load-%d' % self.index)
            # Recorded first: an upload that fails still has an image.
            self.images[image.id] = None
            self.user.client.images.upload(
                image.id, images.Unsized(src),
                image_size=size if sized else None, backend=self.backend)
            self.images[image.id] = Image(image.id, size, src.hexdigest(),
                                          seed)
        self.rec.timed('upload' if sized else 'upload-chunked', upload, size)

    def upload(self):
        self._upload(True)

    def upload_chunked(self):
        self._upload(False)

    def _pick(self):
        held = [i for i in self.images.values() if i is not None]
        return self.rng.choice(held) if held else None

    def download(self):
        image = self._pick()
        if image is None:
            return

        def download():
            status, sha256, n = self.user.download(image.id)
            if status != 200:
                raise DownloadFailed(status)
            if n != image.size:
                raise ShortDownload('%d of %d bytes' % (n, image.size))
            if sha256 != image.sha256:
                raise Corrupt('image %s: sha256 %s, uploaded %s'
                              % (image.id, sha256, image.sha256))
        self.rec.timed('download', download, image.size)

    def delete(self, image_id):
        self.images.pop(image_id, None)
        if self.rec.timed('delete', lambda: self._delete_image(image_id) or
                          True) is None:
            self.undeleted.append(image_id)

    def _delete_image(self, image_id):
        try:
            self.user.client.images.delete(image_id)
        except Exception as e:
            if getattr(e, 'code', None) != 404:
                raise

    def _volume_from(self, image):
        gib = max(1, -(-image.size // GiB))
        volume = self.cinder.volumes.create(
            gib, imageRef=image.id, name='load-from-%s' % image.id,
            volume_type=self.volume_type)
        try:
            _wait_status(self.cinder, volume.id, 'available', 300)
        except Exception:
            self._delete_volume(volume.id)
            raise
        return volume

    def _delete_volume(self, volume_id):
        try:
            _wait_status(self.cinder, volume_id, ('available', 'error'), 300)
            self.cinder.volumes.delete(volume_id)
            waiting.until(lambda: not _exists(self.cinder, volume_id), 300,
                          0.5, what='volume %s deleted' % volume_id)
        except Exception:
            # e.g. left "uploading" by a volume service killed meanwhile:
            # see run()'s end.
            self.stuck.append(volume_id)

    def volume_from_image(self):
        image = self._pick()
        if image is None or image.size > GiB:
            return

        def volume_from_image():
            volume = self._volume_from(image)
            self._delete_volume(volume.id)
        self.rec.timed('volume-from-image', volume_from_image, image.size)

    def upload_to_image(self):
        image = self._pick()
        if image is None or image.size > GiB:
            return

        def upload_to_image():
            volume = self._volume_from(image)
            try:
                reply = self.cinder.volumes.upload_to_image(
                    volume, False, 'load-of-%s' % volume.id, 'bare', 'raw',
                    'private', False)
                new_id = reply[1]['os-volume_upload_image']['image_id']
                self.images[new_id] = None  # deleted at the end
                self.registered.append(new_id)
                # Glance's hash pass of a 1 GiB volume: seconds; one a
                # killed worker ran never ends.
                new = waiting.until(
                    lambda: _hashed(self.user, new_id), 120, 0.5,
                    what='image %s active and hashed' % new_id)
                want = hashlib.md5()
                want.update(images.ImageSource(image.size,
                                               seed=image.seed).expected())
                _update_zeros(want, volume.size * GiB - image.size)
                if new.checksum != want.hexdigest():
                    raise Corrupt('image %s of volume %s: md5 %s, want %s'
                                  % (new_id, volume.id, new.checksum,
                                     want.hexdigest()))
            finally:
                self._delete_volume(volume.id)
        self.rec.timed('upload-to-image', upload_to_image, image.size)

    def clean(self):
        for image_id in list(self.images):
            self.delete(image_id)


class DownloadFailed(Exception):
    def __init__(self, status):
        super(DownloadFailed, self).__init__('HTTP %s' % status)
        self.status_code = status


class ShortDownload(Exception):
    pass


def _update_zeros(digest, n):
    block = bytes(min(n, 16 * MiB))
    while n > 0:
        digest.update(block[:n])
        n -= len(block)


def _hashed(user, image_id):
    image = user.client.images.get(image_id)
    if image.status in ('killed', 'deleted'):
        raise RuntimeError('image %s %s' % (image_id, image.status))
    return image if image.status == 'active' and image.checksum else None


def _exists(cinder, volume_id):
    from cinderclient import exceptions
    try:
        cinder.volumes.get(volume_id)
        return True
    except exceptions.NotFound:
        return False


def _wait_status(cinder, volume_id, want, timeout):
    want = (want,) if isinstance(want, str) else want

    def reached():
        status = cinder.volumes.get(volume_id).status
        if status == 'error' and 'error' not in want:
            raise RuntimeError('volume %s went to error' % volume_id)
        return status in want
    waiting.until(reached, timeout, 0.5,
                  what='volume %s %s' % (volume_id, '/'.join(want)))


def glance_workers(cloud, intree=False):
    glance = cloud.facts.glance
    master = procfs.read_pidfile(glance.intree_pidfile if intree
                                 else glance.pidfile)
    return procfs.children(master) if master else []


class Sampler(threading.Thread):
    """glance-api workers' RSS every ``interval`` seconds."""

    def __init__(self, cloud, recorder, interval, intree=False):
        super(Sampler, self).__init__(name='load-rss', daemon=True)
        self.cloud, self.rec, self.interval = cloud, recorder, interval
        self.intree = intree
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.interval):
            found = {}
            for pid in glance_workers(self.cloud, self.intree):
                try:
                    rss = procfs.rss_bytes(pid)
                except OSError:
                    continue  # gone meanwhile
                if rss:  # 0: killed, not yet reaped
                    found[pid] = rss
            with self.rec.lock:
                self.rec.rss.append((time.monotonic(), found))


class Chaos(threading.Thread):
    """A cinder-volume restart, then a glance-api worker killed."""

    def __init__(self, cloud, recorder, started, duration):
        super(Chaos, self).__init__(name='load-chaos', daemon=True)
        self.cloud, self.rec = cloud, recorder
        self.at = (started + duration * 0.4, started + duration * 0.6)

    def run(self):
        _sleep_until(self.at[0])
        start = time.monotonic()
        stack = os.path.join(REPO, 'tools', 'stack')
        subprocess.run([stack, 'stop', 'cinder-volume'], check=True,
                       capture_output=True)
        time.sleep(3)
        subprocess.run([stack, 'start', 'cinder-volume'], check=True,
                       capture_output=True)
        self.rec.chaos.append(('cinder-volume restarted', start,
                               time.monotonic()))
        _sleep_until(self.at[1])
        workers = glance_workers(self.cloud)
        if workers:
            start = time.monotonic()
            os.kill(random.choice(workers), signal.SIGKILL)
            self.rec.chaos.append(('glance-api worker killed', start,
                                   time.monotonic()))


def _sleep_until(moment):
    time.sleep(max(0.0, moment - time.monotonic()))


def release_spares(cloud, inspector, timeout=120):
    """Have glance-api's workers delete their spare volumes; wait for it.

    Live workers hold them (``cinder_ext_spare_volumes``), made in the
    background: a leak snapshot would count them. A graceful reload
    (SIGHUP to uWSGI's master) ends each worker, which deletes its own as
    it exits; a spare of a killed worker (its marker names a dead process)
    is reconcile's. Nothing to do without spares.
    """
    from cinder_ext_store import host_records
    records = host_records.Records(cloud.facts.glance.lock_path)
    held = set()
    for name in records.names('.upload'):
        try:
            marker = records.load(name + '.upload')
        except Exception:
            continue  # reconcile's to judge
        if (isinstance(marker, dict) and marker.get('spare') and
                host_records.judge(marker) == host_records.ALIVE):
            held.add(name)
    if not held:
        return

    def kept():
        return held & set(inspector.volumes())
    master = procfs.read_pidfile(cloud.facts.glance.pidfile)
    if master:
        os.kill(master, signal.SIGHUP)
    if not waiting.until(lambda: not kept(), timeout, 1):
        raise RuntimeError('glance-api\'s workers kept spare volumes %s '
                           'after a graceful reload' % sorted(kept()))


def reconcile(cloud):
    """``cinder-ext-store reconcile --apply`` as glance-api's user."""
    glance = cloud.facts.glance
    cmd = [os.path.join(glance.bin_dir, 'cinder-ext-store'), 'reconcile',
           '--config-dir', glance.config_dir, '--apply', '--older-than', '0']
    who = {}
    if glance.user and os.geteuid() == 0:
        entry = pwd.getpwnam(glance.user)
        who = dict(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                   cwd='/')
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          **who)


@dataclasses.dataclass
class Result(object):
    settings: Settings
    backend: str
    seconds: float
    ops: list
    chaos: list
    rss: list
    reconcile: str
    leaks: dict
    #: (volume or image id, what the admin did): Cinder's and Glance's
    #: leftovers of the chaos, cleaned as an operator would
    reset: list = dataclasses.field(default_factory=list)

    def unexpected(self):
        return [op for op in self.ops if op.error and not op.expected]

    def corrupt(self):
        return [op for op in self.ops if op.corrupt]


@contextlib.contextmanager
def alone(cloud):
    """Hold the stack's load-run lock: one run at a time.

    Two runs on one stack count each other's volumes as leaks and each
    other's chaos as unexpected failures.
    """
    path = os.path.join(cloud.facts.stack_dir or tempfile.gettempdir(),
                        'load-run.lock')
    with open(path, 'a') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError('another load run uses this stack (it holds '
                               '%s): one at a time' % path)
        yield


def run(cloud, backend, volume_type, settings, inspector=None):
    """One load run on ``backend``; returns its :class:`Result`."""
    with alone(cloud):
        return _run(cloud, backend, volume_type, settings, inspector)


def _run(cloud, backend, volume_type, settings, inspector):
    inspector = inspector or leaks.Inspector(cloud)
    release_spares(cloud, inspector)
    before = inspector.snapshot()
    rec = Recorder()
    started = time.monotonic()
    deadline = started + settings.duration
    url = cloud.facts.glance.intree_url if settings.intree else None
    clients = [Client(i, cloud.user(), backend, volume_type, settings, rec,
                      deadline, glance_url=url)
               for i in range(settings.clients)]
    sampler = Sampler(cloud, rec, settings.rss_interval, settings.intree)
    threads = clients + [sampler]
    if settings.chaos and settings.intree:
        raise ValueError('the chaos kills a worker of this store\'s '
                         'glance-api: run the in-tree comparison without it')
    if settings.chaos:
        threads.append(Chaos(cloud, rec, started, settings.duration))
    for thread in threads:
        thread.start()
    for thread in threads:
        if thread is not sampler:
            thread.join()
    for client in clients:
        client.clean()
    sampler.stop.set()
    sampler.join()
    seconds = time.monotonic() - started
    rec.judge()
    reset = reset_stuck(inspector.cinder,
                        [v for client in clients for v in client.stuck])
    reset += unblock_deletes(cloud, [i for client in clients
                                     for i in client.undeleted])
    # Cinder's image volume of an upload-to-image its volume service did
    # not finish (killed): never registered, so no image delete takes it.
    named = {'image-%s' % i for client in clients for i in client.registered}
    inspector.wait_idle()
    reset += reset_stuck(inspector.cinder, [
        v.id for v in inspector.volumes().values()
        if v.name in named and v.status in CINDER_STUCK])
    inspector.wait_idle()
    release_spares(cloud, inspector)
    done = reconcile(cloud)
    after = inspector.wait_until(before, 300)
    left = {name: sorted(after[name] - was) for name, was in before.items()
            if after[name] - was}
    return Result(settings, backend, seconds, rec.ops, rec.chaos, rec.rss,
                  done.stdout + done.stderr, left, reset)


def _glance_database(cloud):
    import configparser
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    etc = cloud.facts.glance.config_dir
    parser.read([os.path.join(etc, name) for name in sorted(os.listdir(etc))
                 if name.endswith('.conf')])
    return parser.get('database', 'connection')


#: Run by Glance's own Python (it has SQLAlchemy and the database driver).
_FORGET_HASH_OP = """
import sys, sqlalchemy
engine = sqlalchemy.create_engine(sys.argv[1])
with engine.begin() as db:
    db.execute(sqlalchemy.text(
        "DELETE FROM image_properties WHERE image_id = :i AND "
        "name = 'os_glance_hash_op_host'"), {'i': sys.argv[2]})
"""


def _forget_hash_op(cloud, image_id):
    python = os.path.join(cloud.facts.glance.bin_dir, 'python')
    subprocess.run([python, '-c', _FORGET_HASH_OP, _glance_database(cloud),
                    image_id], check=True, capture_output=True, timeout=60)


def unblock_deletes(cloud, image_ids):
    """Delete the images whose delete failed, as an operator would.

    Glance 33 cancels an image's hash pass before deleting the image
    (``os_glance_hash_op_host`` names the worker's host) and answers 500
    when the pass does not acknowledge within 30 s - or when its record is
    gone. A pass whose worker was killed never does: the image cannot be
    deleted through the API at all, and the property is reserved. Glance's
    leftover: the property is removed from Glance's database, then the
    image is deleted.
    :returns: [(image id, what was done)]
    """
    from harness import clouds
    admin = glance_mod.GlanceUser(clouds.load(clouds.ADMIN_CLOUD))
    found = []
    for image_id in image_ids:
        try:
            image = admin.client.images.get(image_id)
        except Exception:
            continue  # deleted after all
        try:
            admin.client.images.delete(image_id)
            found.append((image_id, 'image %s: deleted by the admin'
                          % image.status))
            continue
        except Exception as e:
            if not image.get('os_glance_import_task'):
                raise
            error = _kind(e)
        _forget_hash_op(cloud, image_id)
        admin.client.images.delete(image_id)
        found.append((image_id, 'Glance refused its delete (%s): a killed '
                                "worker's hash pass; os_glance_hash_op_host "
                                'removed from its database, image deleted'
                      % error))
    return found


def reset_stuck(admin, volume_ids):
    """Delete the load users' volumes Cinder left in a transitional status.

    A volume service killed during an upload-to-image leaves the user's
    volume ``uploading`` for good (Cinder's state machine, not the
    store's): as an operator would, the admin resets it and deletes it.
    :returns: [(volume id, the status it was left in)]
    """
    found = []
    for volume_id in volume_ids:
        try:
            status = admin.volumes.get(volume_id).status
        except Exception:
            continue  # gone meanwhile
        try:
            admin.volumes.reset_state(volume_id, 'available',
                                      attach_status='detached')
            admin.volumes.delete(volume_id)
        except Exception as e:  # then the leak check names it
            found.append((volume_id, 'Cinder left the volume %s; the '
                                     "admin's reset or delete failed: %s"
                          % (status, _kind(e))))
            continue
        found.append((volume_id, 'Cinder left the volume %s: reset and '
                                 'deleted by the admin' % status))
    return found


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q / 100.0 *
                                                 (len(values) - 1))))]


def summary(result):
    """The report as a dict (what ``--json`` writes)."""
    per_op = {}
    for name in sorted({op.name for op in result.ops}):
        ops = [op for op in result.ops if op.name == name]
        ok = [op for op in ops if not op.error]
        errors = collections.Counter(
            ('expected ' if op.expected else '') + op.error
            for op in ops if op.error)
        per_op[name] = {
            'count': len(ops), 'ok': len(ok), 'errors': dict(errors),
            'p50_s': _percentile([op.seconds for op in ok], 50),
            'p95_s': _percentile([op.seconds for op in ok], 95),
            'p99_s': _percentile([op.seconds for op in ok], 99),
            'mib': sum(op.bytes for op in ok) / MiB,
            'mib_per_s': sum(op.bytes for op in ok) / MiB / max(
                result.seconds, 1e-6)}
    t0 = result.rss[0][0] if result.rss else 0
    return {
        'backend': result.backend,
        'settings': dataclasses.asdict(result.settings),
        'seconds': result.seconds,
        'operations': per_op,
        'unexpected_errors': len(result.unexpected()),
        'corrupt_downloads': len(result.corrupt()),
        'chaos': [{'event': n, 'at_s': s - t0, 'took_s': e - s}
                  for n, s, e in result.chaos],
        'rss_mib': [{'t_s': round(t - t0, 1),
                     'workers': {str(p): round(b / MiB, 1)
                                 for p, b in found.items()}}
                    for t, found in result.rss],
        'leaks': result.leaks,
        'reset_by_admin': result.reset,
        # What reconcile did after the clients (lock files aside).
        'reconciled': [line for line in result.reconcile.splitlines()
                       if ' done: ' in line and 'remove files' not in line],
    }


def table(report):
    """The report as text: operations, chaos, RSS curve, leaks."""
    lines = ['%-18s %6s %6s %8s %8s %8s %10s  %s' % (
        'operation', 'count', 'ok', 'p50 s', 'p95 s', 'p99 s', 'MiB/s',
        'errors')]
    fmt = lambda v: '-' if v is None else '%.2f' % v  # noqa: E731
    for name, r in report['operations'].items():
        lines.append('%-18s %6d %6d %8s %8s %8s %10.1f  %s' % (
            name, r['count'], r['ok'], fmt(r['p50_s']), fmt(r['p95_s']),
            fmt(r['p99_s']), r['mib_per_s'],
            ', '.join('%s x%d' % kv for kv in sorted(r['errors'].items()))
            or '-'))
    lines.append('')
    for event in report['chaos']:
        lines.append('chaos: %s at %.0f s (%.1f s)' % (
            event['event'], event['at_s'], event['took_s']))
    samples = report['rss_mib']
    if samples:
        step = max(1, len(samples) // 12)
        lines.append('glance-api workers RSS (MiB), every %.0f s:' % (
            report['settings']['rss_interval'] * step))
        for sample in samples[::step] + samples[-1:]:
            lines.append('  t=%6.0f s  %s' % (sample['t_s'], '  '.join(
                '%s:%.0f' % kv for kv in sorted(sample['workers'].items()))))
    for what, done in report['reset_by_admin']:
        lines.append('left by chaos: %s: %s' % (what, done))
    for line in report.get('reconciled', ()):
        lines.append('reconcile: %s' % line)
    lines.append('unexpected errors: %d; corrupt downloads: %d; leaks: %s'
                 % (report['unexpected_errors'], report['corrupt_downloads'],
                    report['leaks'] or 'none'))
    return '\n'.join(lines)


#: The steps of one small-image cycle, in order.
CYCLE = ('create', 'upload', 'download', 'delete')


def small_cycles(cloud, cases, cycles, size=MiB, warmup=4):
    """Fixed costs: ``cycles`` create-upload-download-delete of ``size``.

    :param cases: (label, :class:`~harness.glance.GlanceUser`, backend),
        run one cycle each in turn (interleaved, so a slow minute of the
        machine costs every case alike)
    :param warmup: cycles of each case run first and not counted: what a
        worker pays once (its privsep daemons, its first Keystone token)
        is not a per-image cost
    :returns: label -> {step: [seconds], 'phases': {phase: [seconds]}}
    """
    found = {label: {step: [] for step in CYCLE + ('cycle',)}
             for label, _user, _backend in cases}
    for label, _user, _backend in cases:
        found[label]['phases'] = collections.defaultdict(list)
    for n in range(-warmup, cycles):
        for label, user, backend in cases:
            times = {step: [] for step in CYCLE + ('cycle',)}
            times['phases'] = collections.defaultdict(list)
            if n >= 0:
                times = found[label]
            src = images.ImageSource(size, seed=n)
            t0 = time.monotonic()
            image = user.create('small-%s-%d' % (label, n))
            t1 = time.monotonic()
            user.client.images.upload(image.id, images.Unsized(src),
                                      image_size=size, backend=backend)
            t2 = time.monotonic()
            status, sha256, got = user.download(image.id)
            t3 = time.monotonic()
            user.client.images.delete(image.id)
            t4 = time.monotonic()
            if (status, sha256, got) != (200, src.hexdigest(), size):
                raise Corrupt('%s cycle %d: %s %s %d bytes'
                              % (label, n, status, sha256, got))
            for step, seconds in zip(CYCLE + ('cycle',),
                                     (t1 - t0, t2 - t1, t3 - t2, t4 - t3,
                                      t4 - t0)):
                times[step].append(seconds)
            for report in glance_mod.store_reports(cloud, image.id) or ():
                for phase, seconds in report.phases.items():
                    times['phases']['%s %s' % (report.operation,
                                               phase)].append(seconds)
    return found


def small_table(found):
    """The small-image table: p50/p95/p99 per step and case.

    Then the first case's cycle over the others', and the store's phases
    (medians) where its log is readable.
    """
    labels = list(found)
    lines = ['%-10s %-9s %8s %8s %8s' % (
        'case', 'step', 'p50 s', 'p95 s', 'p99 s')]
    for label in labels:
        for step in CYCLE + ('cycle',):
            values = found[label][step]
            lines.append('%-10s %-9s %8.3f %8.3f %8.3f' % (
                label, step, _percentile(values, 50),
                _percentile(values, 95), _percentile(values, 99)))
    first = labels[0]
    for other in labels[1:]:
        for q in (50, 99):
            lines.append('cycle p%d: %s / %s = %.2f' % (
                q, first, other,
                _percentile(found[first]['cycle'], q) /
                _percentile(found[other]['cycle'], q)))
    for label in labels:
        phases = found[label]['phases']
        if phases:
            lines.append('%s store phases (median s): %s' % (label, ', '.join(
                '%s %.3f' % (name, _percentile(values, 50))
                for name, values in sorted(phases.items()))))
    return '\n'.join(lines)

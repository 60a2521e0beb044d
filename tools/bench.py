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

"""Benchmark: cinder_ext vs the in-tree cinder driver vs the hardware.

Runs against the local stack (tools/stack up), in its Glance venv.
Every repetition runs every case once, in the same order (A B A B ...), on
the same volume type; the table shows medians with min-max, and ratios are
computed pair by pair within a repetition. Absolute figures on shared
machines are noise; ratios are what to read.

With ``CINDER_EXT_STORAGE=rbd`` every case runs on the stack's Ceph: the
raw limits are ``rbd bench`` (16 requests in flight, and one) and librbd
from Python with 8 requests in flight (the store's depth; the ``limit`` of
the known-size ratio is the lower of it and parallel hashing), and the
Glance cases add glance_store's own ``rbd`` store.

    tools/bench.sh [--size-gib 2] [--reps 3] [--json bench.json]
                   [--no-glance] [--no-readers] [--only KIND,...]
"""

import argparse
from concurrent import futures
import hashlib
import json
import logging
import mmap
import os
import statistics
import subprocess
import sys
import threading
import time

from oslo_context import context as oslo_context

from cinder_ext_store import attachments
from cinder_ext_store import hashing
from cinder_ext_store import reader
from harness import clouds
from harness import glance as glance_harness
from harness import images
from harness import leaks
from harness import stores

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK = 4 * MiB


def backends(cloud):
    vtype = cloud.setting('volume_type')
    return {'ours': stores.Backend('cinder_ext', vtype, True),
            'ours_off': stores.Backend('cinder_ext', vtype, False),
            'intree': stores.Backend('cinder', vtype, True),
            'intree_off': stores.Backend('cinder', vtype, False)}


def pattern(size, seed=0, read_size=None):
    """Image data, not hashed by the source (the store hashes it)."""
    return images.ImageSource(size, seed, digests=(), read_size=read_size)


def system_busy():
    """CPU seconds this host spent busy (all CPUs, all processes, kernel)."""
    with open('/proc/stat') as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf('SC_CLK_TCK')


def thread_stage(name):
    """The pipeline stage a thread of this process works for."""
    for prefix, stage in (('cinder-ext-md5', 'md5'),
                          ('cinder-ext-multihash', 'multihash'),
                          ('cinder-ext-io', 'writer'),
                          ('MainThread', 'reader')):
        if name.startswith(prefix):
            return stage
    return 'other'


def rss_bytes():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


class Sampler(object):
    """Peak RSS, and CPU seconds per pipeline stage (thread), process, host.

    Threads are short-lived (one pipeline per add), so /proc/self/task is
    sampled while the add runs and once more at the end.
    """

    PERIOD = 0.02

    def __enter__(self):
        self.names = {}
        self.last = {}
        self.rss_base = self.rss_peak = rss_bytes()
        self.base = self._sample()
        self.host0 = system_busy()
        self.proc0 = os.times()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True,
                                   name='bench-sampler')
        self._t.start()
        return self

    def _sample(self):
        self.rss_peak = max(self.rss_peak, rss_bytes())
        for t in threading.enumerate():
            self.names[t.native_id] = t.name
        ticks = os.sysconf('SC_CLK_TCK')
        for tid in os.listdir('/proc/self/task'):
            try:
                with open('/proc/self/task/%s/stat' % tid) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue  # the thread just ended
            self.last[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
        return dict(self.last)

    def _run(self):
        while not self._stop.wait(self.PERIOD):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()
        end = os.times()
        self.host = system_busy() - self.host0
        self.process = (end.user + end.system - self.proc0.user -
                        self.proc0.system)
        self.stages = {}
        for tid, cpu in self.last.items():
            used = cpu - self.base.get(tid, 0.0)
            name = self.names.get(tid, '')
            if used > 0 and name != 'bench-sampler':
                stage = thread_stage(name)
                self.stages[stage] = self.stages.get(stage, 0.0) + used

    def as_dict(self):
        out = {'rss_growth': self.rss_peak - self.rss_base,
               'cpu_process': self.process, 'cpu_host': self.host}
        out.update(('cpu_%s' % k, v) for k, v in self.stages.items())
        return out


def drop_caches():
    """Reads must come from the device, not from what was just written."""
    os.sync()
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3')
    except OSError as e:
        print('cannot drop caches (%s): reads may be cached' % e,
              file=sys.stderr)


def cpu_seconds(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def glance_workers_cpu(cloud, instance=''):
    """CPU seconds of every glance-api worker (the uWSGI master's children).

    :param instance: '' (glance-api) or '_intree' (the in-tree driver's)
    """
    with open(cloud.setting('glance%s_pidfile' % instance)) as f:
        master = int(f.read())
    with open('/proc/%d/task/%d/children' % (master, master)) as f:
        children = [int(p) for p in f.read().split()] or [master]
    return sum(cpu_seconds(pid) for pid in children)


# One reader in a process of its own: loads the stores, says 'ready',
# reads the image when told 'go' and prints what it measured.
READER = """
import json, logging, sys
from harness import clouds, stores
import bench
logging.basicConfig(level=logging.ERROR)
who, uri = sys.argv[1], sys.argv[2]
cloud = clouds.load()
conf = stores.load(cloud, bench.backends(cloud), 'ours')
loc = stores.location(conf, uri, who)
# Warm, like a long-lived glance-api worker: a Keystone token and (ours)
# os-brick's connector properties in hand.
store = stores.get(who)
store.get_size(loc)
if hasattr(store, 'host'):  # ours: the os-brick host wrapper
    store.host.connector_properties()
print('ready', flush=True)
sys.stdin.readline()
print(json.dumps(bench.read_once(store, loc)), flush=True)
"""


def read_once(store, loc, ctx=None):
    """Read an image once: time to first byte, seconds, bytes, success."""
    ctx = ctx or oslo_context.RequestContext(user_id='bench',
                                             project_id='bench')
    t0 = time.monotonic()
    first, total = None, 0
    try:
        it, _length = store.get(loc, context=ctx)
        for chunk in it:
            if first is None:
                first = time.monotonic() - t0
            total += len(chunk)
        ok = True
    except Exception as e:
        print('reader failed: %s' % e, file=sys.stderr)
        ok = False
    return {'ttfb': first, 'seconds': time.monotonic() - t0,
            'bytes': total, 'ok': ok}


class Bench(object):

    def __init__(self, args, cloud):
        self.args = args
        self.cloud = cloud
        self.size = int(args.size_gib * GiB)
        self.conf = stores.load(cloud, backends(cloud), 'ours')
        self.ctx = oslo_context.RequestContext(user_id='bench',
                                               project_id='bench')
        self.stats = stores.Recorder(self.store('ours'),
                                     self.store('ours_off'))
        self._count_intree()
        self.ours = self.store('ours')
        self.api = self.ours.cinder.api()
        self.inspect = leaks.Inspector(cloud)

    def store(self, backend):
        return stores.get(backend)

    def _count_intree(self):
        """Instrument the in-tree driver's Cinder calls (benchmark only)."""
        self.intree_calls = {'extends': 0, 'attaches': 0}
        for backend in ('intree', 'intree_off'):
            vapi = self.store(backend).volume_api
            for name, key in (('extend_volume', 'extends'),
                              ('attachment_create', 'attaches')):
                real = getattr(vapi, name)

                def counted(*a, _real=real, _key=key, **kw):
                    self.intree_calls[_key] += 1
                    return _real(*a, **kw)
                setattr(vapi, name, counted)
        # The in-tree offline loop calls cinderclient directly.
        store = self.store('intree_off')
        real = store._call_offline_extend

        def offline(*a, **kw):
            self.intree_calls['extends'] += 1
            return real(*a, **kw)
        store._call_offline_extend = offline

    # -- limits ----------------------------------------------------------

    def _raw_write(self, direct):
        """Write the image to a fresh volume, synced; returns volume, s."""
        vol = self.api.create(-(-self.size // GiB), 'bench-raw', {})
        try:
            src = pattern(self.size)
            with attachments.attached(self.api, self.ours.host, vol.id,
                                      'rw', direct=direct) as att:
                dev = att.device
                buf = mmap.mmap(-1, CHUNK)  # O_DIRECT wants aligned memory
                t0 = time.monotonic()
                offset = 0
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    buf[:len(chunk)] = chunk
                    dev.write_at(offset, memoryview(buf)[:len(chunk)],
                                 aligned=True)
                    offset += len(chunk)
                dev.sync()
                seconds = time.monotonic() - t0
        except BaseException:
            self.api.delete_quietly(vol.id)
            raise
        return vol, seconds

    def _raw_read(self, volume_id):
        """Read a volume back, caches dropped; returns seconds."""
        with attachments.attached(self.api, self.ours.host, volume_id,
                                  'ro') as att:
            drop_caches()
            t0 = time.monotonic()
            for _chunk in reader.read_range(att.device, 0, self.size, CHUNK):
                pass
            return time.monotonic() - t0

    def _raw_read_dd(self, volume_id):
        """Read a volume with ``dd iflag=direct bs=4M``; returns seconds.

        A limit measured by a tool outside this project: O_DIRECT reads of
        the device, one request at a time.
        """
        with attachments.attached(self.api, self.ours.host, volume_id,
                                  'ro') as att:
            drop_caches()
            t0 = time.monotonic()
            subprocess.run(['dd', 'if=%s' % att.device.path, 'of=/dev/null',
                            'bs=4M', 'iflag=direct',
                            'count=%d' % (self.size // CHUNK)],
                           check=True, capture_output=True)
            return time.monotonic() - t0

    def raw(self):
        """Raw synced writes (buffered, O_DIRECT), each read back.

        The first buffered read of data written with O_DIRECT costs this
        host more kernel CPU than a read of data written through the page
        cache (measured on the loop devices here), and this store writes
        with O_DIRECT while the in-tree driver writes buffered: both reads
        are limits, each for the data its writer left.
        """
        out = {}
        for direct, write, read in ((True, 'raw_write_direct',
                                     'raw_read_of_direct'),
                                    (False, 'raw_write', 'raw_read')):
            vol, seconds = self._raw_write(direct)
            try:
                out[write] = {'seconds': seconds}
                out[read] = {'seconds': self._raw_read(vol.id)}
                if direct:
                    out['raw_read_dd_direct'] = {
                        'seconds': self._raw_read_dd(vol.id)}
            finally:
                self.api.delete_quietly(vol.id)
        return out

    def rbd_raw(self):
        """``rbd bench``: sequential 4 MiB writes, then reads, of one image.

        With 16 requests in flight (what librbd can serve) and with one.
        """
        conf = self.cloud.setting('ceph_conf')
        out = {}
        for threads in (16, 1):
            image = 'volumes/bench-raw-%d' % os.getpid()
            rbd = ['rbd', '-c', conf, '--id', 'admin']
            subprocess.run(rbd + ['create', '--size', '%dM' % (
                -(-self.size // MiB)), image], check=True)
            try:
                for io in ('write', 'read'):
                    drop_caches()
                    t0 = time.monotonic()
                    subprocess.run(rbd + [
                        'bench', '--io-type', io, '--io-size', '4M',
                        '--io-threads', str(threads), '--io-total',
                        str(self.size), '--io-pattern', 'seq', image],
                        check=True, capture_output=True)
                    out['rbd_bench_%s_%d' % (io, threads)] = {
                        'seconds': time.monotonic() - t0}
            finally:
                subprocess.run(rbd + ['rm', '--no-progress', image],
                               check=False, capture_output=True)
        return out

    def librbd_aio(self, depth=8):
        """librbd from Python with ``depth`` 4 MiB requests in flight.

        The same bindings and request size the store uses, without a
        store: sequential ``aio_write`` then ``aio_read`` of one image,
        keeping ``depth`` requests queued (what the store's RBD writer and
        read-ahead do).
        """
        clouds.add_ceph_bindings()
        import rados
        import rbd
        name = 'bench-aio-%d' % os.getpid()
        out = {}
        chunk = pattern(CHUNK).read(CHUNK)
        with rados.Rados(conffile=self.cloud.setting('ceph_conf'),
                         rados_id='admin') as cluster:
            with cluster.open_ioctx('volumes') as ioctx:
                rbd.RBD().create(ioctx, name, self.size)
                try:
                    with rbd.Image(ioctx, name) as image:
                        for io in ('write', 'read'):
                            drop_caches()
                            out['librbd_aio_%s_%d' % (io, depth)] = {
                                'seconds': _aio_pass(image, io, self.size,
                                                     chunk, depth)}
                finally:
                    rbd.RBD().remove(ioctx, name)
        return out

    def hashing(self):
        out = {}
        src = pattern(self.size)
        chunks = [src.read(CHUNK) for _ in range(64 * MiB // CHUNK)]
        rounds = self.size // (64 * MiB)
        t0 = time.monotonic()
        md5, sha = hashlib.md5(), hashlib.sha512()
        for _ in range(rounds):
            for c in chunks:
                md5.update(c)
                sha.update(c)
        out['hash_1thread'] = {'seconds': time.monotonic() - t0}
        hashes = hashing.ImageHashes('sha512')
        t0 = time.monotonic()
        jobs = []
        for _ in range(rounds):
            for c in chunks:
                jobs.extend(hashes.submit(c))
        futures.wait(jobs)
        hashes.hexdigests()
        out['hash_2threads'] = {'seconds': time.monotonic() - t0}
        hashes.close()
        return out

    # -- store level -----------------------------------------------------

    def add_and_get(self, backend, label, declared):
        store = self.store(backend)
        self.intree_calls.update(extends=0, attaches=0)
        self.stats.seen.clear()
        src = pattern(self.size, seed=len(label))
        with Sampler() as sampled:
            t0 = time.monotonic()
            uri, written = store.add('bench-%s' % label, src,
                                     self.size if declared else 0, 'sha512',
                                     context=self.ctx)[:2]
            t_add = time.monotonic() - t0
        assert written == self.size
        if backend.startswith('ours'):
            added = self.stats.last('add')
            counts = {'extends': added.extends,
                      'attaches': added.attachments}
        else:
            counts = dict(self.intree_calls)
        result = {label: dict(seconds=t_add, **counts,
                              **sampled.as_dict())}
        loc = stores.location(self.conf, uri, backend)
        if declared:  # read back the known-size image
            drop_caches()
            t0 = time.monotonic()
            it, _length = store.get(loc, context=self.ctx)
            first = last = None
            for _chunk in it:
                now = time.monotonic()
                if first is None:
                    first = now - t0
                prev, last = last, now
            end = time.monotonic()
            # Fixed costs around the streaming: attach before the first
            # chunk, release (ours) before the last one.
            result[label.replace('add_known', 'get')] = {
                'seconds': end - t0, 'first_chunk': first,
                'last_chunk': last - (prev or t0)}
        store.delete(loc, context=self.ctx)
        return result

    # -- concurrent readers ----------------------------------------------

    READERS = ((1, 't'), (4, 't'), (8, 't'), (4, 'p'), (8, 'p'))

    def readers(self, who):
        """1, 4 and 8 simultaneous readers of one image (threads, processes).

        Each entry's ``seconds`` is the wall time over the readers, so its
        MiB/s is the aggregate rate.
        """
        store = self.store(who)
        uri = store.add('bench-readers-%s' % who, pattern(self.size, seed=9),
                        self.size, 'sha512', context=self.ctx)[0]
        loc = stores.location(self.conf, uri, who)
        out = {}
        try:
            for n, mode in self.READERS:
                drop_caches()
                run = self._threads if mode == 't' else self._processes
                wall, results = run(who, uri, loc, n)
                ok = [r['ok'] and r['bytes'] == self.size for r in results]
                ttfbs = [r['ttfb'] for r in results if r['ttfb'] is not None]
                out['readers_%d%s_%s' % (n, mode, who)] = {
                    'seconds': wall / n, 'readers': n, 'mode': mode,
                    'ok': sum(ok), 'ttfb_max': max(ttfbs) if ttfbs else None,
                    'ttfb_median': (statistics.median(ttfbs) if ttfbs
                                    else None)}
        finally:
            store.delete(loc, context=self.ctx)
        return out

    def _threads(self, who, uri, loc, n):
        store = self.store(who)
        with futures.ThreadPoolExecutor(n) as pool:
            t0 = time.monotonic()
            results = list(pool.map(lambda _: read_once(store, loc),
                                    range(n)))
            return time.monotonic() - t0, results

    def _processes(self, who, uri, loc, n):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            (os.path.dirname(os.path.abspath(__file__)),
             os.environ.get('PYTHONPATH', ''))))
        children = [subprocess.Popen(
            [sys.executable, '-c', READER, who, uri], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(n)]
        try:
            for child in children:
                if child.stdout.readline() != 'ready\n':
                    raise RuntimeError('a reader process did not start')
            t0 = time.monotonic()
            for child in children:
                child.stdin.write('go\n')
                child.stdin.flush()
            results = [json.loads(child.stdout.readline() or
                                  '{"ok": false, "bytes": 0, "ttfb": null}')
                       for child in children]
            return time.monotonic() - t0, results
        finally:
            for child in children:
                child.kill()
                child.wait()

    # -- through the Glance API -------------------------------------------

    def glance(self, backend, who):
        # The in-tree driver's backends have a glance-api of their own
        # (its user may chown devices; the store's may not).
        instance = '_intree' if who == 'intree' else ''
        user = glance_harness.GlanceUser(
            self.cloud.user(), self.cloud.setting('glance%s_url' % instance))
        glance = user.client
        self._warm_up(user, backend)
        out = {}
        for label, size in (('glance_known', self.size),
                            ('glance_chunked', None)):
            image = glance.images.create(name='bench', disk_format='raw',
                                         container_format='bare')
            # glanceclient sends 64 KiB chunks, as a client would.
            src = images.Unsized(pattern(self.size, read_size=64 * 1024))
            cpu0 = glance_workers_cpu(self.cloud, instance)
            t0 = time.monotonic()
            glance.images.upload(image.id, src, image_size=size,
                                 backend=backend)
            out['%s_%s' % (label, who)] = {
                'seconds': time.monotonic() - t0,
                'cpu': glance_workers_cpu(self.cloud, instance) - cpu0}
            assert glance.images.get(image.id).status == 'active'
            if size:
                drop_caches()
                cpu0 = glance_workers_cpu(self.cloud, instance)
                t0 = time.monotonic()
                user.download(image.id)
                out['glance_download_%s' % who] = {
                    'seconds': time.monotonic() - t0,
                    'cpu': glance_workers_cpu(self.cloud, instance) - cpu0}
            glance.images.delete(image.id)
        return out

    @staticmethod
    def _warm_up(user, backend):
        """A small upload and downloads through every glance-api worker.

        A worker's first Cinder request of a store pays a Keystone token
        and os-brick's connector properties (~1.5 s measured); that is
        once per worker process, not per image, so it is kept out of the
        timed cases.
        """
        image = user.create('bench-warm-up')
        try:
            user.client.images.upload(image.id, pattern(MiB), image_size=MiB,
                                      backend=backend)
            with futures.ThreadPoolExecutor(8) as pool:
                done = list(pool.map(lambda _: _quietly(user.download,
                                                        image.id), range(8)))
            failed = [d for d in done if isinstance(d, Exception)]
            if failed:
                # The in-tree driver cannot serve concurrent readers of one
                # image (its second attachment is refused): warm-up only.
                print('warm-up of %s: %d of 8 concurrent downloads failed '
                      '(%s)' % (backend, len(failed), failed[0]),
                      file=sys.stderr)
        finally:
            user.delete_quietly(image.id)

    def volume_from_image(self):
        """Cinder's two ways from one of our images to a volume.

        A clone of the image volume (volume type on the image volume's
        backend) and, for a type on the other backend, where Cinder cannot
        clone, its copy of the data through glance-api.
        """
        user = glance_harness.GlanceUser(self.cloud.user())
        cinder = self.cloud.user().cinder()
        image = user.create('bench-volume-from-image')
        out = {}
        try:
            user.client.images.upload(
                image.id, images.Unsized(pattern(self.size)),
                image_size=self.size,
                backend=self.cloud.setting('glance_backend', 'images'))
            for label, vtype in (
                    ('volume_from_image_clone',
                     self.cloud.setting('volume_type')),
                    ('volume_from_image_download',
                     self.cloud.setting('volume_type_no_online_extend'))):
                self.wait_idle()
                t0 = time.monotonic()
                volume = cinder.volumes.create(
                    -(-self.size // GiB), imageRef=image.id,
                    volume_type=vtype, name='bench-from-image')
                while volume.status in ('creating', 'downloading'):
                    time.sleep(0.1)
                    volume = cinder.volumes.get(volume.id)
                out[label] = {'seconds': time.monotonic() - t0}
                cinder.volumes.delete(volume.id)
                assert volume.status == 'available', volume.status
        finally:
            user.delete_quietly(image.id)
        return out

    def cases(self):
        yield 'limits', self.hashing
        yield 'limits', (self.rbd_raw if self.cloud.storage == 'rbd'
                         else self.raw)
        if self.cloud.storage == 'rbd':
            yield 'limits', self.librbd_aio
        for who in ('ours', 'intree'):
            yield 'store', lambda w=who: self.add_and_get(
                w, 'add_known_%s' % w, True)
            yield 'store', lambda w=who: self.add_and_get(
                w, 'add_online_%s' % w, False)
            yield 'store', lambda w=who: self.add_and_get(
                w + '_off', 'add_offline_%s' % w, False)
        if not self.args.no_readers:
            for who in ('ours', 'intree'):
                yield 'readers', lambda w=who: self.readers(w)
        if not self.args.no_glance:
            glance_backends = [
                (self.cloud.setting('glance_backend', 'images'), 'ours'),
                (self.cloud.setting('glance_backend_intree', 'intree'),
                 'intree')]
            if self.cloud.storage == 'rbd':
                glance_backends.append((self.cloud.setting(
                    'glance_rbd_store'), 'glance_rbd'))
            for backend, who in glance_backends:
                yield 'glance', lambda b=backend, w=who: self.glance(b, w)
            yield 'cinder', self.volume_from_image

    def wait_idle(self, timeout=300):
        """Wait until Cinder has deleted what earlier cases deleted.

        Cinder deletes asynchronously: a case started while the volume
        service still removes the previous 2 GiB volume waits seconds for
        its own volume (measured ~3 s), which would bill one case for the
        cleanup of another.
        """
        if not self.inspect.wait_idle(timeout):
            sys.exit('Cinder still deleting volumes after %ds' % timeout)

    def run(self):
        reps = []
        for rep in range(self.args.reps):
            results = {}
            for kind, case in self.cases():
                if self.args.only and kind not in self.args.only:
                    continue
                self.wait_idle()
                results.update(case())
            reps.append(results)
            print('repetition %d done' % (rep + 1), file=sys.stderr)
        return reps


def _quietly(func, *args):
    """``func(*args)``, or the exception it raised."""
    try:
        return func(*args)
    except Exception as e:
        return e


def _aio_pass(image, io, size, chunk, depth):
    """Seconds to write or read ``size`` bytes, ``depth`` requests queued."""
    done = threading.Semaphore(depth)
    errors = []

    def finished(completion, *rest):
        if completion.get_return_value() < 0:
            errors.append(completion.get_return_value())
        done.release()
    t0 = time.monotonic()
    for offset in range(0, size, len(chunk)):
        done.acquire()
        n = min(len(chunk), size - offset)
        if io == 'write':
            image.aio_write(chunk[:n], offset, finished)
        else:
            image.aio_read(offset, n, finished)
    for _ in range(depth):
        done.acquire()
    if io == 'write':
        image.flush()
    if errors:
        raise RuntimeError('librbd aio_%s failed: %s' % (io, errors[:3]))
    return time.monotonic() - t0


def mibs(size, r):
    return size / MiB / r['seconds']


def rate(size, rep, key):
    """MiB/s of ``key`` in one repetition; None when not measured.

    ``limit`` is the issue's bound: the lower of the best parallel hashing
    and the best raw synced write. ``<case>:streaming`` leaves out the
    fixed costs around a read (attach before the first chunk, release
    before the last).
    """
    if key == 'limit':
        writes = [mibs(size, rep[k]) for k in ('raw_write', 'raw_write_direct',
                                               'librbd_aio_write_8')
                  if k in rep]
        if 'hash_2threads' not in rep or not writes:
            return None
        return min(mibs(size, rep['hash_2threads']), max(writes))
    if key.endswith(':streaming'):
        r = rep.get(key.split(':')[0])
        if not r or r.get('first_chunk') is None:
            return None
        fixed = r['first_chunk'] + r['last_chunk']
        return size / MiB / (r['seconds'] - fixed)
    return mibs(size, rep[key]) if key in rep else None


RATIOS = [
    # (name, numerator, denominator)
    ('known add: ours / in-tree', 'add_known_ours', 'add_known_intree'),
    ('online add: ours / in-tree', 'add_online_ours', 'add_online_intree'),
    ('offline add: ours / in-tree', 'add_offline_ours',
     'add_offline_intree'),
    ('get: ours / in-tree', 'get_ours', 'get_intree'),
    ('known add: ours / limit', 'add_known_ours', 'limit'),
    ('known add: ours / hash_2threads', 'add_known_ours', 'hash_2threads'),
    ('online / our known', 'add_online_ours', 'add_known_ours'),
    ('offline / our known', 'add_offline_ours', 'add_known_ours'),
    ('get: ours / raw read', 'get_ours', 'raw_read'),
    ('get: ours / raw read of O_DIRECT data', 'get_ours',
     'raw_read_of_direct'),
    ('get streaming: ours / raw read', 'get_ours:streaming', 'raw_read'),
    ('get: ours / dd iflag=direct', 'get_ours', 'raw_read_dd_direct'),
    ('1 reader: ours / in-tree', 'readers_1t_ours', 'readers_1t_intree'),
    ('8 readers (threads): ours / in-tree', 'readers_8t_ours',
     'readers_8t_intree'),
    ('8 readers (processes): ours / in-tree', 'readers_8p_ours',
     'readers_8p_intree'),
    ('8 readers (threads): ours / raw read', 'readers_8t_ours', 'raw_read'),
    ('8 readers (processes): ours / raw read', 'readers_8p_ours',
     'raw_read'),
    ('8 readers (threads) / 1 reader, ours', 'readers_8t_ours',
     'readers_1t_ours'),
    ('Glance known: ours / in-tree', 'glance_known_ours',
     'glance_known_intree'),
    ('Glance chunked: ours / in-tree', 'glance_chunked_ours',
     'glance_chunked_intree'),
    ('Glance download: ours / in-tree', 'glance_download_ours',
     'glance_download_intree'),
    ('Glance known: ours / glance rbd', 'glance_known_ours',
     'glance_known_glance_rbd'),
    ('Glance chunked: ours / glance rbd', 'glance_chunked_ours',
     'glance_chunked_glance_rbd'),
    ('Glance download: ours / glance rbd', 'glance_download_ours',
     'glance_download_glance_rbd'),
    ('known add: ours / rbd bench write 16', 'add_known_ours',
     'rbd_bench_write_16'),
    ('get: ours / rbd bench read 16', 'get_ours', 'rbd_bench_read_16'),
    ('known add: ours / librbd aio write 8', 'add_known_ours',
     'librbd_aio_write_8'),
    ('get: ours / librbd aio read 8', 'get_ours', 'librbd_aio_read_8'),
    ('Glance download: ours / librbd aio read 8', 'glance_download_ours',
     'librbd_aio_read_8'),
    ('Glance known: ours / rbd bench write 16', 'glance_known_ours',
     'rbd_bench_write_16'),
    ('Glance download: ours / rbd bench read 16', 'glance_download_ours',
     'rbd_bench_read_16'),
    ('volume from image: clone / download', 'volume_from_image_clone',
     'volume_from_image_download'),
]

STAGES = ('reader', 'md5', 'multihash', 'writer', 'other')


def _median(reps, name, key):
    vals = [r[name][key] for r in reps
            if r.get(name, {}).get(key) is not None]
    return statistics.median(vals) if vals else None


def report(size, reps):
    names = list(reps[0])
    lines = ['%-24s %10s %19s %8s %8s %9s %8s' % (
        'case', 'MiB/s', '(min-max)', 'extends', 'attaches', 'RSS+MiB',
        'CPU-s')]
    for name in names:
        rates = [mibs(size, r[name]) for r in reps if name in r]
        first = reps[0][name]
        rss = _median(reps, name, 'rss_growth')
        cpu = _median(reps, name, 'cpu')
        lines.append('%-24s %10.0f %19s %8s %8s %9s %8s' % (
            name, statistics.median(rates),
            '(%.0f-%.0f)' % (min(rates), max(rates)),
            first.get('extends', ''), first.get('attaches', ''),
            '%.0f' % (rss / MiB) if rss is not None else '',
            '%.1f' % cpu if cpu is not None else ''))

    staged = [n for n in names if _median(reps, n, 'cpu_host') is not None]
    if staged:
        lines.append('')
        lines.append('CPU seconds during each store add (medians): per '
                     'pipeline stage (thread), whole process, whole host')
        lines.append('%-20s %6s' % ('case', 'wall') + ''.join(
            '%10s' % k for k in STAGES + ('process', 'host', 'cores')))
    for name in staged:
        wall = _median(reps, name, 'seconds')
        host = _median(reps, name, 'cpu_host')
        cells = []
        for key in STAGES + ('process',):
            val = _median(reps, name, 'cpu_%s' % key)
            cells.append('%10s' % ('%.2f' % val if val else '-'))
        lines.append('%-20s %6.2f' % (name, wall) + ''.join(cells) +
                     '%10.2f%10.2f' % (host, host / wall))

    readers = [n for n in names if 'readers' in reps[0][n]]
    if readers:
        lines.append('')
        lines.append('Concurrent readers of one image (medians): aggregate '
                     'MiB/s, time to first byte, readers that got every '
                     'byte')
        lines.append('%-20s %8s %10s %10s %10s %6s' % (
            'case', 'readers', 'MiB/s', 'ttfb med', 'ttfb max', 'ok'))
        for name in readers:
            first = reps[0][name]
            rates = [mibs(size, r[name]) for r in reps if name in r]
            ttfb = _median(reps, name, 'ttfb_median')
            ttfb_max = _median(reps, name, 'ttfb_max')
            lines.append('%-20s %8s %10.0f %10s %10s %6s' % (
                name, '%d %s' % (first['readers'], {
                    't': 'thr', 'p': 'proc'}[first['mode']]),
                statistics.median(rates),
                '%.2f' % ttfb if ttfb is not None else '-',
                '%.2f' % ttfb_max if ttfb_max is not None else '-',
                '%d/%d' % (min(r[name]['ok'] for r in reps if name in r),
                           first['readers'])))

    made = [n for n in names if n.startswith('volume_from_image')]
    if made:
        lines.append('')
        lines.append('Volume from image (seconds from create to available, '
                     'median and range)')
        for name in made:
            secs = [r[name]['seconds'] for r in reps if name in r]
            lines.append('%-28s %6.1f  (%.1f-%.1f)' % (
                name, statistics.median(secs), min(secs), max(secs)))

    gets = [n for n in names if _median(reps, n, 'first_chunk') is not None]
    if gets:
        lines.append('')
        lines.append('Fixed costs of a get (medians, seconds): attach before '
                     'the first chunk, release before the last')
        for name in gets:
            lines.append('%-20s first chunk %.2f  last chunk %.2f  of %.2f' % (
                name, _median(reps, name, 'first_chunk'),
                _median(reps, name, 'last_chunk'),
                _median(reps, name, 'seconds')))

    lines.append('')
    lines.append('%-38s %8s %19s' % ('ratio (pair by pair)', 'median',
                                     '(min-max)'))
    ratios = {}
    for label, num, den in RATIOS:
        vals = []
        for r in reps:
            n, d = rate(size, r, num), rate(size, r, den)
            if n is not None and d:
                vals.append(n / d)
        if vals:
            ratios[label] = vals
            lines.append('%-38s %8.2f %19s' % (
                label, statistics.median(vals),
                '(%.2f-%.2f)' % (min(vals), max(vals))))
    return '\n'.join(lines), ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-gib', type=float, default=2)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--json', default='bench.json')
    parser.add_argument('--no-glance', action='store_true')
    parser.add_argument('--no-readers', action='store_true',
                        help='leave out the concurrent-readers cases')
    parser.add_argument('--only', type=lambda v: v.split(','),
                        help='comma-separated kinds of cases to run: '
                             'limits, store, readers, glance, cinder')
    args = parser.parse_args()
    cloud = clouds.load()
    if not cloud.keystone or not cloud.setting('glance_pidfile'):
        sys.exit('the benchmark needs the full local stack: tools/stack up')
    logging.basicConfig(level=logging.WARNING)
    bench = Bench(args, cloud)
    size = bench.size
    reps = bench.run()
    table, ratios = report(size, reps)
    print('\nImage %.2f GiB, %d repetition(s), %s\n' % (
        args.size_gib, args.reps, time.strftime('%Y-%m-%d %H:%M')))
    print(table)
    with open(args.json, 'w') as f:
        json.dump({'size_bytes': size, 'repetitions': reps,
                   'ratios': ratios}, f, indent=1)
    print('\nraw results: %s' % args.json)


if __name__ == '__main__':
    main()

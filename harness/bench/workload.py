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

"""The benchmark's cases: each measures one thing, pair by pair.

:class:`Bench` yields its cases in order (``limits``, ``store``,
``readers``, ``glance``, ``cinder``, ``hosts``); every repetition runs every
case once. A concurrent reader in a process of its own runs
:mod:`harness.bench.reader`.
"""

from concurrent import futures
import hashlib
import json
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
from harness.bench import sampler as sampler_mod
from harness import clouds
from harness import glance as glance_harness
from harness import images
from harness import leaks
from harness import stores

MiB = images.MiB
GiB = images.GiB
CHUNK = 4 * MiB


def backends(cloud):
    vtype = cloud.storage_facts.volume_type
    return {'ours': stores.Backend('cinder_ext', vtype, True),
            'ours_off': stores.Backend('cinder_ext', vtype, False),
            'intree': stores.Backend('cinder', vtype, True),
            'intree_off': stores.Backend('cinder', vtype, False)}


def pattern(size, seed=0, read_size=None):
    """Image data, not hashed by the source (the store hashes it)."""
    return images.ImageSource(size, seed, digests=(), read_size=read_size)


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
            with attachments.Attachment(self.api, self.ours.host, vol.id,
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
        with attachments.Attachment(self.api, self.ours.host, volume_id,
                                    'ro') as att:
            sampler_mod.drop_caches()
            t0 = time.monotonic()
            for _chunk in reader.read_range(att.device, 0, self.size, CHUNK):
                pass
            return time.monotonic() - t0

    def _raw_read_dd(self, volume_id):
        """Read a volume with ``dd iflag=direct bs=4M``; returns seconds.

        A limit measured by a tool outside this project: O_DIRECT reads of
        the device, one request at a time.
        """
        with attachments.Attachment(self.api, self.ours.host, volume_id,
                                    'ro') as att:
            sampler_mod.drop_caches()
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
        conf = self.cloud.facts.ceph_conf
        out = {}
        for threads in (16, 1):
            image = 'volumes/bench-raw-%d' % os.getpid()
            rbd = ['rbd', '-c', conf, '--id', 'admin']
            subprocess.run(rbd + ['create', '--size', '%dM' % (
                -(-self.size // MiB)), image], check=True)
            try:
                for io in ('write', 'read'):
                    sampler_mod.drop_caches()
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
        with rados.Rados(conffile=self.cloud.facts.ceph_conf,
                         rados_id='admin') as cluster:
            with cluster.open_ioctx('volumes') as ioctx:
                rbd.RBD().create(ioctx, name, self.size)
                try:
                    with rbd.Image(ioctx, name) as image:
                        for io in ('write', 'read'):
                            sampler_mod.drop_caches()
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
        with sampler_mod.Sampler() as sampled:
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
            sampler_mod.drop_caches()
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
                sampler_mod.drop_caches()
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
        repo = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            (repo, os.environ.get('PYTHONPATH', ''))))
        children = [subprocess.Popen(
            [sys.executable, '-m', 'harness.bench.reader', who, uri], env=env,
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
            self.cloud.user(),
            self.cloud.facts.glance.intree_url if instance else None)
        glance = user.client
        self._warm_up(user, backend)
        out = {}
        for label, size in (('glance_known', self.size),
                            ('glance_chunked', None)):
            image = glance.images.create(name='bench', disk_format='raw',
                                         container_format='bare')
            # glanceclient sends 64 KiB chunks, as a client would.
            src = images.Unsized(pattern(self.size, read_size=64 * 1024))
            cpu0 = sampler_mod.glance_workers_cpu(self.cloud, instance)
            t0 = time.monotonic()
            glance.images.upload(image.id, src, image_size=size,
                                 backend=backend)
            out['%s_%s' % (label, who)] = {
                'seconds': time.monotonic() - t0,
                'cpu': sampler_mod.glance_workers_cpu(
                    self.cloud, instance) - cpu0}
            assert glance.images.get(image.id).status == 'active'
            if size:
                sampler_mod.drop_caches()
                cpu0 = sampler_mod.glance_workers_cpu(self.cloud, instance)
                t0 = time.monotonic()
                user.download(image.id)
                out['glance_download_%s' % who] = {
                    'seconds': time.monotonic() - t0,
                    'cpu': sampler_mod.glance_workers_cpu(
                        self.cloud, instance) - cpu0}
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

    # -- several glance-api hosts ----------------------------------------

    def hosts(self):
        """8 clients download one image: from one host, then from two.

        Through one glance-api host, then 4 through each of two hosts (the
        stack's glance-api-b), on the multiattach type (each host holds its
        own attachment). Each entry's ``seconds`` is the wall time over the
        readers (aggregate MiB/s), with each reader's time to first byte.
        """
        backend = (self.cloud.storage_facts.glance_backend_multiattach or
                   'multiattach')
        a = glance_harness.GlanceUser(self.cloud.user())
        b = glance_harness.GlanceUser(
            self.cloud.user(), self.cloud.facts.glance.second_host.url)
        for user in (a, b):
            self._warm_up(user, backend)
        image = a.create('bench-hosts')
        out = {}
        try:
            a.client.images.upload(image.id,
                                   images.Unsized(pattern(self.size)),
                                   image_size=self.size, backend=backend)
            for label, users in (('hosts_1x8', [a] * 8),
                                 ('hosts_2x4', [a, b] * 4)):
                sampler_mod.drop_caches()
                self.wait_idle()
                with futures.ThreadPoolExecutor(len(users)) as pool:
                    t0 = time.monotonic()
                    results = list(pool.map(
                        lambda u: timed_download(u, image.id), users))
                    wall = time.monotonic() - t0
                ttfbs = [r['ttfb'] for r in results if r['ttfb'] is not None]
                out[label] = {
                    'seconds': wall / len(users), 'readers': len(users),
                    'mode': 'h', 'ok': sum(r['ok'] and r['bytes'] == self.size
                                           for r in results),
                    'ttfb_max': max(ttfbs) if ttfbs else None,
                    'ttfb_median': (statistics.median(ttfbs) if ttfbs
                                    else None)}
        finally:
            a.delete_quietly(image.id)
        return out

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
                backend=self.cloud.storage_facts.glance_backend or 'images')
            for label, vtype in (
                    ('volume_from_image_clone',
                     self.cloud.storage_facts.volume_type),
                    ('volume_from_image_download',
                     self.cloud.storage_facts.volume_type_no_online_extend)):
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
                (self.cloud.storage_facts.glance_backend or 'images', 'ours'),
                (self.cloud.storage_facts.glance_backend_intree or 'intree',
                 'intree')]
            if self.cloud.storage == 'rbd':
                glance_backends.append((
                    self.cloud.storage_facts.glance_rbd_store, 'glance_rbd'))
            for backend, who in glance_backends:
                yield 'glance', lambda b=backend, w=who: self.glance(b, w)
            yield 'cinder', self.volume_from_image
        if not self.args.no_readers and self.cloud.facts.glance.second_host:
            yield 'hosts', self.hosts

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


def timed_download(user, image_id):
    """One download through Glance: ok, bytes, seconds to the first byte."""
    t0 = time.monotonic()
    resp = user.session.get('%s/v2/images/%s/file' % (user.url, image_id),
                            stream=True, raise_exc=False)
    ttfb, total = None, 0
    try:
        for chunk in resp.iter_content(CHUNK):
            if ttfb is None:
                ttfb = time.monotonic() - t0
            total += len(chunk)
    finally:
        resp.close()
    return {'ok': resp.status_code == 200, 'bytes': total, 'ttfb': ttfb}


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

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

"""The benchmark's report: a table of medians and ratios pair by pair."""

import statistics

from harness import images

MiB = images.MiB


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
    ('8 downloads: 2 glance-api hosts x 4 / 1 host x 8', 'hosts_2x4',
     'hosts_1x8'),
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
                    't': 'thr', 'p': 'proc', 'h': 'http'}[first['mode']]),
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

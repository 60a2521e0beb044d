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

"""What the benchmark measures besides time: CPU per pipeline stage, per
process and host, peak RSS; and the page cache it drops between cases.
"""

import os
import sys
import threading

from harness import procfs


def thread_stage(name):
    """The pipeline stage a thread of this process works for."""
    for prefix, stage in (('cinder-ext-md5', 'md5'),
                          ('cinder-ext-multihash', 'multihash'),
                          ('cinder-ext-io', 'writer'),
                          ('MainThread', 'reader')):
        if name.startswith(prefix):
            return stage
    return 'other'


class Sampler(object):
    """Peak RSS, and CPU seconds per pipeline stage (thread), process, host.

    Threads are short-lived (one pipeline per add), so /proc/self/task is
    sampled while the add runs and once more at the end.
    """

    PERIOD = 0.02

    def __enter__(self):
        self.names = {}
        self.last = {}
        self.rss_base = self.rss_peak = procfs.rss_bytes()
        self.base = self._sample()
        self.host0 = procfs.host_busy_seconds()
        self.proc0 = os.times()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True,
                                   name='bench-sampler')
        self._t.start()
        return self

    def _sample(self):
        self.rss_peak = max(self.rss_peak, procfs.rss_bytes())
        for t in threading.enumerate():
            self.names[t.native_id] = t.name
        for tid in procfs.thread_ids():
            try:
                self.last[tid] = procfs.cpu_seconds(tid=tid)
            except OSError:
                continue  # the thread just ended
        return dict(self.last)

    def _run(self):
        while not self._stop.wait(self.PERIOD):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()
        end = os.times()
        self.host = procfs.host_busy_seconds() - self.host0
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


def glance_workers_cpu(cloud, instance=''):
    """CPU seconds of every glance-api worker (the uWSGI master's children).

    :param instance: '' (glance-api) or '_intree' (the in-tree driver's)
    """
    glance = cloud.facts.glance
    master = procfs.read_pidfile(
        glance.intree_pidfile if instance else glance.pidfile)
    workers = procfs.children(master) or [master]
    return sum(procfs.cpu_seconds(pid) for pid in workers)

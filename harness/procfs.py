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

"""What /proc says of processes and of this host, read in one place.

Every function answers for a process (``pid``, or ``'self'``) that may be
gone by the time it is read: reads of a vanished process raise OSError,
except where a default is named.
"""

import glob
import os

_TICKS = os.sysconf('SC_CLK_TCK')


def _stat_fields(path):
    """The fields of a ``stat`` file after the command name."""
    with open(path) as f:
        return f.read().rsplit(')', 1)[1].split()


def cpu_seconds(pid='self', tid=None):
    """utime + stime of a process (all its threads), or of one thread."""
    path = ('/proc/%s/stat' % pid if tid is None
            else '/proc/%s/task/%s/stat' % (pid, tid))
    fields = _stat_fields(path)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def thread_ids(pid='self'):
    """The ids of a process's threads."""
    return [int(t) for t in os.listdir('/proc/%s/task' % pid)]


def thread_names(pid):
    """The names (comm) of a process's threads; [] when it is gone."""
    names = []
    for comm in glob.glob('/proc/%s/task/*/comm' % pid):
        try:
            with open(comm) as f:
                names.append(f.read().strip())
        except OSError:
            continue  # the thread just ended
    return names


def children(pid):
    """The pids of a process's children; [] when it is gone."""
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, TypeError):
        return []


def descendants(pid):
    """The pids of ``pid``'s children, grandchildren, ..."""
    found = []
    for child in children(pid):
        found += [child] + descendants(child)
    return found


def rss_bytes(pid='self'):
    """Resident memory of a process; 0 when /proc does not say."""
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def host_busy_seconds():
    """CPU seconds this host spent busy (all CPUs, processes, kernel)."""
    with open('/proc/stat') as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / _TICKS


def read_pidfile(path):
    """The pid a pid file names, or None."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, TypeError, ValueError, IndexError):
        return None


def enter_command(pid):
    """A command prefix: run in the namespaces (UTS, PID, mount) of ``pid``.

    Root only; what follows it runs on that process's host.
    """
    return ['nsenter', '--target', str(pid), '--uts', '--pid', '--mount']

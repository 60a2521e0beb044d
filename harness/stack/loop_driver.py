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

"""TEST ONLY: a Cinder volume driver exporting sparse files as loop devices.

Loaded by the local stack's cinder-volume (``volume_driver =
loop_driver.LoopDriver``, this directory on its PYTHONPATH); never by the
store. A volume is a sparse file ``<loop_volume_dir>/volume-<id>``; a
connection attaches it to a loop device and answers ``driver_volume_type:
local``, which os-brick's local connector uses as is. The driver only ever
touches loop devices backing its own files.

Besides create, delete and connect: clones (a copy of the source file, for
Cinder's image-volume cache and clone path), extend (growing the file; the
loop device is refreshed when attached, so online extend works), and a
pool whose capacity is reported as configured (``loop_capacity_gb``,
``loop_thin_capacity_gb``, ``loop_online_extend_support``), so that the
scheduler fills, refuses and thin-provisions it as it does a real backend.
"""

import os
import subprocess

from cinder.volume import driver
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

LOG = logging.getLogger(__name__)

loop_opts = [
    cfg.StrOpt('loop_volume_dir',
               help='Directory holding the sparse files of the volumes.'),
    cfg.BoolOpt('loop_online_extend_support', default=True,
                help='What the pool reports as online_extend_support. '
                     'False makes the scheduler refuse in-use extends.'),
    cfg.IntOpt('loop_capacity_gb', default=0,
               help='A thick pool of this many GiB (the sizes of its '
                    'volumes count as used), so the scheduler refuses '
                    'what does not fit; 0: thin, as big as the file '
                    'system.'),
    cfg.IntOpt('loop_thin_capacity_gb', default=0,
               help='A thin pool that claims this many GiB whatever its '
                    'file system holds: writes past the file system fail '
                    'with ENOSPC, as on a full over-subscribed backend.'),
]
cfg.CONF.register_opts(loop_opts, group='backend_defaults')


def _run(*cmd):
    # A timeout: a hung losetup or dd must fail the volume, not the service.
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True, timeout=600).stdout


class LoopDriver(driver.BaseVD):
    VERSION = '1.0.0'

    def __init__(self, *args, **kwargs):
        super(LoopDriver, self).__init__(*args, **kwargs)
        self.configuration.append_config_values(loop_opts)
        self._dir = self.configuration.loop_volume_dir

    def _path(self, volume):
        return os.path.join(self._dir, 'volume-%s' % volume.id)

    def _loops(self, path):
        """Loop devices backed by ``path`` (and only those)."""
        out = _run('losetup', '-j', path)
        return [line.split(':', 1)[0] for line in out.splitlines() if line]

    def _detach(self, path):
        for dev in self._loops(path):
            _run('losetup', '-d', dev)

    def do_setup(self, context):
        os.makedirs(self._dir, exist_ok=True)

    def check_for_setup_error(self):
        if not os.path.isdir(self._dir):
            raise RuntimeError('%s is missing' % self._dir)

    def create_volume(self, volume):
        with open(self._path(volume), 'wb') as f:
            f.truncate(volume.size * units.Gi)

    def delete_volume(self, volume):
        path = self._path(volume)
        if os.path.exists(path):
            self._detach(path)
            os.unlink(path)

    def create_cloned_volume(self, volume, src_vref):
        """A copy of the source's file that keeps its holes."""
        src, dst = self._path(src_vref), self._path(volume)
        _run('cp', '--sparse=always', src, dst)
        if os.path.getsize(dst) < volume.size * units.Gi:
            os.truncate(dst, volume.size * units.Gi)

    def extend_volume(self, volume, new_size):
        path = self._path(volume)
        os.truncate(path, new_size * units.Gi)
        for dev in self._loops(path):
            # Attached hosts see the new size at once.
            _run('losetup', '-c', dev)

    def _allocated_gb(self):
        """GiB of this backend's volumes (a thick pool's used space)."""
        from cinder import context as cinder_context
        from cinder import objects
        ctx = cinder_context.get_admin_context()
        volumes = objects.VolumeList.get_all_by_host(ctx, self.host)
        return sum(v.size for v in volumes if v.status != 'deleting')

    def ensure_export(self, context, volume):
        pass

    def create_export(self, context, volume, connector):
        pass

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector):
        path = self._path(volume)
        loops = self._loops(path)
        # Direct I/O to the backing file, as a disk would: without it the
        # loop device keeps a second page cache of every volume and spends
        # this host's CPU copying into it and writing it back.
        dev = loops[0] if loops else _run('losetup', '-f', '--show',
                                          '--direct-io=on', path).strip()
        return {'driver_volume_type': 'local',
                'data': {'device_path': dev}}

    def terminate_connection(self, volume, connector, **kwargs):
        self._detach(self._path(volume))

    def _update_volume_stats(self):
        st = os.statvfs(self._dir)
        name = self.configuration.safe_get('volume_backend_name')
        total = st.f_blocks * st.f_frsize // units.Gi
        free = st.f_bavail * st.f_frsize // units.Gi
        capacity = self.configuration.loop_capacity_gb
        if capacity:
            total = capacity
            free = max(0, capacity - self._allocated_gb())
        elif self.configuration.loop_thin_capacity_gb:
            total = free = self.configuration.loop_thin_capacity_gb
        self._stats = {
            'volume_backend_name': name or 'loop',
            'vendor_name': 'cinder_ext_store tests',
            'driver_version': self.VERSION,
            'storage_protocol': 'local',
            'total_capacity_gb': total,
            'free_capacity_gb': free,
            'reserved_percentage': 0,
            'thin_provisioning_support': not capacity,
            'thick_provisioning_support': bool(capacity),
            'max_over_subscription_ratio': 20.0,
            'online_extend_support':
                self.configuration.loop_online_extend_support,
            # One loop device per volume file, whoever attaches it.
            'multiattach': True,
        }

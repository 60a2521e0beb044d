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

"""This host's side of an attachment: os-brick and privsep.

Everything that runs os-brick lives here, so the rest of the store deals
only in connection info and device paths.
"""

import logging
import os
import shlex
import socket
import sys
import threading

import os_brick
from os_brick.initiator import connector as brick_connector
from oslo_privsep import priv_context

LOG = logging.getLogger(__name__)


def _host_ip(hostname):
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            return socket.getaddrinfo(hostname, None, family)[0][4][0]
        except socket.gaierror:
            continue
    return '127.0.0.1'


class BrickHost(object):
    """os-brick for one store: connector properties and connectors.

    Connector properties cost ~1 s to gather (they run several commands),
    so they are computed once per store and reused by every attachment.
    They are gathered on the first attachment, not when the store is
    configured: Glance may configure stores before it forks its workers,
    and gathering starts the privsep daemon, whose channel a forked worker
    must not share with its parent.
    """

    _privsep_lock = threading.Lock()
    _privsep_ready = False

    def __init__(self, store_conf, global_conf):
        self.conf = store_conf
        self.global_conf = global_conf
        self._properties = None
        self._lock = threading.Lock()

    @property
    def root_helper(self):
        # As root, privsep starts its helper directly; sudo may not exist.
        if os.geteuid() == 0:
            return None
        return 'sudo glance-rootwrap %s' % self.conf.rootwrap_config

    def _privsep_prefix(self):
        """What starts privsep-helper (unless helper_command is set)."""
        if self.root_helper:
            return shlex.split(self.root_helper)
        # Already root: run the helper of this Python environment directly.
        bindir = os.path.dirname(sys.executable)
        return ['env', 'PATH=%s:%s' % (bindir, os.environ.get('PATH', ''))]

    def _ensure_privsep(self):
        cls = BrickHost
        with cls._privsep_lock:
            if not cls._privsep_ready:
                os_brick.setup(self.global_conf)
                priv_context.init(root_helper=self._privsep_prefix())
                cls._privsep_ready = True

    def connector_properties(self):
        with self._lock:
            if self._properties is None:
                self._ensure_privsep()
                hostname = socket.gethostname()
                self._properties = brick_connector.get_connector_properties(
                    self.root_helper, _host_ip(hostname),
                    self.conf.cinder_use_multipath,
                    self.conf.cinder_enforce_multipath, host=hostname)
            return dict(self._properties)

    def connector(self, connection_info):
        """An os-brick connector for ``connection_info``."""
        self._ensure_privsep()
        protocol = connection_info['driver_volume_type']
        return brick_connector.InitiatorConnector.factory(
            protocol, self.root_helper,
            use_multipath=self.conf.cinder_use_multipath,
            conn=connection_info)

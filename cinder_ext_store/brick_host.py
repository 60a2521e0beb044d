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
import shutil
import socket
import sys
import threading

from glance_store import exceptions
import os_brick
from os_brick.initiator import connector as brick_connector
from oslo_config import cfg
from oslo_privsep import priv_context

from cinder_ext_store import privileged

LOG = logging.getLogger(__name__)

#: The privsep sections whose helper_command starts a daemon for the store.
PRIVSEP_BRICK = 'privsep_osbrick'
PRIVSEP_STORE = privileged.default.cfg_section


def _bindir():
    """The bin directory of this Python environment (venv or system).

    Not that of ``sys.executable``: under uWSGI that is the uwsgi binary,
    wherever it was installed.
    """
    return os.path.join(sys.prefix, 'bin')


def _helper_here():
    return (os.access(os.path.join(_bindir(), 'privsep-helper'), os.X_OK) or
            shutil.which('privsep-helper') is not None)


def _host_ip(hostname):
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            return socket.getaddrinfo(hostname, None, family)[0][4][0]
        except socket.gaierror:
            continue
    return '127.0.0.1'


def _not_the_connections(path, props):
    """Why ``path`` is not the device ``props`` name, or None.

    Only what the connection exposes is compared: a local connection's
    ``device_path``; an iSCSI connection's target and LUN, which udev's
    ``/dev/disk/by-path`` names carry.
    """
    named = props.get('device_path')
    if isinstance(named, str) and named.startswith(privileged.DEV):
        if os.path.realpath(named) != os.path.realpath(path):
            return 'the connection names %s' % named
    iqn = props.get('target_iqn')
    if (isinstance(iqn, str) and '/by-path/' in path and
            ('-iscsi-%s-lun-' % iqn) not in path):
        return 'the connection names target %s' % iqn
    return None


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

    def __init__(self, store_conf, global_conf, euid=os.geteuid):
        self.conf = store_conf
        self.global_conf = global_conf
        #: The effective uid glance-api runs as (a seam for tests).
        self.euid = euid
        self._properties = None
        self._lock = threading.Lock()

    @property
    def rbd_op_timeout(self):
        """Seconds an RBD request may wait for Ceph (0: no limit)."""
        return self.conf.cinder_ext_rbd_op_timeout

    @property
    def root_helper(self):
        # As root, privsep starts its helper directly; sudo may not exist.
        if self.euid() == 0:
            return None
        return 'sudo glance-rootwrap %s' % self.conf.rootwrap_config

    def _privsep_prefix(self):
        """What starts privsep-helper (unless helper_command is set)."""
        if self.root_helper:
            return shlex.split(self.root_helper)
        # Already root: run the helper of this Python environment directly.
        return ['env', 'PATH=%s:%s' % (_bindir(), os.environ.get('PATH', ''))]

    def _helper_command(self, section):
        try:
            return self.global_conf[section].helper_command
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError, KeyError,
                AttributeError, TypeError):
            return None

    def privsep_problem(self):
        """Why a privileged helper cannot start, or None.

        Checked at start-up, where only the obvious can be seen: a
        configured ``helper_command`` (of os-brick's ``[privsep_osbrick]``
        or this store's ``[cinder_ext_store_privileged]``) whose program is
        missing, or (without one) no ``privsep-helper`` in this Python
        environment or, for a non-root glance-api, no sudo or rootwrap
        configuration. ``cinder-ext-store check`` starts both for real.
        """
        commands = [(section, self._helper_command(section))
                    for section in (PRIVSEP_BRICK, PRIVSEP_STORE)]
        for section, command in commands:
            if command and not shutil.which(shlex.split(command)[0]):
                return ('[%s] helper_command runs %s, which does not exist '
                        'or is not executable'
                        % (section, shlex.split(command)[0]))
        if all(command for _section, command in commands):
            return None
        if not _helper_here():
            return ('privsep-helper is not in %s (under uWSGI the Python '
                    "executable is uwsgi's): set [privsep_osbrick] "
                    'helper_command to the privsep-helper of glance-api\'s '
                    'environment' % _bindir())
        if self.root_helper:
            if not shutil.which('sudo'):
                return ('glance-api is not root and sudo is missing: install '
                        'sudo and the sudoers rule for the privsep helper, '
                        'or set [privsep_osbrick] helper_command')
            if not os.path.exists(self.conf.rootwrap_config):
                return ('glance-api is not root and rootwrap_config %s does '
                        'not exist: install it (see etc/ of this package) '
                        'or set [privsep_osbrick] helper_command'
                        % self.conf.rootwrap_config)
        return None

    def _ensure_privsep(self):
        cls = BrickHost
        with cls._privsep_lock:
            if not cls._privsep_ready:
                os_brick.setup(self.global_conf)
                priv_context.init(root_helper=self._privsep_prefix())
                cls._privsep_ready = True

    @staticmethod
    def hostname():
        """This host as Cinder's attachments name it (the connector's)."""
        return socket.gethostname()

    def connector_properties(self):
        with self._lock:
            if self._properties is None:
                self._ensure_privsep()
                hostname = self.hostname()
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

    def lend(self, device_info, size, props=None):
        """Let this process open the block device os-brick attached.

        Nothing to do as root, for a device this user can already open
        (udev rules, a group) or for anything but a path under /dev (an RBD
        handle; a file on a share, whose export decides who may open it).

        :param size: callable() -> the volume's bytes (the device must have
            them); asked only when a lend is needed
        :param props: the attachment's connection properties: where they
            name the device (a local path, an iSCSI target), the path must
            be that device
        """
        path = device_info.get('path') if device_info else None
        if (not isinstance(path, str) or not path.startswith(privileged.DEV)
                or self.euid() == 0 or os.access(path, os.R_OK | os.W_OK)):
            return
        mismatch = _not_the_connections(path, props or {})
        if mismatch:
            raise exceptions.BackendException(
                'Will not lend %s: it is not the device of this attachment '
                '(%s)' % (path, mismatch))
        self._ensure_privsep()
        try:
            privileged.lend_device(path, size())
        except Exception as e:
            raise exceptions.BackendException(
                'Cannot open %s: glance-api runs as uid %d and the store\'s '
                'privileged helper refused to lend it the device: %s'
                % (path, self.euid(), e))
        LOG.debug('Device %s lent to uid %d', path, self.euid())

    def privileged_uid(self):
        """Start the store's privileged daemon; the uid it runs as."""
        self._ensure_privsep()
        return privileged.whoami()

    def give_back(self, device_info):
        """Undo :meth:`lend`: root owns the device again. Never raises."""
        path = device_info.get('path') if device_info else None
        if not isinstance(path, str) or not path.startswith(privileged.DEV):
            return
        try:
            if os.stat(path).st_uid == 0:
                return
            if self.euid() == 0:
                privileged.give_back(path)  # reconcile run by root
            else:
                self._ensure_privsep()
                privileged.return_device(path)
            LOG.debug('Device %s given back to root', path)
        except Exception as e:
            LOG.error('Giving device %s back to root failed (it stays '
                      'readable by uid %d until the next attachment of it '
                      'or a reboot): %s', path, self.euid(), e)

    def disconnect(self, connector, props, device_info, force=False):
        """Give the device back, then disconnect it from this host."""
        self.give_back(device_info)
        connector.disconnect_volume(props, device_info, force=force)

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

"""The records this host keeps in the lock path, and who is alive.

Read shares and upload markers are small JSON files in
``<lock path>/cinder_ext_reads``. They say which attachment and host
connection a process holds, so that whoever comes next (a later reader,
``cinder-ext-store reconcile``) can release what a dead process left. A
record is therefore as dangerous as what it names:

* the directory is 0700 and its files 0600, owned by the store's user;
  a directory or file another user owns, or others may write, is refused
  (a forged record could name any device or attachment). Root (an
  operator's ``reconcile``) trusts the directory's owner and writes as it;
* every write is durable: the file and the directory are synced before a
  record counts, so a power loss or a container restart does not lose
  the record of an attachment that is still there;
* connection secrets (iSCSI CHAP) are not stored: detaching does not need
  them.

A process is named by its pid and start time, so a reused pid is not
taken for the process that died, and by where it runs: its PID namespace,
the boot and the host name. Only a process of the same namespace, boot and
host can be judged: a record written anywhere else (another container
sharing the lock path, ``reconcile`` run from the host on a container's
lock path, a lock path on shared storage) is *foreign*, and what it names
is kept.
"""

import json
import logging
import os
import socket
import stat
import tempfile
import time

from glance_store import exceptions

from cinder_ext_store import ceph_pool

LOG = logging.getLogger(__name__)

SUBDIR = 'cinder_ext_reads'
#: What a backend's volumes come over on this host (:meth:`Records.
#: note_backend`): ``backend-<name>`` + this.
BACKEND_SUFFIX = '.backend'

#: Keys of a connection's data that only a connect needs (iSCSI CHAP
#: passwords). An RBD reader that joins a share connects again with the
#: recorded properties, so its user name and keyring (when Cinder sends
#: one) stay, in a file only the store's user reads.
_SECRETS = ('auth_password', 'discovery_auth_password')


def process_start(pid):
    """The start time of process ``pid`` (clock ticks), or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError, TypeError):
        return None


#: How :func:`judge` sees a recorded process.
ALIVE, DEAD, FOREIGN = 'alive', 'dead', 'foreign'
#: The keys that say where a recorded process runs.
PLACE = ('pidns', 'boot', 'host')

_me = {}


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def place():
    """Where this process runs: its PID namespace, boot and host name.

    A pid and a start time mean something only there.
    """
    try:
        pidns = os.readlink('/proc/self/ns/pid')
    except OSError:
        pidns = None
    return {'pidns': pidns,
            'boot': _read('/proc/sys/kernel/random/boot_id'),
            'host': socket.gethostname()}


def identity():
    """This process as records name it: pid, start time and place.

    Computed again after a fork: Glance forks its workers after it made
    the stores.
    """
    pid = os.getpid()
    if _me.get('pid') != pid:
        _me.clear()
        _me.update(place(), pid=pid, start=process_start(pid))
    return dict(_me)


def key(process):
    """The name of a recorded process among a share's readers.

    Pids repeat across PID namespaces, so the namespace is part of it.
    """
    return '%d@%s' % (process['pid'], process.get('pidns'))


def pid_of(name):
    """The pid in a reader's name (:func:`key`; older records: the pid)."""
    return int(str(name).split('@', 1)[0])


def judge(process):
    """ALIVE, DEAD or FOREIGN: a recorded process, as this one sees it.

    :param process: a record's ``pid`` and ``start``, and where it ran
        (:data:`PLACE`); a record written before places were recorded
        is taken for one of this place (the store wrote none elsewhere)
    """
    here = identity()
    if any(process.get(k) is not None and process[k] != here[k]
           for k in PLACE):
        return FOREIGN
    start = process.get('start')
    try:
        pid = int(process.get('pid', 0))
    except (TypeError, ValueError):
        return DEAD
    if start is not None and process_start(pid) == start:
        return ALIVE
    return DEAD


def where(process):
    """A recorded process, for a person: ``pid 12 on host h (pid:[4])``."""
    return 'pid %s on host %s (%s, boot %s)' % (
        process.get('pid'), process.get('host'), process.get('pidns'),
        process.get('boot'))


def without_secrets(connection_info):
    """``connection_info`` less what only a connect needs.

    The attachments API puts the driver's data at the top level; older
    shapes nest it under ``data``: both are cleaned.
    """
    if not isinstance(connection_info, dict):
        return connection_info
    kept = {k: v for k, v in connection_info.items() if k not in _SECRETS}
    if isinstance(kept.get('data'), dict):
        kept['data'] = {k: v for k, v in kept['data'].items()
                        if k not in _SECRETS}
    return kept


def device_identity(path):
    """What a host connection's path is now: (kind, device or inode...).

    A block device is its device number; anything else its file system
    and inode. A later reader compares it with the recorded one before it
    opens the path.
    """
    st = os.stat(path)
    if stat.S_ISBLK(st.st_mode):
        return ['blk', st.st_rdev]
    return ['file', st.st_dev, st.st_ino]


def backend_facts(props):
    """What a connection tells of its backend, without secrets; or None.

    The protocol and, for RBD, the Ceph cluster, user, monitors, pool and
    the RBD name template of its volumes.

    :param props: os-brick connection properties (with
        ``driver_volume_type``)
    """
    props = props or {}
    if not props.get('driver_volume_type'):
        return None
    facts = {'protocol': props['driver_volume_type']}
    if facts['protocol'] == 'rbd':
        pool, _, image = (props.get('name') or '').partition('/')
        facts.update(
            cluster_name=props.get('cluster_name') or 'ceph',
            auth_username=props.get('auth_username'),
            hosts=props.get('hosts') or [], ports=props.get('ports') or [],
            pool=pool or None, name_template=ceph_pool.name_template(image))
    return facts


def rbd_conf(handle_info):
    """The temporary ceph configuration behind an RBD handle, or None.

    os-brick's RBD connector writes one per connection (``brickrbd_*`` in
    the temporary directory, holding the user's key) and removes it on
    disconnect; a process killed before that leaves it behind, so records
    name it for whoever reclaims the dead process's share.
    ``RBDVolumeIOWrapper.rbd_conf`` names it.
    """
    path = getattr((handle_info or {}).get('path'), 'rbd_conf', None)
    if is_brick_rbd_conf(path):
        return path
    return None


def is_brick_rbd_conf(path):
    # A record is only as trusted as the lock path: never unlink anything
    # but a plain os-brick temporary file.
    return (isinstance(path, str) and os.path.isabs(path) and
            os.path.basename(path).startswith('brickrbd_') and
            os.path.dirname(path) == tempfile.gettempdir() and
            not os.path.islink(path))


def remove_rbd_conf(path):
    if is_brick_rbd_conf(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Records(object):
    """The record directory of one lock path."""

    def __init__(self, state_dir):
        self.dir = os.path.join(state_dir, SUBDIR)
        self._checked = False
        self._noted = {}  # backend -> facts this process has on disk

    def ensure_dir(self):
        """Make (0700) or check the directory; refuse one not ours."""
        try:
            os.mkdir(self.dir, 0o700)
            _sync_dir(os.path.dirname(self.dir))
        except FileExistsError:
            pass
        self._owner_of_dir()

    def _owner_of_dir(self):
        """(uid, gid) whose records are trusted: the directory's owner.

        That is this process's user, or anyone's for root.
        """
        if self._checked:
            return self._checked
        st = os.lstat(self.dir)
        me = os.geteuid()
        if not stat.S_ISDIR(st.st_mode) or (st.st_uid != me and me != 0):
            raise exceptions.BackendException(
                'Record directory %s is not a directory of this user (uid '
                '%d): refusing to trust it; remove it or make it glance-'
                "api's" % (self.dir, me))
        if st.st_mode & 0o077:
            if st.st_uid != me:
                raise exceptions.BackendException(
                    'Record directory %s is mode %o: others may forge '
                    'records; make it 0700' % (self.dir,
                                               stat.S_IMODE(st.st_mode)))
            # An older store made it 0755: ours, so tighten it.
            LOG.warning('Record directory %s was mode %o; setting 0700',
                        self.dir, stat.S_IMODE(st.st_mode))
            os.chmod(self.dir, 0o700)
        self._checked = (st.st_uid, st.st_gid)
        return self._checked

    def path(self, name):
        return os.path.join(self.dir, name)

    def volumes_named(self):
        """Volume ids any record file names.

        Readable, refused or moved aside alike: what a record holds is not
        known without reading it.
        """
        try:
            found = os.listdir(self.dir)
        except FileNotFoundError:
            return set()
        return _recorded(found) | {n.split('.', 1)[0] for n in found
                                   if '.corrupt-' in n}

    def names(self, suffix):
        """The record names (less ``suffix``) of one kind."""
        try:
            found = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return [n[:-len(suffix)] for n in found if n.endswith(suffix)]

    def load(self, name):
        """The record ``name``, None when there is none.

        :raises ValueError: unreadable JSON (the caller moves it aside)
        :raises BackendException: a file not owned by this user, or
            writable by others
        """
        path = self.path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise exceptions.BackendException(
                'Record %s cannot be opened: %s' % (path, e))
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            owner = self._owner_of_dir()[0]
            if st.st_uid != owner or st.st_mode & 0o022:
                raise exceptions.BackendException(
                    'Record %s is owned by uid %d with mode %o: not '
                    'written by this store; refusing it'
                    % (path, st.st_uid, stat.S_IMODE(st.st_mode)))
            return json.load(f)

    def save(self, name, record):
        """Write ``record`` durably (0600), or remove it when None."""
        path = self.path(name)
        if record is None:
            self.remove(name)
            return
        self.ensure_dir()
        tmp = '%s.%d.tmp' % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
                     os.O_NOFOLLOW, 0o600)
        try:
            uid, gid = self._owner_of_dir()
            if uid != os.geteuid():
                os.fchown(fd, uid, gid)  # root, for glance-api's user
            with os.fdopen(fd, 'w') as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # readers never see half a file
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _sync_dir(self.dir)

    @staticmethod
    def _backend_name(backend):
        if not backend or not all(c.isalnum() or c in '-_.'
                                  for c in backend):
            return None
        return 'backend-%s%s' % (backend, BACKEND_SUFFIX)

    def note_backend(self, backend, props):
        """Record how ``backend``'s volumes come to this host.

        ``check`` reads it to judge what the protocol needs (RBD: the Ceph
        bindings and keyring) without a write test; ``reconcile`` to find
        the RBD pool. See :func:`backend_facts`.

        :param props: the attachment's os-brick connection properties
            (:func:`~cinder_ext_store.attachments.connection_properties`)
        """
        name = self._backend_name(backend)
        facts = backend_facts(props)
        if name is None or facts is None:
            return
        if self._noted.get(backend) == facts:
            return  # the usual case: one file read per process and backend
        try:
            if self.load_backend(backend) != facts:
                self.save(name, facts)
        except (OSError, exceptions.BackendException) as e:
            # A fact for check, not a transfer's need.
            LOG.warning('Could not record backend %s: %s', backend, e)
            return
        self._noted[backend] = facts

    def load_backend(self, backend):
        """What :meth:`note_backend` recorded, or None."""
        name = self._backend_name(backend)
        if name is None:
            return None
        try:
            return self.load(name)
        except (ValueError, exceptions.BackendException) as e:
            LOG.warning('Ignoring record %s: %s', self.path(name), e)
            return None

    def remove(self, name):
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            return
        _sync_dir(self.dir)

    def move_aside(self, name, why):
        """Keep an unreadable record for a person, out of the way."""
        path = self.path(name)
        aside = '%s.corrupt-%d' % (path, time.time())
        os.replace(path, aside)
        LOG.error('Record %s is unreadable (%s), moved to %s; what it '
                  'named, if anything, is not released by this store',
                  path, why, aside)

    def leftovers(self, older_than=3600, now=None):
        """Lock, temporary and moved-aside files, by volume id.

        Only of volumes with no record (a read share, an upload marker)
        and untouched for ``older_than`` seconds: the caller removes those
        whose volume no longer exists (:meth:`remove_files`).
        """
        now = now or time.time()
        found = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return found
        recorded = _recorded(names)
        for name in names:
            volume_id = _volume_of(name)
            if volume_id is None or volume_id in recorded:
                continue
            try:
                if now - os.lstat(self.path(name)).st_mtime < older_than:
                    continue
            except FileNotFoundError:
                continue
            found.setdefault(volume_id, []).append(name)
        return found

    def remove_files(self, names):
        for name in names:
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass


def _recorded(names):
    """Volume ids of the read shares and upload markers among ``names``."""
    return {n.split('.', 1)[0] for n in names
            if n.endswith(('.json', '.upload'))}


def _volume_of(name):
    """The volume id a record directory entry is about, or None."""
    for prefix in ('cinder_ext-read-', 'cinder_ext-upload-'):
        if name.startswith(prefix):
            name = name[len(prefix):]
    head = name.split('.', 1)[0]
    if len(head) == 36 and head.count('-') == 4:
        return head
    return None


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

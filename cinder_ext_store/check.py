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

"""Preflight checks of one store: can it work on this host, with this Cinder?

:func:`run_checks` returns :class:`Result` rows (check, status, detail, fix),
each check independent of the others' outcome where it can be. The
``cinder-ext-store check`` command prints them as a table; deploy tooling
gates on its exit status.
"""

import configparser
import difflib
import glob
import grp
import importlib.util
import os
import pwd
import stat
import time
import uuid

from glance_store import exceptions
from oslo_utils import units

from cinder_ext_store import attachments
from cinder_ext_store import brick_host
from cinder_ext_store import ceph_pool
from cinder_ext_store import cinder_api
from cinder_ext_store import cinder_session
from cinder_ext_store import host_records

OK, WARN, FAIL, SKIP = 'ok', 'warn', 'FAIL', 'skip'
#: The newest microversion the store uses (attachments with a mode).
NEEDED = cinder_api.MV_ATTACH


class Result(object):

    def __init__(self, check, status, detail, fix=None):
        self.check = check
        self.status = status
        self.detail = detail
        self.fix = fix

    def __repr__(self):
        return 'Result(%r, %r, %r)' % (self.check, self.status, self.detail)


def _version(text):
    major, minor = text.split('.')
    return int(major), int(minor)


def check_credentials(store):
    conf = store.store_conf
    if not cinder_session.service_credentials_set(conf):
        return Result('credentials', WARN,
                      'no service credentials: the store acts with each '
                      "request's token (nothing to check here)",
                      'set cinder_store_auth_address, cinder_store_user_name, '
                      'cinder_store_password and cinder_store_project_name')
    try:
        store.cinder.session.get_token()
    except Exception as e:
        return Result('credentials', FAIL, 'Keystone refused: %s' % e,
                      'check cinder_store_user_name / cinder_store_password '
                      '/ cinder_store_project_name (and their domains) in '
                      'the backend section, and cinder_store_auth_address')
    return Result('credentials', OK, '%s in project %s authenticates' % (
        conf.cinder_store_user_name or 'application credential',
        conf.cinder_store_project_name or '-'))


def check_endpoint(store):
    try:
        client = store.cinder.client()
        endpoint = client.client.get_endpoint()
        info = client.client.session.get(
            endpoint.rsplit('/v3', 1)[0] + '/', authenticated=False,
            raise_exc=False).json()
        versions = info['versions']
        v3 = [v for v in versions if v['id'].startswith('v3')][0]
    except Exception as e:
        return Result('endpoint', FAIL, 'Cinder does not answer: %s' % e,
                      'check cinder_catalog_info / cinder_os_region_name and '
                      'that cinder-api is reachable from this host')
    highest = v3.get('version') or '3.0'
    if _version(highest) < _version(NEEDED):
        return Result('endpoint', FAIL, '%s answers up to microversion %s; '
                      'the store needs %s' % (endpoint, highest, NEEDED),
                      'upgrade Cinder (Queens or newer)')
    return Result('endpoint', OK, '%s, microversions up to %s (needs %s; '
                  'in-use extend %s)' % (endpoint, highest, NEEDED,
                                         cinder_api.MV_EXTEND_ATTACHED))


def check_volume_type(store, api):
    try:
        name, found = store.volume_type(api)
    except Exception as e:
        return Result('volume type', FAIL, 'cannot look it up: %s' % e)
    if found is None:
        return Result('volume type', FAIL, 'volume type %s does not exist '
                      '(or is not visible to the store\'s project)' % name,
                      'create it (openstack volume type create %s ...) or '
                      'set cinder_volume_type to an existing type' % name)
    specs = getattr(found, 'extra_specs', None) or {}
    multi = specs.get('multiattach', '').replace(' ', '') == '<is>True'
    which = ('%s exists' % name if store.store_conf.cinder_volume_type
             else "unset: Cinder's default (%s)" % name)
    return Result('volume type', OK, '%s; multiattach: %s' % (
        which, 'yes: several glance-api hosts read one image at once' if multi
        else 'no: one glance-api host at a time reads an image (another '
        "host's readers wait, then fail); with several glance-api hosts use "
        'a multiattach type'))


def check_quota(store, api):
    """Room left in the quotas of the project the store creates in."""
    if not cinder_session.service_credentials_set(store.store_conf):
        return Result('quota', SKIP, "no service credentials: volumes go to "
                      "each request's project, whose quota is its own")
    try:
        usage = api.quota_usage()
        vtype = store.volume_type_name(api)
    except Exception as e:
        return Result('quota', SKIP, 'cannot read the quotas: %s' % e)
    shown, full, low = [], [], []
    for kind in ('volumes', 'gigabytes'):
        for name in (kind, '%s_%s' % (kind, vtype)):
            if name not in usage:
                continue
            used, limit = usage[name]
            if limit < 0:
                shown.append('%s unlimited' % name)
                continue
            shown.append('%s %d of %d used' % (name, used, limit))
            left = limit - used
            if left <= 0:
                full.append(name)
            elif left < max(limit // 10, 5 if kind == 'volumes' else 1):
                low.append(name)
    fix = ("raise them for the store's project (openstack quota set "
           '--volumes N --gigabytes N <project>): every image is a volume '
           'there, of at least 1 GiB')
    if full:
        return Result('quota', FAIL, '%s: no room, uploads fail with 413 '
                      '(%s)' % (', '.join(full), '; '.join(shown)), fix)
    if low:
        return Result('quota', WARN, 'little room left in %s (%s)'
                      % (', '.join(low), '; '.join(shown)), fix)
    return Result('quota', OK, '; '.join(shown))


def check_lock_path(store):
    try:
        path = store.check_lock_path()  # the probe the store starts with
    except exceptions.BadStoreConfiguration as e:
        return Result('lock path', FAIL, 'not usable: %s' % e,
                      'set [oslo_concurrency] lock_path to a directory the '
                      'glance-api user can write, the same for all '
                      'glance-api processes of this host')
    return Result('lock path', OK, '%s is writable' % path)


_HELPER_FIX = ('set [%s] helper_command to "sudo glance-rootwrap '
               '/etc/glance/rootwrap.conf privsep-helper" and install the '
               'sudoers rule and rootwrap filters of this package (doc: '
               'Install, "The user glance-api runs as")')


def check_privsep(store):
    try:
        props = store.host.connector_properties()
    except Exception as e:
        return Result('privsep', FAIL, 'os-brick cannot start its privileged '
                      'helper: %s' % e, _HELPER_FIX % 'privsep_osbrick')
    return Result('privsep', OK, 'os-brick\'s helper runs; connector: '
                  'host %s, ip %s, initiator %s, multipath %s' % (
                      props.get('host'), props.get('ip'),
                      props.get('initiator') or 'none',
                      props.get('multipath')))


def check_device_access(store, uid=None):
    """The store's own helper, needed when glance-api is not root.

    :param uid: glance-api's user (default: the user running the check)
    """
    glance_uid = store.host.euid() if uid is None else uid
    if glance_uid == 0:
        return Result('device access', OK, 'glance-api runs as root: opens '
                      'attached devices itself')
    try:
        uid = store.host.privileged_uid()
    except Exception as e:
        return Result('device access', FAIL, 'the store\'s privileged helper '
                      '(lends attached devices to glance-api\'s user) does '
                      'not start: %s' % e,
                      _HELPER_FIX % brick_host.PRIVSEP_STORE)
    if uid != 0:
        return Result('device access', FAIL, 'the store\'s privileged helper '
                      'runs as uid %d, not root' % uid,
                      'start it through sudo (see helper_command of [%s])'
                      % brick_host.PRIVSEP_STORE)
    return Result('device access', OK, 'privileged helper runs as root; '
                  'attached block devices are lent to uid %d while attached'
                  % glance_uid)


def _probe_volume(api, store, tag):
    name = 'cinder-ext-check-%s-%s' % (tag, uuid.uuid4().hex[:8])
    return api.create(1, name, {'cinder_ext_check': tag},
                      store.store_conf.cinder_volume_type)


def check_online_extend(store, api, probe):
    if not store.store_conf.cinder_do_extend_attached:
        return Result('in-use extend', OK, 'off (cinder_do_extend_attached '
                      '= False): unknown sizes grow offline')
    if not probe:
        return Result('in-use extend', SKIP, 'on; run with --probe to try it '
                      'with a 1 GiB volume')
    volume = None
    try:
        volume = _probe_volume(api, store, 'extend')
        with attachments.Attachment(api, store.host, volume.id, 'rw') as att:
            api.extend(volume.id, 2, attached=True)
            after = api.wait_while(volume.id, ('extending',),
                                   'in-use extend')
            if after.size < 2:
                return Result('in-use extend', WARN, "Cinder's scheduler "
                              'refused it (backend without online extend, '
                              'or no room): uploads of unknown size grow '
                              'offline', 'set cinder_do_extend_attached = '
                              'False to skip the attempt')
            seen = att.rescan()
        if seen < api.bytes_for(2):
            return Result('in-use extend', WARN, 'Cinder grew the volume but '
                          'this host does not see it', 'set '
                          'cinder_do_extend_attached = False')
        return Result('in-use extend', OK, 'allowed and supported: a 1 GiB '
                      'volume grew to 2 GiB while attached')
    except cinder_api.ExtendRefused as e:
        return Result('in-use extend', WARN, 'refused: %s' % e,
                      'allow volume:extend_attached_volume in Cinder\'s '
                      'policy, or set cinder_do_extend_attached = False')
    except Exception as e:
        return Result('in-use extend', FAIL, 'probe failed: %s' % e)
    finally:
        if volume is not None:
            api.delete_quietly(volume.id)


def _readable_by(path, uid):
    """Whether ``uid`` may read ``path`` (its mode, owner and groups)."""
    st = os.stat(path)
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    try:
        entry = pwd.getpwuid(uid)
        groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall()
                                   if entry.pw_name in g.gr_mem}
    except KeyError:
        groups = set()
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _ceph_rows(facts, uid):
    """What an RBD backend needs of the host; [] for other protocols.

    :param facts: the backend's :func:`~cinder_ext_store.host_records.
        backend_facts` (the write test's connection, or the store's record):
        the Ceph user and cluster whose keyring os-brick reads
    :param uid: glance-api's user, who must read the keyring
    """
    if (facts or {}).get('protocol') != 'rbd':
        return []
    missing = [name for name in ('rados', 'rbd')
               if importlib.util.find_spec(name) is None]
    rows = [Result('ceph bindings', FAIL, 'Python modules %s not '
                   'importable by glance-api' % ', '.join(missing),
                   'install python3-rados python3-rbd (in a virtualenv: a '
                   '.pth naming a directory with only those two modules)')
            if missing else
            Result('ceph bindings', OK, 'rados and rbd importable')]
    keyring = ceph_pool.keyring(facts.get('cluster_name') or 'ceph',
                                facts.get('auth_username'))
    fix = ('copy the keyring of Cinder\'s rbd_user to %s, readable by '
           "glance-api's user (os-brick reads only that path)" % keyring)
    try:
        readable = _readable_by(keyring, uid)
    except OSError as e:
        rows.append(Result('ceph keyring', FAIL, '%s: %s' % (
            keyring, e.strerror or e), fix))
        return rows
    rows.append(Result('ceph keyring', OK, '%s readable by uid %d'
                       % (keyring, uid)) if readable else
                Result('ceph keyring', FAIL, '%s not readable by uid %d'
                       % (keyring, uid), fix))
    return rows


def _recorded(store):
    try:
        return host_records.Records(store.lock_path()).load_backend(
            store.record_name)
    except Exception:
        return None  # no lock path: its own row says so


def _protocol_row(facts, source):
    """How the backend's volumes reach this host, and how it is known."""
    if facts:
        return Result('protocol', OK, '%s (%s)' % (facts['protocol'],
                                                   source))
    return Result('protocol', SKIP, 'not known until the store attaches a '
                  'volume on this host: run with --write-test for the rows '
                  'the protocol needs')


def check_write(store, api, write_test, seen=None):
    """The write test; ``seen`` gets the first attachment's connection."""
    if not write_test:
        return Result('write test', SKIP, 'run with --write-test for a full '
                      'create / attach / write / read / detach / delete')
    seen = {} if seen is None else seen
    volume, steps, last = None, [], [time.monotonic()]
    data = os.urandom(units.Mi)

    def done(name):
        """Time the step since the previous one."""
        now = time.monotonic()
        steps.append('%s %.2fs' % (name, now - last[0]))
        last[0] = now
    try:
        volume = _probe_volume(api, store, 'write')
        done('create')
        for mode in ('rw', 'ro'):
            att = attachments.Attachment(api, store.host, volume.id, mode)
            try:
                with att:
                    done('attach ' + mode)
                    if mode == 'rw':
                        att.device.write_at(0, data)
                        done('write')
                    else:
                        back = att.device.read_at(0, len(data))
                        done('read')
            finally:
                # Also when connecting failed: an RBD keyring missing.
                seen.setdefault('connection_info', att.connection_info)
            done('detach ' + mode)
        if back != data:
            return Result('write test', FAIL, 'read back differs from what '
                          'was written', 'check the backend and multipath')
        api.delete(volume.id)
        done('delete')
        volume = None
        return Result('write test', OK, '1 MiB written and read back: %s'
                      % ', '.join(steps))
    except Exception as e:
        return Result('write test', FAIL, '%s failed: %s' % (
            'after ' + steps[-1] if steps else 'create', e))
    finally:
        if volume is not None:
            api.delete_quietly(volume.id)


def _option(conf, *path, default=None):
    """``conf[path[0]][path[1]]...``; ``default`` where not registered.

    (Glance's options are not registered where Glance is not importable;
    another backend's group where its store was not loaded.)
    """
    try:
        for name in path:
            conf = conf[name]
        return conf
    except Exception:
        return default


def check_locations(store):
    """Whether users can register locations past this store's rules.

    With ``show_multiple_locations`` on, users add locations themselves
    (OSSN-0065); this store then checks whose image volume a location
    names, but glance_store's in-tree ``cinder`` driver does not: a
    location tagged with an in-tree backend reaches any volume the
    in-tree store's credentials reach, and deleting its image deletes it.
    """
    conf = store.conf
    if not _option(conf, 'show_multiple_locations', default=False):
        return Result('locations', OK, 'show_multiple_locations is off: '
                      'users cannot add locations')
    intree = sorted(name for name, kind in (
        _option(conf, 'enabled_backends') or {}).items() if kind == 'cinder')
    if intree:
        return Result(
            'locations', WARN,
            'show_multiple_locations is on and in-tree cinder backend(s) %s '
            'are enabled: a location tagged with them bypasses this '
            "store's ownership checks (reads and deletes of any volume "
            'their credentials reach)' % ', '.join(intree),
            'turn show_multiple_locations off, or remove the in-tree '
            'cinder backends from enabled_backends')
    return Result('locations', WARN,
                  'show_multiple_locations is on (OSSN-0065): users add '
                  "locations, and only this store's ownership checks stand "
                  "between them and other projects' image volumes",
                  'turn show_multiple_locations off unless a service needs '
                  'it')


def check_options(store):
    """Settings the store would take silently in a way not meant.

    An option glance_store does not know in the backend's section is
    ignored (a misspelt name leaves the default in force); a growth
    ceiling below the floor is raised to it; spare volumes without service
    credentials are not made.
    """
    group = store.backend_group or 'glance_store'
    problems = []
    known = set(_option(store.conf, group, default=()))
    unknown = sorted(set(_section_keys(store.conf, group)) - known)
    if known and unknown:
        problems.append('unknown option(s) in [%s], ignored: %s' % (
            group, ', '.join('%s%s' % (name, _did_you_mean(name, known))
                             for name in unknown)))
    conf = store.store_conf
    if conf.cinder_ext_growth_max_gib < conf.cinder_ext_growth_min_gib:
        problems.append(
            'cinder_ext_growth_max_gib (%d) is below cinder_ext_growth_min_gib'
            ' (%d): the store grows by %d GiB' % (
                conf.cinder_ext_growth_max_gib,
                conf.cinder_ext_growth_min_gib,
                conf.cinder_ext_growth_min_gib))
    if (conf.cinder_ext_spare_volumes and
            not cinder_session.service_credentials_set(conf)):
        problems.append(
            'cinder_ext_spare_volumes is %d but the store has no service '
            'credentials (cinder_store_*): no spare volumes are made'
            % conf.cinder_ext_spare_volumes)
    if problems:
        return Result('options', WARN, '; '.join(problems),
                      'correct or remove them in [%s]' % group)
    return Result('options', OK, 'every option in [%s] is known' % group)


def _did_you_mean(name, known):
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return ' (%s?)' % close[0] if close else ''


def _section_keys(conf, group):
    """The option names the configuration files set in ``[group]``."""
    files = list(conf.config_file or ())
    for directory in conf.config_dir and [conf.config_dir] or ():
        files += sorted(glob.glob(os.path.join(directory, '*.conf')))
    keys = []
    for path in files:
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path)
        except configparser.Error:
            continue  # oslo.config read it: its own syntax
        if parser.has_section(group):
            keys += [key.lower() for key in parser.options(group)
                     if key not in parser.defaults()]
    return keys


def _cinder_backends(store, api, kinds):
    """(name, kind, volume type) of the enabled backends of ``kinds``.

    A backend without ``cinder_volume_type`` gets Cinder's default type.
    """
    for name, kind in (_option(store.conf, 'enabled_backends') or {}).items():
        if kind not in kinds:
            continue
        if name == store.backend_group:
            yield name, kind, store.volume_type_name(api)
        else:
            yield name, kind, (_option(store.conf, name, 'cinder_volume_type')
                               or api.default_volume_type())


def check_registered_locations(store, api):
    """Which backend gets the locations Cinder registers on this type.

    Cinder's upload-to-image registers ``cinder://<volume>`` without a
    store; Glance asks its ``cinder``-scheme backends in
    ``enabled_backends`` order whether the volume is theirs (its volume
    type), and the first that says yes gets it.
    """
    mine = store.volume_type_name(api)
    claims = [name for name, _kind, vtype in _cinder_backends(
        store, api, ('cinder', 'cinder_ext')) if vtype == mine]
    if not claims or claims[0] == store.backend_group:
        return Result('registered locations', OK,
                      'locations Cinder registers on volume type %s '
                      '(upload-to-image) go to this backend' % mine)
    return Result(
        'registered locations', WARN,
        'locations Cinder registers on volume type %s (upload-to-image) go '
        'to backend %s, the first of %s in enabled_backends: none come here'
        % (mine, claims[0], ', '.join(claims)),
        'list the backend that should get them first in enabled_backends, '
        'or give each backend a volume type of its own')


def check_intree_beside(store, api):
    """In-tree ``cinder`` backends enabled beside this store.

    They share the ``cinder://`` scheme and Cinder's view of a host: on
    this store's volume type, their attachments on this host look like ones
    a crashed process of this store left, which reconcile releases once
    older than its grace period, and their images' volumes like this
    store's.
    """
    mine = store.volume_type_name(api)
    intree = {name: vtype for name, _kind, vtype in _cinder_backends(
        store, api, ('cinder',))}
    if not intree:
        return Result('in-tree backends', OK, 'none enabled beside this '
                      'store')
    same = sorted(name for name, vtype in intree.items() if vtype == mine)
    if same:
        return Result(
            'in-tree backends', WARN,
            "in-tree cinder backend(s) %s use this store's volume type %s: "
            'their attachments and image volumes on this host cannot be '
            "told from this store's" % (', '.join(same), mine),
            'give the in-tree backend(s) a volume type of their own (or '
            'move their images here: see "Moving from the in-tree driver" '
            'in the guide)')
    return Result('in-tree backends', OK, 'in-tree cinder backend(s) %s '
                  'beside, on other volume types (%s)' % (
                      ', '.join(sorted(intree)),
                      ', '.join(sorted(set(intree.values())))))


def run_checks(store, probe=False, write_test=False, glance_uid=None):
    """Every check of ``store``, in order; later ones need earlier ones.

    :param glance_uid: the user glance-api runs as, when the check runs as
        another (root)
    """
    if glance_uid is None:
        glance_uid = store.host.euid()
    results = [check_credentials(store)]
    if results[0].status == FAIL:
        results.append(Result('endpoint', SKIP, 'skipped: the credentials '
                              'do not authenticate'))
    else:
        results.append(check_endpoint(store))
    reachable = all(r.status != FAIL for r in results)
    api = store.api()
    if reachable:
        results += [check_volume_type(store, api),
                    check_registered_locations(store, api),
                    check_intree_beside(store, api),
                    check_quota(store, api)]
    results += [check_options(store), check_lock_path(store),
                check_privsep(store),
                check_device_access(store, glance_uid),
                check_locations(store)]
    usable = all(r.status != FAIL for r in results)
    if usable:
        seen = {}
        results += [check_online_extend(store, api, probe),
                    check_write(store, api, write_test, seen)]
        if seen.get('connection_info'):
            facts = host_records.backend_facts(
                attachments.connection_properties(seen['connection_info']))
            source = 'the write test\'s attachment'
        else:
            facts = _recorded(store)
            source = 'recorded by the store\'s last attach on this host'
        results.append(_protocol_row(facts, source))
        ceph = _ceph_rows(facts, glance_uid)
        if ceph:
            # No block device on RBD: librbd inside glance-api.
            results = [Result('device access', OK, 'not used: RBD volumes '
                              'are opened with librbd inside glance-api')
                       if r.check == 'device access' else r for r in results]
            results += ceph
    else:
        results += [Result(name, SKIP, 'skipped: fix the failures above')
                    for name in ('in-use extend', 'write test')]
    return results

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

"""The ``cinder-ext-store`` console script, for operators.

Reads glance-api's configuration as glance-api does (``--config-file``,
``--config-dir``; by default glance-api.conf in the usual places) and acts
on every ``cinder_ext`` backend of ``enabled_backends``:

* ``check [--probe] [--write-test]`` - can each store work, on this host,
  with this Cinder? A table, a fix for each failure, exit status 1 when
  anything failed: see :mod:`cinder_ext_store.check`.
* ``reconcile [--apply] [--older-than SECONDS]`` - find (and with
  ``--apply`` clean) what crashed uploads and readers left: see
  :mod:`cinder_ext_store.reconcile`. Exit status 1 when an action failed.

Run it on each glance-api host, as the user glance-api runs as: the state
of this host's attachments is in glance-api's lock path.
"""

import argparse
import logging
import os
import pwd
import sys
import warnings

# Eventlet's deprecation notice (imported through os-brick's privsep) is
# printed when the store's modules load, before main() runs, and is not an
# operator's concern: filtered before those imports.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

from oslo_config import cfg  # noqa: E402

from cinder_ext_store import check  # noqa: E402
from cinder_ext_store import reconcile  # noqa: E402
from cinder_ext_store import store as store_mod  # noqa: E402

#: Libraries whose warnings speak of transports this host does not use
#: (iSCSI, NVMe initiators missing): errors only, in the tools' output.
QUIET_LOGGERS = ('os_brick', 'oslo_privsep')

#: Uploads younger than this are never taken for orphans by default.
DEFAULT_GRACE = 3600

_CONFIG_DIR_HELP = ("glance-api's configuration directory, read as glance-api "
                    'reads it: its glance-api.conf, then glance-api.conf.d/ '
                    '(a directory without glance-api.conf: every *.conf in '
                    'it)')


class ConfigError(Exception):
    """A configuration the tools cannot use; the message says why."""


def _seconds(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            'expected a number of seconds, 0 or more, got %r' % text)
    return value


def _config_options(parser, suffix=''):
    """--config-file / --config-dir, before or after the subcommand."""
    parser.add_argument('--config-file', action='append', default=[],
                        metavar='PATH', dest='config_file' + suffix,
                        help="glance-api's configuration file (repeatable)")
    parser.add_argument('--config-dir', metavar='DIR',
                        dest='config_dir' + suffix, help=_CONFIG_DIR_HELP)


def _parser():
    parser = argparse.ArgumentParser(
        prog='cinder-ext-store',
        description='Operator tools of the cinder_ext Glance store.')
    _config_options(parser)
    sub = parser.add_subparsers(dest='command', required=True)
    chk = sub.add_parser(
        'check', help='check that each cinder_ext store can work here '
                      '(exit status 1 when not)')
    _config_options(chk, '_after')
    chk.add_argument('--as-user', metavar='USER',
                     help="glance-api's user, whose device access is judged "
                          "(default: the owner of the lock path)")
    chk.add_argument('--probe', action='store_true',
                     help='try an in-use extend with a 1 GiB volume '
                          '(created and deleted)')
    chk.add_argument('--write-test', action='store_true',
                     help='create, attach, write, read back, detach and '
                          'delete a 1 GiB volume, with timings')
    rec = sub.add_parser(
        'reconcile', help='find and clean what crashed uploads and readers '
                          'left (dry run unless --apply)')
    _config_options(rec, '_after')
    rec.add_argument('--apply', action='store_true',
                     help='carry the actions out (default: only print them)')
    rec.add_argument('--older-than', type=_seconds, default=DEFAULT_GRACE,
                     metavar='SECONDS',
                     help='grace period of volumes whose image is gone or '
                          'unfinished (default: %(default)s)')
    return parser


def _config_argv(args):
    """oslo.config's arguments for the files and directory named."""
    files = args.config_file + args.config_file_after
    directory = args.config_dir_after or args.config_dir
    argv = []
    for path in files:
        argv += ['--config-file', path]
    if directory:
        main = os.path.join(directory, 'glance-api.conf')
        if os.path.isfile(main):
            # Not every *.conf of /etc/glance (glance-cache.conf,
            # rootwrap.conf, ...): what glance-api itself reads.
            argv += ['--config-file', main]
            snippets = os.path.join(directory, 'glance-api.conf.d')
            if os.path.isdir(snippets):
                argv += ['--config-dir', snippets]
        else:
            argv += ['--config-dir', directory]
    return argv


def load_conf(args, conf=None):
    """glance-api's configuration, as glance-api parses it.

    :raises oslo_config.cfg.Error: a file is missing, unreadable or not
        parseable (the message names it)
    :raises ConfigError: a path cannot be read as a file
    """
    conf = conf or cfg.CONF
    argv = _config_argv(args)
    if conf is cfg.CONF:
        try:
            # Glance's own options first (its enabled_backends among them;
            # the modules that read its database register command-line
            # options, which only works before parsing).
            import glance.common.config  # noqa: F401
            import glance.context  # noqa: F401
            import glance.db  # noqa: F401
        except ImportError:
            pass  # not on a glance-api host: Glance cannot be asked
    try:
        conf.register_opt(cfg.DictOpt('enabled_backends'))
    except cfg.DuplicateOptError:
        pass
    try:
        conf(argv, project='glance', prog='glance-api')
    except OSError as e:  # a directory or a device given as a file
        raise ConfigError('cannot read the configuration: %s' % e)
    return conf


def stores(conf):
    """The configured cinder_ext stores, by backend name.

    :raises BadStoreConfiguration: as Glance would refuse one at start-up
    """
    found, refused = _stores_or_failure(conf)
    if refused:
        from glance_store import exceptions
        name = sorted(refused)[0]
        raise exceptions.BadStoreConfiguration(store_name=name,
                                               reason=refused[name])
    return found


def _configured(conf):
    """(name, backend group or None) of each cinder_ext store configured.

    With ``enabled_backends`` (multi-store), its ``cinder_ext`` backends;
    without it, Glance's legacy single-store mode: the store when
    ``[glance_store] stores`` lists ``cinder_ext``, as ``glance_store``.

    :raises ConfigError: neither names a cinder_ext store
    """
    from glance_store import backend
    from glance_store import multi_backend
    if conf.enabled_backends:
        multi_backend.register_store_opts(conf)
        named = [(name, name) for name, kind in sorted(
            conf.enabled_backends.items()) if kind == store_mod.STORE_TYPE]
        if not named:
            raise ConfigError(
                'no cinder_ext backend in enabled_backends (%s)' % ', '.join(
                    '%s:%s' % item for item in sorted(
                        conf.enabled_backends.items())))
        return named
    try:
        conf.register_opts(backend._STORE_OPTS, group='glance_store')
    except cfg.DuplicateOptError:
        pass
    if store_mod.STORE_TYPE in (conf.glance_store.stores or ()):
        return [('glance_store', None)]
    raise ConfigError(
        'no cinder_ext store configured: neither enabled_backends (multi-'
        'store) nor [glance_store] stores (single-store) names cinder_ext%s'
        % ('' if conf.config_file or conf.config_dir else
           '; no configuration file was read (give --config-file or '
           '--config-dir)'))


def _stores_or_failure(conf):
    """(stores, failed names): a store Glance would refuse is a failure.

    :raises ConfigError: no cinder_ext store is configured
    """
    from glance_store import exceptions
    from oslo_concurrency import opts as concurrency_opts
    for group, opts in concurrency_opts.list_opts():
        conf.register_opts(opts, group=group)
    found, refused = {}, {}
    for name, group in _configured(conf):
        store = store_mod.Store(conf, backend=group)
        try:
            store.configure(re_raise_bsc=True)
        except exceptions.BadStoreConfiguration as e:
            refused[name] = str(e)
        found[name] = store
    return found, refused


def glance_uid(store, as_user=None):
    """The uid glance-api runs as: ``as_user``, else the lock path's owner.

    None when neither says (no lock path yet): the check then judges the
    user it runs as.

    :raises ConfigError: ``as_user`` is no user of this host
    """
    if as_user:
        if as_user.isdigit():
            return int(as_user)
        try:
            return pwd.getpwnam(as_user).pw_uid
        except KeyError:
            raise ConfigError('--as-user %s: no such user on this host'
                              % as_user)
    from glance_store import exceptions
    try:
        return os.stat(store.lock_path()).st_uid
    except (OSError, exceptions.BadStoreConfiguration):
        return None


def check_command(args, conf, out=print):
    found, refused = _stores_or_failure(conf)
    rows = []
    for name, store in found.items():
        if name in refused:
            rows.append((name, check.Result(
                'configuration', check.FAIL, refused[name],
                'Glance refuses this store at start-up (the store\'s add is '
                'disabled): fix what the detail names')))
        rows += [(name, r) for r in check.run_checks(
            store, probe=args.probe, write_test=args.write_test,
            glance_uid=glance_uid(store, args.as_user))]
    widths = [max(len(x) for x in col) for col in zip(
        ('BACKEND', 'CHECK', 'RESULT'),
        *[(n, r.check, r.status) for n, r in rows])]
    line = '%%-%ds  %%-%ds  %%-%ds  %%s' % tuple(widths)
    out(line % ('BACKEND', 'CHECK', 'RESULT', 'DETAIL'))
    for name, r in rows:
        out(line % (name, r.check, r.status, r.detail))
    fixes = [(n, r) for n, r in rows if r.fix and r.status in (check.FAIL,
                                                               check.WARN)]
    for name, r in fixes:
        out('%s %s/%s: %s' % ('FIX' if r.status == check.FAIL else 'HINT',
                              name, r.check, r.fix))
    failed = sum(1 for _n, r in rows if r.status == check.FAIL)
    out('%d check(s) failed' % failed if failed else 'all checks passed')
    return 1 if failed else 0


def reconcile_command(args, conf, out=print):
    found = stores(conf)
    glance = reconcile.GlanceImages()
    if not glance.reachable:
        out("Glance's database cannot be reached (%s): no image volume is "
            "deleted; this host's dead attachments are still released"
            % glance.reason)
    # Plan everything before acting: releasing a dead upload removes the
    # record that tells another store (its volume type) the volume is
    # garbage.
    seen, actions, notes = set(), [], []
    for store in found.values():
        actions += reconcile.plan(store, glance, args.older_than, seen=seen,
                                  notes=notes)
    for note in notes:
        out(note.describe())
    total = len(actions)
    failed = reconcile.run(actions, args.apply, out)
    if not total:
        out('nothing to clean')
    elif not args.apply:
        out('%d action(s); nothing changed (dry run): run with --apply to '
            'carry them out' % total)
    else:
        out('%d action(s) done, %d failed' % (total - failed, failed))
    undecided = sum(1 for n in notes if n.undecided)
    if not glance.reachable:
        out('incomplete: image volumes were not judged without Glance '
            '(%d kept undecided); run again once its database answers'
            % undecided)
    return 1 if failed or not glance.reachable else 0


def main(argv=None, out=print, conf=None):
    """The console script; a configuration it cannot use is one line.

    :param conf: the ConfigOpts to parse into (default: oslo's global)
    """
    from glance_store import exceptions
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    try:
        conf = load_conf(args, conf)
        if args.command == 'check':
            return check_command(args, conf, out=out)
        return reconcile_command(args, conf, out=out)
    except (cfg.Error, ConfigError) as e:
        out('cinder-ext-store: configuration not usable: %s' % e)
    except exceptions.BadStoreConfiguration as e:
        out('cinder-ext-store: %s (cinder-ext-store check names the fix)'
            % e)
    return 1


if __name__ == '__main__':
    sys.exit(main())

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

* ``reconcile [--apply] [--older-than SECONDS]`` - find (and with
  ``--apply`` clean) what crashed uploads and readers left: see
  :mod:`cinder_ext_store.reconcile`. Exit status 1 when an action failed.

Run it on each glance-api host, as the user glance-api runs as: the state
of this host's attachments is in glance-api's lock path.
"""

import argparse
import sys

from oslo_config import cfg

from cinder_ext_store import reconcile
from cinder_ext_store import store as store_mod

#: Uploads younger than this are never taken for orphans by default.
DEFAULT_GRACE = 3600


def _parser():
    parser = argparse.ArgumentParser(
        prog='cinder-ext-store',
        description='Operator tools of the cinder_ext Glance store.')
    parser.add_argument('--config-file', action='append', default=[],
                        metavar='PATH',
                        help="glance-api's configuration file (repeatable)")
    parser.add_argument('--config-dir', metavar='DIR',
                        help="a directory of glance-api configuration files")
    sub = parser.add_subparsers(dest='command', required=True)
    rec = sub.add_parser(
        'reconcile', help='find and clean what crashed uploads and readers '
                          'left (dry run unless --apply)')
    rec.add_argument('--apply', action='store_true',
                     help='carry the actions out (default: only print them)')
    rec.add_argument('--older-than', type=int, default=DEFAULT_GRACE,
                     metavar='SECONDS',
                     help='grace period of volumes whose image is gone or '
                          'unfinished (default: %(default)s)')
    return parser


def load_conf(args, conf=None):
    """glance-api's configuration, as glance-api parses it."""
    conf = conf or cfg.CONF
    argv = []
    for path in args.config_file:
        argv += ['--config-file', path]
    if args.config_dir:
        argv += ['--config-dir', args.config_dir]
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
    conf(argv, project='glance', prog='glance-api')
    return conf


def stores(conf):
    """The configured cinder_ext stores, by backend name."""
    from glance_store import multi_backend
    from oslo_concurrency import opts as concurrency_opts
    # The lock path, where the stores keep this host's attachment state.
    for group, opts in concurrency_opts.list_opts():
        conf.register_opts(opts, group=group)
    multi_backend.register_store_opts(conf)
    found = {}
    for name, kind in sorted((conf.enabled_backends or {}).items()):
        if kind == store_mod.STORE_TYPE:
            store = store_mod.Store(conf, backend=name)
            store.configure(re_raise_bsc=True)
            found[name] = store
    return found


def reconcile_command(args, conf, out=print):
    found = stores(conf)
    if not found:
        out('no cinder_ext backend in enabled_backends: nothing to do')
        return 0
    glance = reconcile.GlanceImages()
    if not glance.reachable:
        out("Glance's database cannot be reached (%s): only volumes stuck "
            "in %s are considered" % (glance.reason,
                                      '/'.join(reconcile.STUCK)))
    failed = total = 0
    for store in found.values():
        actions = reconcile.plan(store, glance, args.older_than)
        total += len(actions)
        failed += reconcile.run(actions, args.apply, out)
    if not total:
        out('nothing to clean')
    elif not args.apply:
        out('%d action(s); nothing changed (dry run): run with --apply to '
            'carry them out' % total)
    else:
        out('%d action(s) done, %d failed' % (total - failed, failed))
    return 1 if failed else 0


def main(argv=None):
    args = _parser().parse_args(argv)
    conf = load_conf(args)
    if args.command == 'reconcile':
        return reconcile_command(args, conf)
    return 2


if __name__ == '__main__':
    sys.exit(main())

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

"""Stores loaded the way Glance loads them: glance_store's multi-store
functions on the process's global ``ConfigOpts``, once per process."""

import collections
import os
import sys
import tempfile

#: One backend: store type, volume type (None: Cinder's default), whether
#: it extends attached volumes, and more options of its section.
Backend = collections.namedtuple(
    'Backend', 'store_type volume_type extend_attached options',
    defaults=((),))

_LOADED = {}
LOCK_PATH = os.path.join(tempfile.gettempdir(), 'cinder-ext-store-lock')


def load(cloud, backends, default):
    """Create the stores of ``backends`` ({id: Backend}) on ``cloud``.

    glance_store keeps its stores in module globals, so a process loads
    one set; asking again for the same set returns the same config.
    :returns: the ``ConfigOpts`` the stores were made from
    """
    from glance_store import multi_backend
    from oslo_config import cfg
    key = (cloud.name, tuple(sorted(backends.items())), default)
    if _LOADED:
        if key not in _LOADED:
            raise RuntimeError('this process already loaded other stores')
        return _LOADED[key]
    conf = cfg.CONF
    try:
        conf.register_opt(cfg.DictOpt('enabled_backends'))
    except cfg.DuplicateOptError:
        pass
    conf([], project='glance')
    conf.set_override('enabled_backends',
                      {k: b.store_type for k, b in backends.items()})
    multi_backend.register_store_opts(conf)
    conf.set_override('default_backend', default, group='glance_store')
    # One lock path per host, as Glance has: readers of one volume in
    # several processes share their attachment through it.
    lock_path = os.environ.get('CINDER_EXT_LOCK_PATH', LOCK_PATH)
    os.makedirs(lock_path, exist_ok=True)
    conf.set_override('lock_path', lock_path, group='oslo_concurrency')
    for backend, spec in backends.items():
        for name, value in cloud.store_options().items():
            conf.set_override(name, value, group=backend)
        if spec.volume_type:
            conf.set_override('cinder_volume_type', spec.volume_type,
                              group=backend)
        conf.set_override('cinder_do_extend_attached', spec.extend_attached,
                          group=backend)
        conf.set_override('cinder_state_transition_timeout', 120,
                          group=backend)
        for name, value in spec.options:
            conf.set_override(name, value, group=backend)
    # As Glance deployments running as root do: start privsep-helper
    # directly (the in-tree driver would otherwise try sudo).
    import os_brick.privileged  # noqa: F401  (registers the group)
    conf.set_override('helper_command',
                      os.path.join(os.path.dirname(sys.executable),
                                   'privsep-helper'),
                      group='privsep_osbrick')
    multi_backend.create_multi_stores(conf)
    _LOADED[key] = conf
    return conf


def get(backend):
    from glance_store import multi_backend
    return multi_backend.get_store_from_store_identifier(backend)


def location(conf, uri, backend):
    """A location as Glance builds it: from the URI alone (no image id)."""
    from glance_store import location as gs_location
    return gs_location.get_location_from_uri_and_backend(uri, backend,
                                                         conf=conf)


class Recorder(object):
    """Collects the stores' :class:`~cinder_ext_store.stats.TransferStats`.

    An observer of each store; ``with`` it (or :meth:`close`) to stop.
    """

    def __init__(self, *stores):
        self.stores = [s for s in stores if hasattr(s, 'add_observer')]
        self.seen = []
        for store in self.stores:
            store.add_observer(self.seen.append)

    def last(self, operation):
        found = [s for s in self.seen if s.operation == operation]
        return found[-1] if found else None

    def close(self):
        for store in self.stores:
            store.remove_observer(self.seen.append)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

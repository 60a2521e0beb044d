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

"""What the stack tells the tests: one typed structure.

The stack writes a :class:`Facts` into the store cloud of its
``clouds.yaml`` (key ``cinder_ext_store``), and the tests, demo and
benchmark read it back (:attr:`harness.clouds.Cloud.facts`). What differs
between the storages the suites run on (``loop``, ``rbd``) is one
:class:`Storage` each; the rest is said once. A key the structure does not
know is an error, so that writer and readers cannot drift apart.
Standard library only (the stack tool writes it).
"""

import dataclasses
import typing

Text = typing.Optional[str]


@dataclasses.dataclass(frozen=True)
class Storage(object):
    """Volume types and Glance backends the suites use on one storage."""

    #: The store's volume type (online extend allowed and supported;
    #: None: Cinder's default type).
    volume_type: Text = None
    #: A type whose backend does not extend attached volumes.
    volume_type_no_online_extend: Text = None
    volume_type_multiattach: Text = None
    #: The in-tree driver's type (None: Cinder's default).
    volume_type_intree: Text = None
    #: Pools that fill up (the fault matrix).
    volume_type_small: Text = None
    volume_type_full: Text = None
    #: Glance's backends of this store, its offline variant, the in-tree
    #: driver and glance_store's rbd store; the offline backend's type.
    glance_backend: Text = None
    glance_backend_offline: Text = None
    glance_backend_intree: Text = None
    #: The store on the multiattach type (several hosts read at once).
    glance_backend_multiattach: Text = None
    glance_rbd_store: Text = None
    volume_type_glance_offline: Text = None
    #: A Glance backend of this store whose volume type's Cinder backend
    #: keeps Cinder's image-volume cache, and that type.
    glance_backend_image_cache: Text = None
    volume_type_image_cache: Text = None


@dataclasses.dataclass(frozen=True)
class GlanceHost(object):
    """A second glance-api host: its own namespaces and lock path."""

    url: str
    hostname: str
    config_dir: str
    lock_path: str
    log: str
    #: The pid file of ``unshare``; the host's first process is its child.
    pidfile: str


@dataclasses.dataclass(frozen=True)
class Glance(object):
    """The stack's glance-api instances and their files."""

    config_dir: str
    user: str
    lock_path: str
    bin_dir: str
    log: str
    pidfile: str
    #: The instance with show_multiple_locations (users add locations).
    locations_url: str
    #: The instance serving the in-tree driver's backends.
    intree_url: str
    intree_pidfile: str
    #: The same Glance on a second host (None: one host only).
    second_host: typing.Optional[GlanceHost] = None


@dataclasses.dataclass(frozen=True)
class Faults(object):
    """The fault-injecting proxy in front of cinder-api."""

    proxy_port: int
    proxy_upstream: str
    catalog_info: str


@dataclasses.dataclass(frozen=True)
class Facts(object):
    """Everything the stack says beyond a cloud's credentials."""

    storages: typing.Dict[str, Storage]
    #: The local stack's state directory (None: an existing cloud).
    stack_dir: Text = None
    volume_dir: Text = None
    cinder_volume_log: Text = None
    ceph_conf: Text = None
    user_cloud: Text = None
    alt_cloud: Text = None
    #: Without Keystone: the project and the endpoint template.
    project_id: Text = None
    endpoint_template: Text = None
    glance: typing.Optional[Glance] = None
    faults: typing.Optional[Faults] = None

    def to_dict(self):
        """Plain data for clouds.yaml (None left out)."""
        def plain(value):
            if dataclasses.is_dataclass(value):
                return {f.name: plain(getattr(value, f.name))
                        for f in dataclasses.fields(value)
                        if getattr(value, f.name) is not None}
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value
        return plain(self)

    @classmethod
    def from_dict(cls, data):
        """Read back what :meth:`to_dict` wrote.

        :raises ValueError: a key the structure does not know
        """
        data = dict(data or {})
        data['storages'] = {name: _build(Storage, value) for name, value
                            in (data.get('storages') or {}).items()}
        glance = data.get('glance')
        if glance is not None and glance.get('second_host') is not None:
            data['glance'] = dict(glance, second_host=_build(
                GlanceHost, glance['second_host']))
        for name, kind in (('glance', Glance), ('faults', Faults)):
            if data.get(name) is not None:
                data[name] = _build(kind, data[name])
        return _build(cls, data)


def _build(kind, data):
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError('%s: unknown keys %s (written by another version '
                         'of tools/stack? run tools/stack up again)'
                         % (kind.__name__, ', '.join(unknown)))
    return kind(**data)

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

"""Configuration options of the cinder_ext store.

glance_store registers the options of *every installed driver* into the same
groups and does not tolerate two different ``Opt`` objects with one name.
The in-tree cinder driver is always installed next to us, so every option
whose name exists in-tree is that driver's own ``Opt`` object, re-exported
here; options that only we have carry the ``cinder_ext_`` prefix.
"""

import copy

from glance_store._drivers.cinder import store as intree_cinder
from oslo_config import cfg
from oslo_privsep import priv_context
from oslo_utils import units

from cinder_ext_store import privileged

#: The in-tree options, as the very same objects (see module docstring).
INTREE_OPTS = list(intree_cinder.Store.OPTIONS)

GROWTH_OPTS = [
    cfg.FloatOpt('cinder_ext_growth_factor',
                 default=0.5,
                 min=0.1,
                 max=4.0,
                 help="""
Growth factor used when an image of unknown size outgrows its volume.

Chunked uploads reach the store without a size, so the volume starts at
``cinder_ext_growth_min_gib`` and is extended whenever the data no longer fits.
Each extension adds this fraction of the volume's current size (rounded up to
whole GiB and bounded by ``cinder_ext_growth_min_gib`` and
``cinder_ext_growth_max_gib``), so an image of N GiB needs O(log N) extensions
instead of N. The price is over-allocation: the final volume is at most
``factor`` times (and at most ``cinder_ext_growth_max_gib`` GiB) larger than
needed; it is never shrunk, but thin-provisioned backends do not consume the
unused part.

Possible values:
    * A number between 0.1 and 4.0 (0.5 = grow by half of the current size)

Related options:
    * cinder_ext_growth_min_gib
    * cinder_ext_growth_max_gib
    * cinder_do_extend_attached
"""),
    cfg.IntOpt('cinder_ext_growth_min_gib',
               default=1,
               min=1,
               help="""
Smallest step, in GiB, by which a volume of an unknown-size image grows.

This is also the initial size of the volume of an unknown-size image.

Possible values:
    * A positive integer

Related options:
    * cinder_ext_growth_factor
    * cinder_ext_growth_max_gib
"""),
    cfg.IntOpt('cinder_ext_growth_max_gib',
               default=64,
               min=1,
               help="""
Largest step, in GiB, by which a volume of an unknown-size image grows.

Caps the over-allocation of very large images: with the default, the last
extension of a multi-terabyte image adds at most 64 GiB.

Possible values:
    * A positive integer, not smaller than ``cinder_ext_growth_min_gib``

Related options:
    * cinder_ext_growth_factor
    * cinder_ext_growth_min_gib
"""),
]

DATA_PATH_OPTS = [
    cfg.BoolOpt('cinder_ext_direct_io',
                default=True,
                help="""
Read and write image data on attached block devices with O_DIRECT.

Uploads: full 4 MiB buffers bypass this host's page cache, which saves a
copy and most of the kernel's writeback work; on hosts where hashing keeps
the CPUs busy this is measurably faster and uses less CPU. The end of the
image is written buffered and everything is flushed before the volume is
detached.

Downloads: reads go through O_DIRECT too, two 4 MiB requests ahead of the
consumer. A buffered first read of data written around the page cache costs
the kernel several times the CPU of an O_DIRECT read; the price is that
repeated downloads of one image are not served from this host's page cache.

The store falls back to buffered I/O where the device refuses O_DIRECT
(some file systems) and for file-like RBD handles.

Possible values:
    * True or False

Related options:
    * cinder_ext_read_size
"""),
    cfg.IntOpt('cinder_ext_read_size',
               default=64 * units.Ki,
               min=4096,
               max=16 * units.Mi,
               help="""
Bytes the store asks for in each read of the uploaded image.

The store batches what it reads into 4 MiB buffers, so this does not change
the size of device writes. It matters for chunked uploads served by uWSGI,
whose chunked reader copies its buffer for every client chunk until it holds
the requested length: large reads cost time quadratic in the read size.

Possible values:
    * A number of bytes between 4096 and 16777216

Related options:
    * cinder_ext_direct_io
"""),
    cfg.IntOpt('cinder_ext_rbd_op_timeout',
               default=120,
               min=0,
               help="""
Seconds a read or write of a Ceph RBD volume may wait for the cluster.

librbd waits for an answer without limit, and a cluster that cannot take a
write (OSDs full, placement groups inactive) holds it without an error: an
upload would hang until space or OSDs return, keeping its volume, its
attachment and its client. With a limit, the operation fails with a
timeout, the upload fails with an error that names this option, and the
store deletes its volume as on any failure. The limit is set on the Ceph
connection os-brick opens for each attachment (``rados_osd_op_timeout``);
it does not change how os-brick connects, and other Ceph clients of the
process keep their own settings. Ignored for other volume types.

Choose it longer than the cluster's normal pauses (an OSD restart or
peering stalls I/O for seconds); the default fails a transfer after two
minutes without progress.

Possible values:
    * 0: wait without limit (librbd's default)
    * A positive number of seconds
"""),
]

API_OPTS = [
    cfg.IntOpt('cinder_ext_api_timeout',
               default=60,
               min=1,
               help="""
Seconds the store waits for an answer to each Cinder API request.

A request that gets no answer in time counts as failed and is retried like
a connection error (``cinder_http_retries`` times, with a back-off of 0.5 s
doubling up to 4 s). Requests Cinder may have carried out although the
answer was lost (volume create, attachment create, extend, delete) are not
simply sent again: the store first asks Cinder what the lost request did,
so a retry never makes a second volume or attachment. Without a bound, a
cinder-api that accepts connections but never answers would hold an upload
(and its client) forever.

Possible values:
    * A positive number of seconds

Related options:
    * cinder_http_retries
    * cinder_state_transition_timeout
"""),
    cfg.IntOpt('cinder_ext_progress_interval',
               default=10,
               min=0,
               help="""
Seconds between progress lines of a running upload or download.

While an image moves, the store logs one INFO line per interval (``cinder_ext
progress add|get ... phase=... bytes=... mib_per_s=...``) with the bytes so
far, the rate since the last line and overall, and the current phase
(create, attach, copy, grow, finalize, detach); a status wait that lasts
longer than 10 seconds says what it waits for. A slow Cinder, backend or
client is then visible in the log while it is slow, not only in the one
summary line at the end. 0 turns progress lines off.

Possible values:
    * 0 (off) or a positive number of seconds
"""),
]

LIMIT_OPTS = [
    cfg.IntOpt('cinder_ext_spare_volumes',
               default=0,
               min=0,
               max=8,
               help="""
Volumes each glance-api process keeps created and attached ahead for
uploads of small images.

Creating and attaching an image's volume is most of a small upload's time.
With spares, an upload of known size that fits the smallest volume (1 GiB
on most backends) takes a ready volume, renames it ``image-<image id>``,
gives it the image's metadata and starts writing; a thread of the process
then makes the next spare. The image's volume ends as without spares:
detached, read-only, same name and metadata.

Each spare is a volume of the smallest size in the service project (it
counts against that project's volume and gigabyte quotas) and an
attachment to this host, per worker process, while glance-api runs. A
process deletes its spares when it exits normally; after a crash
``cinder-ext-store reconcile`` does. Needs the service credentials
(``cinder_store_*``): spares are made outside any user's request. 0 (the
default) makes no spares.

Possible values:
    * 0 (off), or the number of spares per process (at most 8)

Related options:
    * ``cinder_store_auth_address`` and the other service credentials
    * ``[DEFAULT] workers`` (Glance): each worker keeps its own spares
"""),
    cfg.IntOpt('cinder_ext_transfer_memory_mb',
               default=512,
               min=0,
               help="""
Memory, in MiB, that the transfers of one glance-api process may hold.

Every upload holds two copy buffers (8 MiB) and every download its
read-ahead (12 MiB on a block device or file, 36 MiB on RBD) while it runs.
A transfer that would pass this bound waits until running ones finish, and
gives up after 60 seconds: Glance answers 503 and the client tries again.
One transfer larger than the bound runs alone. The bound is per process:
with several backends of this store, the smallest value applies to all.
0 lifts the bound.

Possible values:
    * 0 (no bound) or a number of MiB

Related options:
    * ``[DEFAULT] workers`` (Glance): one bound per worker process
"""),
    cfg.IntOpt('cinder_ext_image_size_cap',
               min=1,
               help="""
Largest image, in bytes, the store writes into a volume.

An upload that declares a larger size is refused before any volume is
created; an upload of unknown size fails (HTTP 413) as soon as its data
passes the limit, and its volume is deleted. Unset, the store uses Glance's
``[DEFAULT] image_size_cap`` (1 TiB unless changed), so the store never
grows a volume beyond what Glance would accept anyway.

Possible values:
    * A number of bytes, or unset to follow Glance's image_size_cap

Related options:
    * ``[DEFAULT] image_size_cap`` (Glance)
    * cinder_ext_growth_max_gib
"""),
]

#: Glance's own default of ``[DEFAULT] image_size_cap``: 1 TiB.
GLANCE_IMAGE_SIZE_CAP = 1099511627776

OPTIONS = INTREE_OPTS + GROWTH_OPTS + DATA_PATH_OPTS + API_OPTS + LIMIT_OPTS


def image_size_cap(store_conf, conf):
    """The store's size limit: its own option, else Glance's cap."""
    if store_conf.cinder_ext_image_size_cap:
        return store_conf.cinder_ext_image_size_cap
    try:
        return conf.image_size_cap or GLANCE_IMAGE_SIZE_CAP
    except cfg.NoSuchOptError:  # not inside glance-api
        return GLANCE_IMAGE_SIZE_CAP


#: This store's help for in-tree options whose inherited text misleads
#: (the store registers glance_store's own option objects, so that both
#: drivers can be loaded; only the documentation gets this text).
HELP = {
    'cinder_api_insecure': """
Skip the verification of Cinder's TLS certificate.

False (the default) verifies an HTTPS Cinder endpoint against
``cinder_ca_certificates_file``, or against the system's CA bundle when that
is unset; True turns the verification off (test clouds only).

Possible values:
    * False (verify) or True (do not verify)

Related options:
    * cinder_ca_certificates_file
""",
    'cinder_mount_point_base': """
Not used by cinder_ext_store, which does not mount NFS shares (an
NFS-backed volume type is not supported; see the documentation's
Limitations). Read by glance_store's in-tree ``cinder`` driver only.
""",
}

#: The backend name the sample configuration shows the options under.
SAMPLE_BACKEND = 'images'


def _documented(opts):
    """``opts``, with :data:`HELP` in copies of those it corrects."""
    found = []
    for opt in opts:
        if opt.name in HELP:
            opt = copy.copy(opt)
            opt.help = HELP[opt.name].strip()
        found.append(opt)
    return found


def list_opts():
    """Options for oslo-config-generator (namespace ``cinder_ext_store``).

    Shown in a multi-store backend's section (``[images]`` of
    ``enabled_backends = images:cinder_ext``): each backend of this store
    has its own; the legacy single-store mode reads them from
    ``[glance_store]``. Then the privileged helpers' sections, one per
    glance-api process and shared by all backends: the store's own and
    os-brick's (``helper_command`` is how a non-root glance-api starts
    them).
    """
    return [(SAMPLE_BACKEND, _documented(OPTIONS)),
            (privileged.default.cfg_section, priv_context.OPTS),
            ('privsep_osbrick', priv_context.OPTS)]

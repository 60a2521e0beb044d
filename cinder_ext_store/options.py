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

from glance_store._drivers.cinder import store as intree_cinder
from oslo_config import cfg

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

OPTIONS = INTREE_OPTS + GROWTH_OPTS


def list_opts():
    """Options for oslo-config-generator (namespace ``cinder_ext_store``).

    In multi-store deployments these options belong in each backend's own
    section; ``glance_store`` is where the legacy single-store mode reads them.
    """
    return [('glance_store', OPTIONS)]

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

import os

import fixtures
from oslo_config import cfg
from oslo_config import generator

from cinder_ext_store import options
from cinder_ext_store.tests.unit import base

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
SAMPLE = os.path.join(ROOT, 'etc', 'glance-api.conf.sample')


class TestOptions(base.TestCase):

    def test_sample_is_current(self):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path, 'out')
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--config-file', os.path.join(
            ROOT, 'etc', 'oslo-config-generator', 'glance-api.conf'),
            '--output-file', out])
        generator.generate(conf)
        with open(out) as f, open(SAMPLE) as committed:
            self.assertEqual(f.read(), committed.read(),
                             'etc/glance-api.conf.sample is stale: run '
                             'tox -e genconfig')

    def test_every_option_has_help(self):
        for group, opts in options.list_opts():
            for opt in opts:
                self.assertGreater(len(opt.help or ''), 40, opt.name)

    def test_growth_defaults(self):
        by_name = {o.name: o for o in options.GROWTH_OPTS}
        self.assertEqual(0.5, by_name['cinder_ext_growth_factor'].default)
        self.assertEqual(1, by_name['cinder_ext_growth_min_gib'].default)
        self.assertEqual(64, by_name['cinder_ext_growth_max_gib'].default)

    def test_inherited_help_is_corrected_in_the_documentation_only(self):
        documented = {o.name: o for group, opts in options.list_opts()
                      if group == options.SAMPLE_BACKEND for o in opts}
        insecure = documented['cinder_api_insecure']
        self.assertIn('False (the default) verifies', insecure.help)
        self.assertIn('Not used by cinder_ext_store',
                      documented['cinder_mount_point_base'].help)
        # What the store registers stays glance_store's own object: both
        # drivers load side by side in one configuration.
        registered = {o.name: o for o in options.OPTIONS}
        self.assertIsNot(insecure, registered['cinder_api_insecure'])
        self.assertEqual(insecure.name, registered['cinder_api_insecure'].name)
        self.assertEqual(insecure.default,
                         registered['cinder_api_insecure'].default)

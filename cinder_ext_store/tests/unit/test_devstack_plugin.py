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

"""devstack/plugin.sh run through its phases with DevStack's functions
stubbed; what it writes is compared with what the project's stack writes
for the same backend (harness/stack), which the functional tests run.
"""

import configparser
import getpass
import os
import stat
import subprocess

import fixtures
import testtools

from harness.stack import glance as stack_glance
from harness.stack import service

REPO = service.REPO

#: DevStack's functions the plugin calls, as small bash stand-ins that
#: record what they were asked (calls.log) and really edit ini files.
STUBS = r'''
function _log { echo "$*" >> "$WORK/calls.log"; }
function iniset {
    python3 - "$@" <<'PY'
import configparser, os, sys
path, section, option, value = sys.argv[1:5]
c = configparser.RawConfigParser(strict=False)
c.optionxform = str
c.read(path)
if section != 'DEFAULT' and not c.has_section(section):
    c.add_section(section)
c.set(section, option, value)
with open(path, 'w') as f:
    c.write(f)
PY
}
function iniget {
    python3 - "$@" <<'PY'
import configparser, sys
path, section, option = sys.argv[1:4]
c = configparser.RawConfigParser(strict=False)
c.optionxform = str
c.read(path)
print(c.get(section, option, fallback=''))
PY
}
function die { shift; echo "DIE: $*" >&2; exit 1; }
function trueorfalse {
    local default=$1 value=${!2:-$1}
    case "$value" in [Tt]rue|1|yes) echo True ;; [Ff]alse|0|no) echo False ;;
        *) echo "$default" ;; esac
}
function is_service_enabled {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
function echo_summary { _log "summary $*"; }
function setup_develop { _log "setup_develop $*"; }
function visudo {
    _log "visudo $*"
    local f=${@: -1}
    [[ $(stat -c %a "$f") == 440 ]] && grep -q NOPASSWD "$f"
}
function sudo {
    if [[ "$1" == -u ]]; then _log "sudo-as $2"; shift 2; fi
    "$@"
}
function openstack {
    _log "openstack $*"
    [[ " $KNOWN_TYPES " == *" ${@: -1} "* ]]
}
'''


class TestDevstackPlugin(testtools.TestCase):

    def setUp(self):
        super(TestDevstackPlugin, self).setUp()
        self.work = self.useFixture(fixtures.TempDir()).path
        self.user = getpass.getuser()
        for sub in ('etc/glance', 'etc/cinder', 'bin', 'data', 'sudoers.d'):
            os.makedirs(os.path.join(self.work, sub))
        self.glance_conf = self.path('etc/glance/glance-api.conf')
        self.cinder_conf = self.path('etc/cinder/cinder.conf')
        # As DevStack leaves them before post-config: Glance with its two
        # file stores (GLANCE_ENABLE_MULTIPLE_STORES), Cinder with one LVM
        # backend.
        self.write(self.glance_conf,
                   '[DEFAULT]\nenabled_backends = fast:file,cheap:file\n'
                   '[glance_store]\ndefault_backend = fast\n')
        self.write(self.cinder_conf,
                   '[DEFAULT]\nenabled_backends = lvmdriver-1\n'
                   '[lvmdriver-1]\nvolume_driver = x.LVMVolumeDriver\n')
        check = self.path('bin/cinder-ext-store')
        self.write(check, '#!/bin/sh\necho "check $*" >> %s\n'
                   % self.path('calls.log'))
        os.chmod(check, 0o755)
        self.env = {
            'WORK': self.work, 'DEST': self.work, 'STACK_USER': self.user,
            'DATA_DIR': self.path('data'),
            'CINDER_EXT_STORE_DIR': REPO,
            'GLANCE_CONF_DIR': self.path('etc/glance'),
            'GLANCE_API_CONF': self.glance_conf,
            'GLANCE_BIN_DIR': self.path('bin'),
            'CINDER_CONF': self.cinder_conf,
            'CINDER_ENABLED_BACKENDS': 'lvm:lvmdriver-1',
            'KEYSTONE_SERVICE_URI': 'http://192.0.2.5/identity',
            'SERVICE_PASSWORD': 'secret', 'SERVICE_PROJECT_NAME': 'service',
            'SERVICE_DOMAIN_NAME': 'Default',
            'ENABLED_SERVICES': 'key,g-api,c-api,c-vol,c-sch',
            'CINDER_EXT_STORE_SUDOERS': self.path('sudoers.d/cinder-ext'),
            'KNOWN_TYPES': 'lvmdriver-1',
        }

    def path(self, relative):
        return os.path.join(self.work, relative)

    @staticmethod
    def write(path, text):
        with open(path, 'w') as f:
            f.write(text)

    def run_phase(self, *phase, expect_ok=True, **env):
        script = (STUBS + 'source %s/devstack/settings\n'
                  'source %s/devstack/plugin.sh %s\n'
                  % (REPO, REPO, ' '.join(phase)))
        proc = subprocess.run(
            ['bash', '-c', script], capture_output=True, text=True,
            env=dict(os.environ, **dict(self.env, **env)))
        if expect_ok:
            self.assertEqual(0, proc.returncode, proc.stderr)
        else:
            self.assertNotEqual(0, proc.returncode, proc.stdout)
        return proc

    def calls(self):
        try:
            with open(self.path('calls.log')) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    @staticmethod
    def ini(text_or_path):
        c = configparser.RawConfigParser(strict=False)
        c.optionxform = str
        if os.path.exists(text_or_path):
            c.read(text_or_path)
        else:
            c.read_string(text_or_path)
        return c

    @staticmethod
    def own(conf, section):
        """The options of ``section`` itself (not [DEFAULT]'s)."""
        return {k: v for k, v in conf[section].items()
                if k not in conf.defaults()}

    def stack_section(self, name, vtype, extend):
        """What the stack writes for this backend (glance-backend-cinder)."""
        text = service.render(
            'glance-backend-cinder.conf', name=name, vtype=vtype,
            description='cinder_ext',
            auth_url='http://192.0.2.5/identity/v3', password='secret',
            extend=extend, rootwrap=self.path('etc/glance/rootwrap.conf'))
        return self.own(self.ini(text), name)

    def test_install_develops_the_checkout(self):
        self.run_phase('stack', 'install')
        self.assertIn('setup_develop %s' % REPO, self.calls())

    def test_post_config_writes_what_the_stack_writes(self):
        self.run_phase('stack', 'post-config',
                       CINDER_EXT_STORE_BACKENDS='images:lvmdriver-1,'
                       'offline:lvmdriver-1:False')
        conf = self.ini(self.glance_conf)
        self.assertEqual(self.stack_section('images', 'lvmdriver-1', True),
                         self.own(conf, 'images'))
        self.assertEqual(self.stack_section('offline', 'lvmdriver-1', False),
                         self.own(conf, 'offline'))
        self.assertEqual('fast:file,cheap:file,images:cinder_ext,'
                         'offline:cinder_ext',
                         conf['DEFAULT']['enabled_backends'])
        self.assertEqual('images', conf['glance_store']['default_backend'])
        lock = self.path('data/glance/locks')
        self.assertEqual(lock, conf['oslo_concurrency']['lock_path'])
        self.assertEqual(lock, conf['os_brick']['lock_path'])
        self.assertEqual(0o700, stat.S_IMODE(os.stat(lock).st_mode))
        helper = stack_glance.helper_command(
            self.path('bin/glance-rootwrap'),
            self.path('etc/glance/rootwrap.conf'))
        self.assertEqual(helper, conf['privsep_osbrick']['helper_command'])
        self.assertEqual(helper,
                         conf['cinder_ext_store_privileged']['helper_command'])
        # Rootwrap and sudoers: the stack's, for DevStack's paths.
        with open(self.path('etc/glance/rootwrap.conf')) as f:
            self.assertEqual(stack_glance.rootwrap_conf(
                self.path('etc/glance/rootwrap.d'), self.path('bin')),
                f.read())
        with open(self.path(
                'etc/glance/rootwrap.d/cinder_ext_store.filters')) as f, \
                open(os.path.join(REPO, 'etc/glance/rootwrap.d/'
                                  'cinder_ext_store.filters')) as g:
            self.assertEqual(g.read(), f.read())
        sudoers = self.path('sudoers.d/cinder-ext')
        with open(sudoers) as f:
            self.assertEqual(stack_glance.sudoers_rule(
                self.user, [self.path('bin/glance-rootwrap')],
                self.path('etc/glance/rootwrap.conf')), f.read())
        self.assertEqual(0o440, stat.S_IMODE(os.stat(sudoers).st_mode))
        self.assertIn('visudo -c -q -f %s.new' % sudoers, self.calls())
        # Cinder: the stack's clone settings on DevStack's backend.
        cinder = self.ini(self.cinder_conf)
        self.assertEqual('cinder',
                         cinder['DEFAULT']['allowed_direct_url_schemes'])
        stack_backend = self.ini(service.render(
            'cinder-backend-loop.conf', name='lvmdriver-1', online=True,
            volume_dir='/x', capacity=0, thin=0, cache='',
            internal='image_upload_use_internal_tenant = True\n'))
        for option in ('image_upload_use_cinder_backend',
                       'image_upload_use_internal_tenant'):
            self.assertEqual(stack_backend['lvmdriver-1'][option],
                             cinder['lvmdriver-1'][option])
        self.assertEqual('x.LVMVolumeDriver',
                         cinder['lvmdriver-1']['volume_driver'])
        stack_glance_section = self.ini(service.render(
            'cinder-glance.conf', auth_url='http://192.0.2.5/identity/v3',
            password='secret'))
        self.assertEqual(self.own(stack_glance_section, 'glance'),
                         self.own(cinder, 'glance'))

    def test_post_config_twice_changes_nothing(self):
        self.run_phase('stack', 'post-config')
        with open(self.glance_conf) as f:
            first = f.read()
        self.run_phase('stack', 'post-config')
        with open(self.glance_conf) as f:
            self.assertEqual(first, f.read())
        self.assertEqual(
            'fast:file,cheap:file,images:cinder_ext',
            self.ini(self.glance_conf)['DEFAULT']['enabled_backends'])

    def test_default_backend_kept_when_asked(self):
        self.run_phase('stack', 'post-config', CINDER_EXT_STORE_DEFAULT='keep')
        self.assertEqual(
            'fast',
            self.ini(self.glance_conf)['glance_store']['default_backend'])

    def test_malformed_backend_is_refused_before_writing(self):
        with open(self.glance_conf) as f:
            before = f.read()
        proc = self.run_phase('stack', 'post-config', expect_ok=False,
                              CINDER_EXT_STORE_BACKENDS='images')
        self.assertIn("'images' is not name:volume_type", proc.stderr)
        proc = self.run_phase('stack', 'post-config', expect_ok=False,
                              CINDER_EXT_STORE_BACKENDS='images:lvm:maybe')
        self.assertIn('must be True or False', proc.stderr)
        with open(self.glance_conf) as f:
            self.assertEqual(before, f.read())

    def test_extra_checks_types_and_runs_check_as_glance_user(self):
        self.run_phase('stack', 'extra')
        calls = self.calls()
        self.assertIn('openstack volume type show lvmdriver-1', calls)
        self.assertIn('sudo-as %s' % self.user, calls)
        self.assertIn('check check --config-file %s --probe --write-test'
                      % self.glance_conf, calls)

    def test_extra_fails_on_a_missing_volume_type(self):
        proc = self.run_phase('stack', 'extra', expect_ok=False,
                              KNOWN_TYPES='other')
        self.assertIn('Cinder has no volume type lvmdriver-1', proc.stderr)
        self.assertFalse([c for c in self.calls() if c.startswith('check')])

    def test_clean_removes_what_it_installed(self):
        self.run_phase('stack', 'post-config')
        self.run_phase('clean')
        self.assertFalse(os.path.exists(self.path('sudoers.d/cinder-ext')))
        self.assertFalse(os.path.exists(self.path(
            'etc/glance/rootwrap.d/cinder_ext_store.filters')))

    def test_nothing_without_glance(self):
        self.run_phase('stack', 'post-config',
                       ENABLED_SERVICES='key,c-api,c-vol')
        self.assertEqual([], self.calls())
        self.assertNotIn('images', self.ini(self.glance_conf).sections())

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

"""A real OpenStack on this host, for development, tests and demos.

    tools/stack up           install what is missing, start, wait, print:
                             Keystone, Cinder and glance-api with the
                             cinder_ext store as its default backend, and
                             glance-api-b: the same glance-api as a second
                             host (own namespaces, host name, lock path)
    tools/stack up --no-ceph the same without Ceph (loop devices only)
    tools/stack up --noauth  the light stack: Cinder alone, noauth
    tools/stack down         stop what `up` started (by pid), detach loops
    tools/stack status       what runs, where
    tools/stack health       exit 0 when every service of the stack as it
                             was started answers, else 1 naming those that
                             do not (what the test command asks)
    tools/stack external     use an existing cloud instead: writes the
                             stack's clouds.yaml from OS_AUTH_URL,
                             OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (+
                             domains) and CINDER_EXT_VOLUME_TYPE; starts
                             nothing
    tools/stack clean        down, then delete the state directory
    tools/stack stop NAME    kill one Cinder process (cinder-volume,
                             cinder-scheduler, cinder-api), as a crash or
                             a deploy would; `start NAME` starts it again

Runs as root on Debian 12; glance-api runs as the system user `glance`
it creates. Everything lives in $CINDER_EXT_STACK_DIR (default
<repo>/.stack, ignored by git), except the glance user, its sudoers rule
(/etc/sudoers.d/cinder-ext-stack-glance) and /usr/local/bin/glance-rootwrap
(`clean` removes the last two); `up` writes clouds.yaml there (see
harness/clouds.py) and openrc for the `openstack` CLI.
"""

from concurrent import futures
import dataclasses
import os
import shutil
import sys
import time

from harness import clouds
from harness import facts
from harness.stack import ceph
from harness.stack import cinder
from harness.stack import glance
from harness.stack import keystone
from harness.stack import postgres
from harness.stack import rabbitmq
from harness.stack import service


def openrc(s):
    """The demo user's shell environment for the stack's clients.

    ``openstack``, ``glance`` and ``cinder`` as the stack installed them,
    on its clouds.yaml.
    """
    lines = [
        '# source this: the stack\'s clients, as its demo user',
        'export PATH="$PATH:%s:%s"' % (
            os.path.join(s.venv('glance'), 'bin'),
            os.path.join(s.venv('cinder'), 'bin')),
        # openstack reads the cloud; glance and cinder the variables.
        'export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s' % (
            s.path('clouds.yaml'), clouds.USER_CLOUD),
        'export OS_AUTH_URL=%s OS_IDENTITY_API_VERSION=3' % s.auth_url,
        'export OS_USERNAME=demo OS_PASSWORD=%s OS_PROJECT_NAME=demo'
        % s.DEMO_PASSWORD,
        'export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default',
        # Image API v2 (named stores), volume API 3.x (user messages).
        'export OS_IMAGE_API_VERSION=2 OS_VOLUME_API_VERSION=3.54',
    ]
    return '\n'.join(lines) + '\n'


class Stack(object):
    """The services of one stack, in start order."""

    def __init__(self, settings):
        self.s = settings
        self.postgres = postgres.PostgreSQL(settings)
        self.rabbit = rabbitmq.RabbitMQ(settings)
        self.keystone = (keystone.Keystone(settings, self.postgres)
                         if settings.keystone else None)
        self.ceph = ceph.Ceph(settings) if settings.ceph else None
        self.cinder = cinder.Cinder(settings, self.postgres, self.rabbit,
                                    self.keystone, self.ceph)
        self.glance = self.glance_locations = self.glance_intree = None
        self.glance_b = None
        if settings.keystone:
            self.glance = glance.Glance(settings, self.keystone,
                                        self.postgres, self.ceph)
            self.glance_locations = glance.GlanceLocations(
                settings, self.keystone, self.postgres, self.ceph)
            self.glance_intree = glance.GlanceIntree(
                settings, self.keystone, self.postgres, self.ceph)
            self.glance_b = glance.GlanceSecondHost(
                settings, self.keystone, self.postgres, self.ceph,
                first=self.glance)

    @property
    def services(self):
        return [svc for svc in (self.postgres, self.rabbit, self.keystone,
                                self.ceph, self.cinder, self.glance,
                                self.glance_locations, self.glance_intree,
                                self.glance_b)
                if svc]

    # -- commands ------------------------------------------------------

    def up(self):
        if os.geteuid() != 0:
            raise service.StackError('run as root (loop devices, service '
                                     'users)')
        started = time.monotonic()
        for directory in (self.s.state, self.s.pids, self.s.logs):
            os.makedirs(directory, exist_ok=True)
        running = read_mode(self.s.state)
        if running not in (None, self.s.mode) and self.cinder.healthy():
            raise service.StackError('the stack runs in %s mode: run down '
                                     'first' % running)
        with open(self.s.path('mode'), 'w') as f:
            f.write(self.s.mode + (' ceph' if self.s.ceph else ''))
        self.install()
        for svc in self.services:
            service.log('starting %s' % svc.name)
            svc.start()
        self.write_clouds()
        service.log('ready in %ds' % (time.monotonic() - started))
        self.status()

    def install(self):
        """Install every service; the three virtualenvs side by side.

        Making them one after the other took ~160 s of a ~265 s first
        ``up`` (pip waits on downloads as much as on the CPU). The other
        services install before (Cinder's venv links Ceph's bindings) and
        after (the other glance-apis use the first one's venv and user).
        """
        venvs = [svc for svc in (self.keystone, self.cinder, self.glance)
                 if svc]
        first = [svc for svc in (self.postgres, self.rabbit, self.ceph)
                 if svc]
        for svc in first:
            svc.install()
        rest = [svc for svc in self.services
                if svc not in first and svc not in venvs]
        with futures.ThreadPoolExecutor(len(venvs)) as pool:
            for done in [pool.submit(svc.install) for svc in venvs]:
                done.result()
        for svc in rest:
            svc.install()

    def down(self):
        # Stop in the reverse order, whatever the mode they started in.
        full = Stack(service.Settings('keystone', self.s.state))
        for svc in reversed(full.services):
            svc.stop()
        for name in ('clouds.yaml', 'openrc'):
            try:
                os.unlink(self.s.path(name))
            except FileNotFoundError:
                pass
        service.log('stopped')

    def status(self):
        full = Stack(service.Settings('keystone', self.s.state))
        for svc in full.services:
            for name in svc.processes():
                pid = svc.pid(name)
                state = ('running, pid %d' % pid if svc.alive(name)
                         else 'stopped')
                print('  %-21s %s' % (name, state))
        if os.path.exists(self.s.path('clouds.yaml')):
            for svc in self.services:
                line = svc.describe()
                if line:
                    print('  ' + line)
            print('  clouds:    %s (OS_CLOUD=%s; users: %s, %s, %s)'
                  % (self.s.path('clouds.yaml'), clouds.STORE_CLOUD,
                     clouds.USER_CLOUD, clouds.ALT_CLOUD,
                     clouds.ADMIN_CLOUD))
            if self.s.keystone:
                tool = os.path.join(self.s.venv('glance'), 'bin',
                                    'cinder-ext-store')
                print('  use it:    source %s; openstack image list; '
                      'cinder list' % self.s.path('openrc'))
                print('  a store:   glance image-create --name x '
                      '--disk-format raw --container-format bare --file '
                      'FILE --store offline')
                print('  tools:     sudo -u %s %s check --config-dir %s '
                      '(or reconcile; as glance-api\'s user)'
                      % (glance.USER, tool, self.glance.etc))
            print('  logs:      %s, %s' % (self.s.logs,
                                           self.s.path('cinder', 'log')))

    def health(self):
        """Every service of this stack answers: True; else say which not."""
        if read_mode(self.s.state) is None:
            service.log('not started')
            return False
        sick = [svc.name for svc in self.services if not svc.healthy()]
        if sick:
            service.log('not answering: %s' % ', '.join(sick))
        return not sick

    def write_clouds(self):
        s = self.s
        loop = facts.Storage(
            volume_type='loop', volume_type_no_online_extend='loop-offline',
            volume_type_multiattach='loop-multiattach',
            volume_type_small='loop-small', volume_type_full='loop-full')
        storages = {'loop': loop}
        glance_facts = faults = None
        if s.keystone:
            loop = storages['loop'] = dataclasses.replace(
                loop, glance_backend='images',
                glance_backend_offline='offline',
                glance_backend_intree='intree',
                glance_backend_multiattach='multiattach',
                volume_type_glance_offline='loop-offline',
                glance_backend_image_cache='offline',
                volume_type_image_cache='loop-offline')
            if self.ceph:
                # What CINDER_EXT_STORAGE=rbd runs the suites on. The
                # fault matrix's cells that need loop pools (a pool
                # without online extend, pools that fill up) keep them.
                storages['rbd'] = dataclasses.replace(
                    loop, volume_type='rbd', volume_type_intree='rbd',
                    volume_type_multiattach='rbd-multiattach',
                    glance_backend='rbd', glance_backend_offline='rbd-offline',
                    glance_backend_intree='rbd-intree',
                    glance_backend_multiattach='rbd-multiattach',
                    volume_type_glance_offline='rbd',
                    glance_rbd_store='rbd-glance')
            glance_facts = facts.Glance(
                config_dir=self.glance.etc, user=self.glance.run_as,
                lock_path=self.glance.lock_path,
                bin_dir=os.path.join(s.venv('glance'), 'bin'),
                log=self.glance.log_file, pidfile=self.glance.pidfile(),
                locations_url='http://127.0.0.1:%d'
                % self.glance_locations.port,
                # The in-tree driver's backends are served by a glance-api
                # of their own.
                intree_url='http://127.0.0.1:%d' % self.glance_intree.port,
                intree_pidfile=self.glance_intree.pidfile(),
                second_host=facts.GlanceHost(
                    url='http://127.0.0.1:%d' % self.glance_b.port,
                    hostname=self.glance_b.hostname,
                    config_dir=self.glance_b.etc,
                    lock_path=self.glance_b.lock_path,
                    log=self.glance_b.log_file,
                    pidfile=self.glance_b.pidfile()))
            faults = facts.Faults(
                proxy_port=s.faults_port,
                proxy_upstream='http://127.0.0.1:%d' % s.cinder_port,
                catalog_info='volumev3-faults::publicURL')
        said = facts.Facts(
            storages=storages, stack_dir=s.state,
            volume_dir=self.cinder.volume_dir,
            cinder_volume_log=self.s.path('cinder', 'log',
                                          'cinder-volume.log'),
            ceph_conf=self.ceph.conf if self.ceph else None,
            user_cloud=clouds.USER_CLOUD, alt_cloud=clouds.ALT_CLOUD,
            glance=glance_facts, faults=faults)
        if s.keystone:
            entries = {
                clouds.STORE_CLOUD: clouds.password_cloud(
                    s.auth_url, 'glance', s.SERVICE_PASSWORD, 'service',
                    facts=said),
                clouds.USER_CLOUD: clouds.password_cloud(
                    s.auth_url, 'demo', s.DEMO_PASSWORD, 'demo'),
                clouds.ALT_CLOUD: clouds.password_cloud(
                    s.auth_url, 'alt_demo', s.DEMO_PASSWORD, 'alt_demo'),
                clouds.ADMIN_CLOUD: clouds.password_cloud(
                    s.auth_url, 'admin', s.ADMIN_PASSWORD, 'admin'),
            }
            with open(s.path('openrc'), 'w') as f:
                f.write(openrc(s))
        else:
            project = s.NOAUTH_PROJECT
            endpoint = '%s/%s' % (s.cinder_base, project)
            said = dataclasses.replace(
                said, endpoint_template=s.cinder_base + '/%(project_id)s',
                project_id=project)
            entries = {
                clouds.STORE_CLOUD: clouds.token_cloud(
                    endpoint, 'glance:%s' % project, facts=said),
                clouds.ADMIN_CLOUD: clouds.token_cloud(
                    endpoint, 'admin:%s' % project),
            }
        clouds.write(s.path('clouds.yaml'), entries)

    def external(self):
        env = os.environ
        if not env.get('OS_AUTH_URL'):
            raise service.StackError('set OS_AUTH_URL (source an openrc)')
        os.makedirs(self.s.state, exist_ok=True)
        said = None
        if env.get('CINDER_EXT_VOLUME_TYPE'):
            said = facts.Facts(storages={'loop': facts.Storage(
                volume_type=env['CINDER_EXT_VOLUME_TYPE'],
                volume_type_no_online_extend=env.get(
                    'CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND'))})
        cloud = clouds.password_cloud(
            env['OS_AUTH_URL'], env['OS_USERNAME'], env['OS_PASSWORD'],
            env['OS_PROJECT_NAME'], facts=said)
        cloud['auth'].update(
            user_domain_name=env.get('OS_USER_DOMAIN_NAME', 'Default'),
            project_domain_name=env.get('OS_PROJECT_DOMAIN_NAME',
                                        'Default'))
        clouds.write(self.s.path('clouds.yaml'), {clouds.STORE_CLOUD: cloud})
        with open(self.s.path('mode'), 'w') as f:
            f.write('external')
        service.log('using the cloud of %s; wrote %s'
                    % (env['OS_AUTH_URL'], self.s.path('clouds.yaml')))

    def clean(self):
        self.down()
        for name in ('pg', 'rabbit'):  # service dirs placed elsewhere
            link = self.s.path(name)
            if os.path.islink(link):
                shutil.rmtree(os.path.realpath(link), ignore_errors=True)
        shutil.rmtree(self.s.state, ignore_errors=True)
        service.log('removed %s' % self.s.state)
        # What the stack put outside its state: the glance user's sudoers
        # rule and the rootwrap link point into the removed venv.
        for path in (glance.SUDOERS, glance.SUDOERS_INTREE,
                     glance.ROOTWRAP_LINK):
            if os.path.lexists(path) and (
                    path != glance.ROOTWRAP_LINK or os.readlink(
                        path).startswith(self.s.state)):
                os.unlink(path)
                service.log('removed %s' % path)


def read_mode(state):
    """The mode the stack was started in, or None."""
    return (_read_state(state) or [None])[0]


def _read_state(state):
    try:
        with open(os.path.join(state, 'mode')) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def main(argv):
    command = argv[0] if argv else None
    if command not in ('up', 'down', 'status', 'health', 'external',
                       'clean', 'stop', 'start'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    mode = 'keystone'
    state = service.Settings().state
    if command == 'up':
        mode = 'noauth' if '--noauth' in argv[1:] else 'keystone'
        with_ceph = '--no-ceph' not in argv[1:]
    else:
        if read_mode(state) == 'noauth':
            mode = 'noauth'
        with_ceph = 'ceph' in _read_state(state)
    stack = Stack(service.Settings(mode, state, with_ceph))
    try:
        if command in ('stop', 'start'):
            if len(argv) != 2:
                raise service.StackError('%s which process?' % command)
            if command == 'stop':
                stack.cinder.stop_process(argv[1])
            else:
                stack.cinder.start_process(argv[1])
        elif command == 'health':
            return 0 if stack.health() else 1
        else:
            getattr(stack, command)()
    except service.StackError as e:
        service.log('ERROR: %s' % e)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

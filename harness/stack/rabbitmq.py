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

"""RabbitMQ: a node of its own (name, ports, data) for Cinder's RPC.

epmd, which every Erlang node shares, is stopped only when this stack
started it.
"""

import os

from harness.stack import service

NODE = 'cinderext@localhost'


class RabbitMQ(service.Service):
    name = 'rabbitmq'

    def install(self):
        if not service.have_command('rabbitmq-server'):
            service.apt_install(['rabbitmq-server'])

    @property
    def url(self):
        return 'rabbit://guest:guest@127.0.0.1:%d/' % self.s.rabbit_port

    def _env(self):
        data = os.path.realpath(self.s.path('rabbit'))
        return {'HOME': '/var/lib/rabbitmq', 'RABBITMQ_NODENAME': NODE,
                'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
                'RABBITMQ_NODE_PORT': str(self.s.rabbit_port),
                'RABBITMQ_DIST_PORT': str(self.s.rabbit_port + 20000),
                'RABBITMQ_MNESIA_BASE': data + '/mnesia',
                'RABBITMQ_LOG_BASE': data + '/log',
                'RABBITMQ_PID_FILE': data + '/rabbit.pid',
                'RABBITMQ_ENABLED_PLUGINS_FILE': data + '/enabled_plugins',
                'RABBITMQ_CONFIG_FILE': data + '/rabbitmq'}

    def ctl(self, *args, check=True):
        return service.run(['rabbitmqctl', '-n', NODE] + list(args),
                           user='rabbitmq', env=self._env(), check=check)

    def start(self):
        data = self.s.service_dir('rabbit', 'rabbitmq')
        for name, text in (('enabled_plugins', '[].\n'),
                           ('rabbitmq.conf', 'loopback_users = none\n')):
            path = os.path.join(data, name)
            if not os.path.exists(path):
                with open(path, 'w') as f:
                    f.write(text)
            service.run(['chown', 'rabbitmq:', path])
        # Any rabbitmqctl call starts epmd: look before the first one.
        if epmd_pid() is None:
            open(self.pidfile('epmd.ours'), 'w').close()
        if not self.healthy():
            service.run(['rabbitmq-server', '-detached'], user='rabbitmq',
                        env=self._env())
        service.wait_for(60, 'RabbitMQ',
                         lambda: self.ctl('await_startup') is not None)
        with open(os.path.join(data, 'rabbit.pid')) as f:
            self.record_pid(int(f.read()))
        if os.path.exists(self.pidfile('epmd.ours')):
            self.record_pid(epmd_pid(), 'epmd')

    def healthy(self):
        if not os.path.exists(self.s.path('rabbit')):
            return False
        return 'Status of node' in self.ctl('status', check=False)

    def has_queue(self, prefix):
        names = self.ctl('list_queues', '-q', 'name').split()
        return any(n.startswith(prefix) for n in names)

    def stop(self):
        if self.pid() is not None:
            self.ctl('stop', check=False)
        super(RabbitMQ, self).stop()
        if os.path.exists(self.pidfile('epmd.ours')):
            self.kill_recorded('epmd')
            os.unlink(self.pidfile('epmd.ours'))


def epmd_pid():
    """epmd daemonizes itself: find it by its listening port."""
    found = service.listener(4369)
    return found[1] if found else None

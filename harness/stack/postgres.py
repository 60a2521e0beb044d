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

"""PostgreSQL: a private cluster on its own port for Cinder's and Glance's
databases.

Not SQLite: with SQLite Cinder's three services hit "database is locked"
and its quota usage drifts.
"""

import glob
import os

from harness.stack import service


def _bindir():
    dirs = sorted(glob.glob('/usr/lib/postgresql/*/bin'),
                  key=lambda d: int(d.split('/')[-2]))
    return dirs[-1] if dirs else None


class PostgreSQL(service.Service):
    name = 'postgres'
    databases = ('cinder', 'glance', 'keystone')

    def install(self):
        if _bindir() is None:
            service.apt_install(['postgresql'])

    @property
    def data(self):
        return self.s.service_dir('pg', 'postgres')

    def _ctl(self, *args, check=True):
        return service.run([os.path.join(_bindir(), 'pg_ctl'), '-D',
                            self.data] + list(args), user='postgres',
                           check=check)

    def _psql(self, sql):
        return service.run([os.path.join(_bindir(), 'psql'), '-h',
                            '127.0.0.1', '-p', str(self.s.pg_port), '-U',
                            'postgres', '-qtA', '-c', sql]).strip()

    def start(self):
        data = self.data
        if not os.path.exists(os.path.join(data, 'PG_VERSION')):
            service.run([os.path.join(_bindir(), 'initdb'), '-D', data,
                         '-A', 'trust', '-U', 'postgres'], user='postgres')
        if not self.healthy():
            self._ctl('-l', os.path.join(data, 'server.log'), '-w', '-o',
                      '-p %d -k %s -c listen_addresses=127.0.0.1'
                      % (self.s.pg_port, data), 'start')
        with open(os.path.join(data, 'postmaster.pid')) as f:
            self.record_pid(int(f.readline()))
        for db in self.databases:
            if self._psql("SELECT 1 FROM pg_database WHERE datname='%s'"
                          % db) != '1':
                self._psql('CREATE DATABASE %s' % db)

    def healthy(self):
        if _bindir() is None or not os.path.exists(self.s.path('pg')):
            return False
        return 'server is running' in self._ctl('status', check=False)

    def stop(self):
        if self.pid() is not None and self.alive():
            self._ctl('-m', 'fast', '-w', 'stop', check=False)
        super(PostgreSQL, self).stop()

    def url(self, database):
        return 'postgresql+psycopg2://postgres@127.0.0.1:%d/%s' % (
            self.s.pg_port, database)

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

"""What every service of the stack shares: settings, processes, pid files.

A :class:`Service` installs what it needs, starts, answers :meth:`healthy`
and stops *by the pid it recorded* - never by name, so a stack never stops
what it did not start.
"""

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from harness import waiting

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


class StackError(Exception):
    """Something the stack could not do; the message says what."""


def log(message):
    print('[stack %s] %s' % (time.strftime('%H:%M:%S'), message),
          file=sys.stderr, flush=True)


#: How long one command of the stack may take, unless its caller says
#: otherwise: a command that hangs (a Ceph client without a cluster, a
#: database that does not answer) fails ``up`` instead of holding it.
COMMAND_TIMEOUT = 300


def run(cmd, user=None, env=None, check=True, capture=True,
        timeout=COMMAND_TIMEOUT, **kw):
    """Run ``cmd`` (as ``user``); returns its stdout.

    :raises StackError: it failed (with ``check``) or ran over ``timeout``
        seconds (it is killed)
    """
    cmd = list(cmd)
    if env:  # through env(1): runuser resets the environment
        cmd = ['env'] + ['%s=%s' % kv for kv in sorted(env.items())] + cmd
    if user:
        cmd = ['runuser', '-u', user, '--'] + cmd
    try:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None, text=True,
            timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        out = e.output or ''
        if isinstance(out, bytes):
            out = out.decode('utf-8', 'replace')
        raise StackError('%s did not finish in %d s (killed): %s' % (
            ' '.join(cmd), timeout, out[-2000:]))
    if check and proc.returncode:
        raise StackError('%s failed (exit %d): %s' % (
            ' '.join(cmd), proc.returncode, (proc.stdout or '')[-2000:]))
    return proc.stdout or ''


def wait_for(seconds, what, probe, interval=0.5):
    """Poll ``probe()`` until true; :class:`StackError` after ``seconds``."""
    try:
        waiting.until(probe, seconds, interval, what=what,
                      errors_are_no=True)
    except waiting.TimedOut as e:
        raise StackError(str(e))


#: The templates of the configuration files the stack writes.
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'etc')


def render(template, /, **values):
    """The template ``harness/stack/etc/<template>`` filled with ``values``.

    Templates use ``%(key)s`` fields (``%%`` for a percent sign).
    """
    with open(os.path.join(TEMPLATES, template)) as f:
        return f.read() % values


class Settings(object):
    """Ports, credentials and paths of one stack (one state directory)."""

    #: Cinder's noauth mode wants hex project ids.
    NOAUTH_PROJECT = 'c0ffee00c0ffee00c0ffee00c0ffee00'
    # Development secrets of a stack that listens on 127.0.0.1 only.
    ADMIN_PASSWORD = 'admin-secret'
    SERVICE_PASSWORD = 'service-secret'
    DEMO_PASSWORD = 'demo-secret'

    def __init__(self, mode='keystone', state=None, ceph=True):
        env = os.environ
        self.mode = mode
        #: Ceph RBD (a Cinder backend, Glance stores on it); keystone mode
        self.ceph = ceph and mode == 'keystone'
        self.state = os.path.abspath(state or env.get(
            'CINDER_EXT_STACK_DIR', os.path.join(REPO, '.stack')))
        self.pids = os.path.join(self.state, 'pids')
        self.logs = os.path.join(self.state, 'log')
        port = lambda name, default: int(env.get(  # noqa: E731
            'CINDER_EXT_%s_PORT' % name, default))
        self.pg_port = port('PG', 55432)
        self.rabbit_port = port('RABBIT', 5682)
        self.cinder_port = port('API', 18776)
        self.keystone_port = port('KEYSTONE', 15000)
        self.glance_port = port('GLANCE', 19292)
        #: harness.faults.FaultProxy, while a fault test runs
        self.faults_port = port('FAULTS', 18777)
        self.pins = {
            'cinder': env.get('CINDER_EXT_CINDER_PIN', 'cinder==29.0.0'),
            'keystone': env.get('CINDER_EXT_KEYSTONE_PIN', 'keystone==30.0.0'),
            'glance': env.get('CINDER_EXT_GLANCE_PIN', 'glance==33.0.0'),
        }
        self.auth_url = 'http://127.0.0.1:%d/v3' % self.keystone_port
        self.glance_url = 'http://127.0.0.1:%d' % self.glance_port
        self.cinder_base = 'http://127.0.0.1:%d/v3' % self.cinder_port
        self.faults_base = 'http://127.0.0.1:%d/v3' % self.faults_port

    @property
    def keystone(self):
        return self.mode == 'keystone'

    def path(self, *parts):
        return os.path.join(self.state, *parts)

    def venv(self, name):
        return self.path('venv-%s' % name)

    def service_dir(self, name, user):
        """A directory ``user`` owns.

        In the state dir when ``user`` can reach it, else under /var/tmp
        (linked from the state dir).
        """
        link = self.path(name)
        if not os.path.exists(link):
            reachable = subprocess.run(
                ['runuser', '-u', user, '--', 'test', '-x', self.state],
                timeout=60).returncode == 0
            if reachable:
                os.makedirs(link)
            else:
                digest = hashlib.md5(self.state.encode(),
                                     usedforsecurity=False).hexdigest()[:8]
                alt = '/var/tmp/cinder-ext-stack-%s/%s' % (digest, name)
                os.makedirs(alt, exist_ok=True)
                os.chmod(os.path.dirname(alt), 0o755)
                os.symlink(alt, link)
        real = os.path.realpath(link)
        run(['chown', '-R', '%s:' % user, real])
        return real


def _venv_home(directory):
    try:
        with open(os.path.join(directory, 'pyvenv.cfg')) as f:
            for line in f:
                key, _, value = line.partition('=')
                if key.strip() == 'home':
                    return value.strip()
    except OSError:
        return None
    return None


def make_venv(directory, probe, requirements, pip_log, python=None):
    """A virtualenv with ``requirements`` (``bin/<probe>`` says it exists).

    An existing one is topped up when the requirements changed since it
    was made (they are recorded in it), and made again when it was made
    from another Python.

    :param python: the interpreter (default: the one running this)
    """
    python = python or sys.executable
    stamp = os.path.join(directory, '.cinder-ext-requirements')
    wanted = '\n'.join(requirements)
    home = _venv_home(directory)
    if home is not None and home != os.path.dirname(python):
        log('remaking %s with %s' % (directory, python))
        shutil.rmtree(directory)
    if os.path.exists(os.path.join(directory, 'bin', probe)):
        try:
            with open(stamp) as f:
                if f.read() == wanted:
                    return
        except FileNotFoundError:
            pass
        log('updating %s: %s' % (directory, ' '.join(requirements)))
    else:
        log('installing %s into %s (a minute or two)'
            % (' '.join(requirements), directory))
        run([python, '-m', 'venv', directory])
    pip_install(directory, requirements, pip_log)
    with open(stamp, 'w') as f:
        f.write(wanted)


def pip_install(directory, requirements, pip_log):
    with open(pip_log, 'a') as out:
        try:
            proc = subprocess.run(
                [os.path.join(directory, 'bin', 'pip'), 'install', '-q'] +
                list(requirements), stdout=out, stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise StackError('pip install %s did not finish in %d s, see %s'
                             % (' '.join(requirements), INSTALL_TIMEOUT,
                                pip_log))
    if proc.returncode:
        raise StackError('pip install %s failed, see %s'
                         % (' '.join(requirements), pip_log))


#: How long one pip or apt-get install may take (downloads included).
INSTALL_TIMEOUT = 1800

#: One apt run at a time (services install side by side).
_APT = threading.Lock()


def apt_install(packages, recommends=True):
    """Install the Debian packages of ``packages`` that are missing."""
    if not packages:
        return
    with _APT:
        _apt_install(packages, recommends)


def _apt_install(packages, recommends):
    log('installing Debian packages: %s' % ' '.join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], env=None, timeout=INSTALL_TIMEOUT)
    options = [] if recommends else ['--no-install-recommends']
    # Waits for a dpkg lock another apt run holds instead of failing.
    try:
        proc = subprocess.run(['apt-get', '-o', 'DPkg::Lock::Timeout=900',
                               'install', '-y', '-qq'] + options + packages,
                              env=env, stdout=subprocess.DEVNULL,
                              timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise StackError('apt-get install %s did not finish in %d s'
                         % (' '.join(packages), INSTALL_TIMEOUT))
    if proc.returncode:
        raise StackError('apt-get install %s failed' % ' '.join(packages))


def deb_installed(package):
    """Whether Debian package ``package`` is installed."""
    proc = subprocess.run(['dpkg-query', '-W', '-f', '${Status}', package],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=60)
    return 'install ok installed' in proc.stdout


def listener(port):
    """Who listens on TCP ``port``: None, or (command, pid).

    Both are None when ``ss`` does not say whose it is (another user's
    process seen without root).
    """
    out = run(['ss', '-Hltnp', 'sport = :%d' % port], check=False,
              timeout=30)
    if not out.strip():
        return None
    found = re.search(r'users:\(\("([^"]+)",pid=(\d+)', out)
    return (found.group(1), int(found.group(2))) if found else (None, None)


def have_command(name):
    return shutil.which(name) is not None


class Service(object):
    """One process of the stack, known by the pid file it wrote."""

    #: Name in pid files, logs and ``status``.
    name = None

    def __init__(self, settings):
        self.s = settings

    # -- the contract --------------------------------------------------

    def install(self):
        """Install what this service needs (idempotent)."""

    def start(self):
        """Start unless running, and wait until :meth:`healthy`."""
        raise NotImplementedError

    def healthy(self):
        """True when the service answers."""
        return self.alive()

    def stop(self):
        """Stop the process this stack started (by its pid)."""
        self.kill_recorded(self.name)

    def describe(self):
        """One line for ``status`` beyond running/stopped, or None."""
        return None

    # -- pids and processes --------------------------------------------

    def pidfile(self, name=None):
        return os.path.join(self.s.pids, name or self.name)

    def pid(self, name=None):
        try:
            with open(self.pidfile(name)) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def record_pid(self, pid, name=None):
        os.makedirs(self.s.pids, exist_ok=True)
        with open(self.pidfile(name), 'w') as f:
            f.write('%d\n' % pid)

    def alive(self, name=None):
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def processes(self):
        """The names of this service's processes (pid files)."""
        return [self.name]

    def spawn(self, cmd, logfile, env=None, name=None, user=None):
        """Start ``cmd`` in its own session; record its pid.

        :param user: a system user to run it as (its own group, no others)
        """
        os.makedirs(os.path.dirname(logfile), exist_ok=True)
        env = dict(os.environ, **(env or {}))
        who = {}
        if user:
            entry = pwd.getpwnam(user)
            who = dict(user=entry.pw_uid, group=entry.pw_gid,
                       extra_groups=[])
            env.update(HOME=entry.pw_dir, USER=user, LOGNAME=user)
        with open(logfile, 'ab') as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                env=env, **who)
        self.record_pid(proc.pid, name)
        return proc.pid

    def kill_recorded(self, name, grace=10.0):
        """TERM the recorded pid, KILL it after ``grace`` seconds."""
        pid = self.pid(name)
        if pid is not None and self.alive(name):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while self.alive(name) and time.monotonic() < deadline:
                time.sleep(0.1)
                _reap(pid)
            if self.alive(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.unlink(self.pidfile(name))
        except FileNotFoundError:
            pass


def _reap(pid):
    """Collect ``pid`` if it is our exited child.

    Else it stays a zombie that ``kill -0`` still finds.
    """
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class UwsgiService(Service):
    """A WSGI application served by uWSGI, as production deploys them."""

    venv_name = None
    module = None
    workers = 1
    threads = 4
    #: The system user uWSGI runs as (None: the stack's own, root).
    run_as = None

    def uwsgi_options(self):
        """Extra uWSGI options of this application."""
        return []

    def url(self):
        raise NotImplementedError

    def uwsgi_command(self, port):
        venv = self.s.venv(self.venv_name)
        # Connection: close, or clients reuse connections uWSGI has closed.
        return [os.path.join(venv, 'bin', 'uwsgi'), '--master',
                '--die-on-term', '--enable-threads',
                '--processes', str(self.workers),
                '--threads', str(self.threads),
                '--http-socket', '127.0.0.1:%d' % port,
                '--module', self.module, '--buffer-size', '65535',
                '--lazy-apps', '--add-header', 'Connection: close'
                ] + self.uwsgi_options()

    def spawn_uwsgi(self, port):
        if self.alive():
            return
        self.spawn(self.uwsgi_command(port),
                   os.path.join(self.s.logs, '%s.log' % self.name),
                   user=self.run_as)

    def healthy(self):
        import urllib.request
        try:
            urllib.request.urlopen(self.url(), timeout=5).close()
            return True
        except OSError:
            return False

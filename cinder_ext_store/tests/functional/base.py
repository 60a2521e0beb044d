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

"""Functional tests: the store against a real Cinder.

The cloud comes from clouds.yaml (see :mod:`harness.clouds`): by default
the local stack, which the test command (``tools/run-tests.sh``) starts;
run alone, the tests expect it running (``tools/stack up``) and fail at
once, saying so, when it does not answer. Stores are loaded the
way Glance loads them, and locations are built as Glance builds them: from
the URI alone.
"""

import hashlib
import logging
import os
import pwd
import subprocess

import fixtures
from oslo_context import context as oslo_context
import testtools

from cinder_ext_store import store as store_mod
from harness import clouds
from harness import faults
from harness import images
from harness import leaks
from harness import procfs
from harness import stores
from harness import waiting

MiB = images.MiB
GiB = images.GiB

_CLOUD = None
_PROXY = None


def cloud():
    """The store's cloud; a clear failure when it does not answer."""
    global _CLOUD
    if _CLOUD is None:
        try:
            found = clouds.load()
            leaks.Inspector(found).volumes()
        except Exception as e:
            raise RuntimeError(
                'the cloud does not answer (%s): start the local stack '
                '(tools/stack up; tools/run-tests.sh starts it) or name a '
                'cloud with OS_CLIENT_CONFIG_FILE / OS_CLOUD' % e)
        _CLOUD = found
    return _CLOUD


def fault_proxy(cloud):
    """The process's :class:`~harness.faults.FaultProxy` (started once).

    Before the stores load: the ``faults`` store checks its volume type
    through it.
    """
    global _PROXY
    if _PROXY is None:
        _PROXY = faults.FaultProxy(cloud.facts.faults.proxy_upstream,
                                   cloud.facts.faults.proxy_port)
        _PROXY.start()
    return _PROXY


def backends(cloud):
    """The test backends: {id: Backend}."""
    on = cloud.storage_facts
    vtype = on.volume_type
    more = {}
    if cloud.facts.faults:
        # Cinder through the fault proxy (test_faults), quick to time out.
        through_proxy = (
            ('cinder_catalog_info', cloud.facts.faults.catalog_info),
            ('cinder_ext_api_timeout', 3),
            ('cinder_state_transition_timeout', 30),
            ('cinder_ext_rbd_op_timeout', 5))
        more['faults'] = stores.Backend('cinder_ext', vtype, True,
                                        through_proxy)
        # The same on the multiattach type (test_hosts).
        more['faults-multiattach'] = stores.Backend(
            'cinder_ext', on.volume_type_multiattach, True, through_proxy)
    for name in ('small', 'full'):  # pools that fill up (test_faults)
        pool = getattr(on, 'volume_type_%s' % name)
        if pool:
            more[name] = stores.Backend('cinder_ext', pool, True)
    return dict(more, **{
        'online': stores.Backend('cinder_ext', vtype, True),
        # One spare volume per process (test_spare_volumes).
        'spare': stores.Backend('cinder_ext', vtype, True,
                                (('cinder_ext_spare_volumes', 1),)),
        'offline': stores.Backend('cinder_ext', vtype, False),
        'nofeature': stores.Backend(
            'cinder_ext', on.volume_type_no_online_extend, True),
        'multiattach': stores.Backend(
            'cinder_ext', on.volume_type_multiattach, True),
        # No volume type on loop: the in-tree driver crashes at start-up
        # when it has a type to check and no service credentials (the
        # noauth stack); Cinder's default type applies.
        'intree': stores.Backend(
            'cinder', on.volume_type_intree, True),
    })


def host_init(host):
    """The first process of a glance-api host (its uWSGI master).

    :param host: a :class:`harness.facts.GlanceHost`; its pid file names
        ``unshare``, whose only child is that process
    """
    found = procfs.children(procfs.read_pidfile(host.pidfile))
    if not found:
        raise RuntimeError('glance-api host %s is not running (tools/stack '
                           'up starts it)' % host.hostname)
    return found[0]


class Context(oslo_context.RequestContext):
    """A Glance-like request context (Glance's carries a catalog)."""

    def __init__(self, **kwargs):
        super(Context, self).__init__(**kwargs)
        self.service_catalog = []


#: Seconds a functional test may take (OS_TEST_TIMEOUT overrides): the
#: slowest (a 2 GiB upload on RBD, a Cinder restart) take ~3 minutes here.
TEST_TIMEOUT = int(os.environ.get('OS_TEST_TIMEOUT') or 900)


class FunctionalTestCase(testtools.TestCase):

    def setUp(self):
        super(FunctionalTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(TEST_TIMEOUT, gentle=True))
        self.cloud = cloud()
        if self.cloud.storage_facts is None:
            # Not a silent run on loop devices under the rbd name.
            self.fail('CINDER_EXT_STORAGE=rbd but cloud %s has no RBD '
                      'settings: start the stack with Ceph (tools/stack up, '
                      'without --no-ceph), and leave OS_CLOUD unset or name '
                      'the store\'s cloud (the openrc sets a user\'s)'
                      % self.cloud.name)
        self.backends = backends(self.cloud)
        if 'faults' in self.backends:
            fault_proxy(self.cloud)
        self.conf = stores.load(self.cloud, self.backends, 'online')
        self.inspect = leaks.Inspector(self.cloud)
        # With service credentials the context only names the owner.
        self.context = Context(
            user_id='glance',
            project_id=self.cloud.facts.project_id or 'c0ffee00')
        self.log = self.useFixture(fixtures.FakeLogger(
            level=logging.INFO, format='%(levelname)s %(name)s %(message)s'))
        for backend in self.backends:
            store = self.store(backend)
            if isinstance(store, store_mod.Store):
                store.configure()  # forget a remembered extend refusal
        self.stats = stores.Recorder(*map(self.store, self.backends))
        self.addCleanup(self.stats.close)
        self.before = self.inspect.snapshot()

    def store(self, backend):
        return stores.get(backend)

    def wait_for(self, what, probe, timeout=120, interval=0.2):
        """``probe()``'s first true answer; the test fails after timeout."""
        try:
            return waiting.until(probe, timeout, interval, what=what)
        except waiting.TimedOut as e:
            self.fail(str(e))

    def glance_command(self, *args, etc=None, timeout=300, host=None,
                       pid_namespace=False):
        """``cinder-ext-store`` as an operator runs it on the Glance host.

        From glance-api's environment, on its configuration directory
        (``etc``, default the stack's) and as glance-api's user, so that
        what it creates (locks, markers) glance-api can use afterwards.
        The directory is named after the subcommand, as operators type it.

        :param host: a :class:`harness.facts.GlanceHost`: run it on that
            host (in its namespaces, on its configuration)
        :param pid_namespace: run it in a PID namespace of its own (what
            running it from outside glance-api's container looks like)
        """
        glance = self.cloud.facts.glance
        etc = etc or (host.config_dir if host else glance.config_dir)
        cmd = [os.path.join(glance.bin_dir, 'cinder-ext-store'), args[0],
               '--config-dir', etc] + list(args[1:])
        user = glance.user
        if not (host or pid_namespace):
            who = {}
            if user and os.geteuid() == 0:
                entry = pwd.getpwnam(user)
                who = dict(user=entry.pw_uid, group=entry.pw_gid,
                           extra_groups=[], cwd='/')
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=timeout, **who)
        # Namespaces are entered as root; then glance-api's user.
        prefix = []
        if host:
            prefix = procfs.enter_command(host_init(host))
        if pid_namespace:
            prefix += ['unshare', '--pid', '--fork', '--mount-proc']
        if user:
            entry = pwd.getpwnam(user)
            prefix += ['setpriv', '--reuid', str(entry.pw_uid), '--regid',
                       str(entry.pw_gid), '--clear-groups', '--']
        return subprocess.run(prefix + cmd, capture_output=True, text=True,
                              timeout=timeout, cwd='/')

    def location(self, uri, backend):
        return stores.location(self.conf, uri, backend)

    def add(self, backend, source, size, image_id='func-image'):
        result = self.store(backend).add(image_id, source, size, 'sha512',
                                         context=self.context)
        self.addCleanup(self._forget, result[0].rsplit('/', 1)[1])
        return result

    def _forget(self, volume_id):
        """Delete a test image's volume if a failed test left it."""
        try:
            self.inspect.cinder.volumes.delete(volume_id)
        except Exception:
            pass  # already deleted by the test

    def read_sha256(self, uri, backend, **kw):
        it, length = self.store(backend).get(
            self.location(uri, backend), context=self.context, **kw)
        digest = hashlib.sha256()
        total = 0
        for chunk in it:
            digest.update(chunk)
            total += len(chunk)
        self.assertEqual(length, total)
        return digest.hexdigest()

    def delete(self, uri, backend):
        self.store(backend).delete(self.location(uri, backend),
                                   context=self.context)

    def assertNoLeftovers(self, timeout=60):
        """Cinder and this host are as before the test."""
        now = self.inspect.wait_until(self.before, timeout)
        for name, was in self.before.items():
            self.assertEqual(was, now[name], 'leftover %s' % name)

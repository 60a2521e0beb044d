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

"""How a store reaches Cinder: credentials, TLS, the endpoint.

One :class:`CinderSession` per store instance holds that store's service
credentials (or acts with each request's token), its TLS settings and its
catalog lookup (the in-tree driver shares one global session between all
cinder stores). It hands out a :class:`~cinder_ext_store.cinder_api.
CinderAPI` per request; what Cinder is asked and how is there.
"""

import os

from cinderclient import api_versions
from cinderclient.v3 import client as cinder_v3
from glance_store import exceptions
from keystoneauth1.access import service_catalog
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import identity
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint

from cinder_ext_store import cinder_api


def _verify_setting(conf):
    if conf.cinder_api_insecure:
        return False
    return conf.cinder_ca_certificates_file or True


def service_credentials_set(conf):
    """True when the store has its own (service) credentials configured."""
    if (conf.cinder_store_application_credential_id and
            conf.cinder_store_application_credential_secret):
        return bool(conf.cinder_store_auth_address)
    return all((conf.cinder_store_auth_address, conf.cinder_store_user_name,
                conf.cinder_store_password, conf.cinder_store_project_name))


def incomplete_credentials(conf):
    """Name the service-credential options that are set but insufficient.

    :returns: a message, or None when the credentials are complete or absent
    """
    password = ('cinder_store_auth_address', 'cinder_store_user_name',
                'cinder_store_password', 'cinder_store_project_name')
    appcred = ('cinder_store_auth_address',
               'cinder_store_application_credential_id',
               'cinder_store_application_credential_secret')
    given = [n for n in set(password + appcred) if conf.get(n)]
    if not given or service_credentials_set(conf):
        return None
    wanted = appcred if any('application' in n for n in given) else password
    missing = sorted(n for n in wanted if not conf.get(n))
    return ('service credentials are incomplete: %s set but %s missing'
            % (', '.join(sorted(given)), ', '.join(missing)))


class CinderSession(object):
    """The keystoneauth session of one store instance.

    :param store_name: named in configuration errors
    :param tuning: passed to each :class:`~cinder_ext_store.cinder_api.
        CinderAPI`
    """

    def __init__(self, conf, store_name, tuning=None):
        self.conf = conf
        self.store_name = store_name
        self.tuning = tuning
        self._session = None
        self._pid = None

    @property
    def session(self):
        # Glance forks its workers after it configured the stores: a
        # session (its connection pool, its token) made before the fork
        # is not shared with the children; each process makes its own.
        if self._session is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._session = ksa_session.Session(
                auth=self._service_auth(), verify=_verify_setting(self.conf),
                timeout=self.conf.cinder_ext_api_timeout)
        return self._session

    def _service_auth(self):
        conf = self.conf
        if not service_credentials_set(conf):
            return None
        if conf.cinder_store_application_credential_id:
            return identity.V3ApplicationCredential(
                auth_url=conf.cinder_store_auth_address,
                application_credential_id=(
                    conf.cinder_store_application_credential_id),
                application_credential_secret=(
                    conf.cinder_store_application_credential_secret))
        return identity.V3Password(
            auth_url=conf.cinder_store_auth_address,
            username=conf.cinder_store_user_name,
            password=conf.cinder_store_password,
            user_domain_name=conf.cinder_store_user_domain_name,
            project_name=conf.cinder_store_project_name,
            project_domain_name=conf.cinder_store_project_domain_name)

    def _context_auth(self, context):
        """Token auth for the request's user, at the endpoint we resolve."""
        conf = self.conf
        if context is None:
            raise exceptions.BadStoreConfiguration(
                store_name=self.store_name,
                reason='no service credentials are configured and the '
                       'request carries no context to act for')
        token = context.auth_token or '%s:%s' % (context.user_id,
                                                 context.project_id)
        if conf.cinder_endpoint_template:
            url = conf.cinder_endpoint_template % context.to_dict()
        else:
            if not context.service_catalog:
                raise exceptions.BadStoreConfiguration(
                    store_name=self.store_name,
                    reason='the request has no service catalog; set '
                           'cinder_endpoint_template or service credentials')
            stype, sname, iface = self._catalog_info()
            try:
                url = service_catalog.ServiceCatalogV2(
                    context.service_catalog).url_for(
                        service_type=stype, service_name=sname or None,
                        interface=iface,
                        region_name=conf.cinder_os_region_name)
            except ksa_exc.EndpointNotFound:
                raise exceptions.BadStoreConfiguration(
                    store_name=self.store_name,
                    reason='no %s endpoint in the service catalog'
                           % conf.cinder_catalog_info)
        return token_endpoint.Token(endpoint=url, token=token)

    def _catalog_info(self):
        parts = self.conf.cinder_catalog_info.split(':')
        if len(parts) != 3:
            raise exceptions.BadStoreConfiguration(
                store_name=self.store_name,
                reason='cinder_catalog_info must be '
                       '<service_type>:<service_name>:<interface>, got %r'
                       % self.conf.cinder_catalog_info)
        return parts

    def client(self, context=None, version=cinder_api.MV_BASE):
        """A cinderclient for one request at one microversion."""
        auth = None
        if not service_credentials_set(self.conf):
            auth = self._context_auth(context)
        stype, sname, iface = self._catalog_info()
        return cinder_v3.Client(
            session=self.session, auth=auth,
            service_type=stype, service_name=sname or None,
            endpoint_type=iface,
            region_name=self.conf.cinder_os_region_name,
            api_version=api_versions.APIVersion(version))

    def api(self, context=None):
        """The Cinder API for one request (``context``: the user's)."""
        return cinder_api.CinderAPI(
            lambda version: self.client(context, version),
            self.conf.cinder_state_transition_timeout,
            retries=self.conf.cinder_http_retries, tuning=self.tuning)

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

"""Sphinx configuration of the operator documentation (tox -e docs)."""

project = 'cinder_ext_store'
copyright = 'cinder_ext_store developers'
extensions = ['oslo_config.sphinxext']
# The option reference comes from the code: oslo.config's show-options
# directive reads the 'cinder_ext_store' oslo.config.opts entry point.
config_generator_config_file = None
master_doc = 'index'
exclude_patterns = []
html_theme = 'alabaster'

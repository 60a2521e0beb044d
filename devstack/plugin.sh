#!/bin/bash
# DevStack plugin of cinder_ext_store: installs the store next to Glance and
# makes each entry of CINDER_EXT_STORE_BACKENDS a Glance backend of type
# cinder_ext (multi-store layout), with the lock path, the rootwrap filters
# and sudoers rule a non-root glance-api needs, and Cinder's settings for
# cloning image volumes. Settings: devstack/settings.

CINDER_EXT_STORE_SUDOERS=${CINDER_EXT_STORE_SUDOERS:-/etc/sudoers.d/cinder-ext-store}

# The rootwrap configuration glance-api's privsep helpers go through.
function _cinder_ext_store_rootwrap_conf {
    echo "$GLANCE_CONF_DIR/rootwrap.conf"
}

# "name vtype extend" for each entry of CINDER_EXT_STORE_BACKENDS; fails on
# a malformed entry (called before anything is written).
function _cinder_ext_store_backends {
    local entry name vtype extend rest
    for entry in ${CINDER_EXT_STORE_BACKENDS//,/ }; do
        IFS=: read -r name vtype extend rest <<< "$entry"
        if [[ -z "$name" || -z "$vtype" || -n "$rest" ]]; then
            die $LINENO "CINDER_EXT_STORE_BACKENDS: '$entry' is not name:volume_type[:True|False]"
        fi
        extend=${extend:-True}
        if [[ "$extend" != True && "$extend" != False ]]; then
            die $LINENO "CINDER_EXT_STORE_BACKENDS: '$entry': extend attached must be True or False"
        fi
        echo "$name $vtype $extend"
    done
}

function install_cinder_ext_store {
    setup_develop "$CINDER_EXT_STORE_DIR"
}

# The sudoers rule and the filters: glance-api's user may run rootwrap with
# Glance's rootwrap configuration, which allows the two privsep daemons.
function configure_cinder_ext_store_rootwrap {
    local conf filters_dir rule
    conf=$(_cinder_ext_store_rootwrap_conf)
    filters_dir=$GLANCE_CONF_DIR/rootwrap.d
    sudo install -d -m 0755 "$filters_dir"
    sudo install -m 0644 \
        "$CINDER_EXT_STORE_DIR/etc/glance/rootwrap.d/cinder_ext_store.filters" \
        "$filters_dir/cinder_ext_store.filters"
    if [[ ! -f "$conf" ]]; then
        printf '[DEFAULT]\nfilters_path = %s\nexec_dirs = %s,/sbin,/usr/sbin,/bin,/usr/bin\nuse_syslog = False\n' \
            "$filters_dir" "$GLANCE_BIN_DIR" | sudo tee "$conf" >/dev/null
    fi
    rule=$(sed -e "s|^Defaults:glance |Defaults:$CINDER_EXT_STORE_GLANCE_USER |" \
               -e "s|^glance ALL = (root) NOPASSWD: /usr/bin/glance-rootwrap /etc/glance/rootwrap.conf \*\$|$CINDER_EXT_STORE_GLANCE_USER ALL = (root) NOPASSWD: $GLANCE_BIN_DIR/glance-rootwrap $conf *|" \
               "$CINDER_EXT_STORE_DIR/etc/sudoers.d/glance-cinder-ext-store")
    if ! grep -q "^$CINDER_EXT_STORE_GLANCE_USER ALL = (root) NOPASSWD: $GLANCE_BIN_DIR/glance-rootwrap $conf \*\$" <<< "$rule"; then
        die $LINENO "etc/sudoers.d/glance-cinder-ext-store no longer has the rule this plugin adapts"
    fi
    # Checked before it is installed: a broken sudoers file locks sudo out.
    printf '%s\n' "$rule" | sudo tee "$CINDER_EXT_STORE_SUDOERS.new" >/dev/null
    sudo chmod 0440 "$CINDER_EXT_STORE_SUDOERS.new"
    sudo visudo -c -q -f "$CINDER_EXT_STORE_SUDOERS.new" \
        || die $LINENO "the sudoers rule does not check: $CINDER_EXT_STORE_SUDOERS.new"
    sudo mv "$CINDER_EXT_STORE_SUDOERS.new" "$CINDER_EXT_STORE_SUDOERS"
}

function configure_cinder_ext_store_glance {
    local conf=$GLANCE_API_CONF
    local enabled name vtype extend default helper
    local domain=${SERVICE_DOMAIN_NAME:-Default}
    enabled=$(iniget "$conf" DEFAULT enabled_backends)
    while read -r name vtype extend; do
        [[ -z "$name" ]] && continue
        default=${default:-$name}
        # Idempotent: a second post-config leaves one entry per backend.
        if [[ ",$enabled," != *",$name:cinder_ext,"* ]]; then
            enabled=${enabled:+$enabled,}$name:cinder_ext
        fi
        iniset "$conf" "$name" store_description "Cinder volumes of type $vtype (cinder_ext)"
        iniset "$conf" "$name" cinder_store_auth_address "$KEYSTONE_SERVICE_URI/v3"
        iniset "$conf" "$name" cinder_store_user_name glance
        iniset "$conf" "$name" cinder_store_password "$SERVICE_PASSWORD"
        iniset "$conf" "$name" cinder_store_project_name "$SERVICE_PROJECT_NAME"
        iniset "$conf" "$name" cinder_store_user_domain_name "$domain"
        iniset "$conf" "$name" cinder_store_project_domain_name "$domain"
        iniset "$conf" "$name" cinder_volume_type "$vtype"
        iniset "$conf" "$name" cinder_do_extend_attached "$extend"
        iniset "$conf" "$name" cinder_state_transition_timeout "$CINDER_EXT_STORE_STATE_TIMEOUT"
        iniset "$conf" "$name" rootwrap_config "$(_cinder_ext_store_rootwrap_conf)"
    done <<< "$CINDER_EXT_STORE_SPECS"
    iniset "$conf" DEFAULT enabled_backends "$enabled"
    case "$CINDER_EXT_STORE_DEFAULT" in
        keep) ;;
        "") iniset "$conf" glance_store default_backend "$default" ;;
        *) iniset "$conf" glance_store default_backend "$CINDER_EXT_STORE_DEFAULT" ;;
    esac

    # One lock path for every glance-api process of the host, owned by
    # glance-api's user; os-brick's locks there too.
    sudo install -d -m 0700 -o "$CINDER_EXT_STORE_GLANCE_USER" "$CINDER_EXT_STORE_LOCK_PATH"
    iniset "$conf" oslo_concurrency lock_path "$CINDER_EXT_STORE_LOCK_PATH"
    iniset "$conf" os_brick lock_path "$CINDER_EXT_STORE_LOCK_PATH"
    helper="sudo $GLANCE_BIN_DIR/glance-rootwrap $(_cinder_ext_store_rootwrap_conf) privsep-helper"
    iniset "$conf" privsep_osbrick helper_command "$helper"
    iniset "$conf" cinder_ext_store_privileged helper_command "$helper"
}

# Cinder clones image volumes (volume from image) and makes image volumes
# Glance's store registers (upload-to-image), in the internal tenant
# DevStack sets up; it reads locations as its own service user.
function configure_cinder_ext_store_cinder {
    local backends=$CINDER_EXT_STORE_CINDER_BACKENDS section entry
    local domain=${SERVICE_DOMAIN_NAME:-Default}
    if [[ -z "$backends" ]]; then
        for entry in ${CINDER_ENABLED_BACKENDS//,/ }; do
            backends=${backends:+$backends,}${entry##*:}
        done
    fi
    iniset "$CINDER_CONF" DEFAULT allowed_direct_url_schemes cinder
    for section in ${backends//,/ }; do
        iniset "$CINDER_CONF" "$section" image_upload_use_cinder_backend True
        iniset "$CINDER_CONF" "$section" image_upload_use_internal_tenant True
    done
    iniset "$CINDER_CONF" glance auth_type password
    iniset "$CINDER_CONF" glance auth_url "$KEYSTONE_SERVICE_URI/v3"
    iniset "$CINDER_CONF" glance username cinder
    iniset "$CINDER_CONF" glance password "$SERVICE_PASSWORD"
    iniset "$CINDER_CONF" glance project_name "$SERVICE_PROJECT_NAME"
    iniset "$CINDER_CONF" glance user_domain_name "$domain"
    iniset "$CINDER_CONF" glance project_domain_name "$domain"
}

# Once the cloud runs: every backend's volume type exists, and the store's
# own check passes as glance-api's user.
function verify_cinder_ext_store {
    local name vtype extend
    while read -r name vtype extend; do
        [[ -z "$name" ]] && continue
        openstack volume type show "$vtype" >/dev/null \
            || die $LINENO "backend $name: Cinder has no volume type $vtype"
    done <<< "$CINDER_EXT_STORE_SPECS"
    if [[ "$CINDER_EXT_STORE_CHECK" == True ]]; then
        sudo -u "$CINDER_EXT_STORE_GLANCE_USER" "$GLANCE_BIN_DIR/cinder-ext-store" \
            check --config-file "$GLANCE_API_CONF" --probe --write-test \
            || die $LINENO "cinder-ext-store check failed (its table above says why)"
    fi
}

function cleanup_cinder_ext_store {
    sudo rm -f "$CINDER_EXT_STORE_SUDOERS" "$GLANCE_CONF_DIR/rootwrap.d/cinder_ext_store.filters"
}

if is_service_enabled g-api; then
    if [[ "$1" == "stack" && ( "$2" == "post-config" || "$2" == "extra" ) ]]; then
        CINDER_EXT_STORE_SPECS=$(_cinder_ext_store_backends) \
            || die $LINENO "CINDER_EXT_STORE_BACKENDS is malformed (see above)"
    fi
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing cinder_ext_store"
        install_cinder_ext_store
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring cinder_ext_store backends: $CINDER_EXT_STORE_BACKENDS"
        configure_cinder_ext_store_rootwrap
        configure_cinder_ext_store_glance
        if is_service_enabled c-vol; then
            configure_cinder_ext_store_cinder
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        verify_cinder_ext_store
    fi
    if [[ "$1" == "clean" ]]; then
        cleanup_cinder_ext_store
    fi
fi

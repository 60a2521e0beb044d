#!/usr/bin/env bash
# A real Cinder on this machine, for development, tests and demos.
#
#   tools/localstack.sh up        install what is missing, start, wait, print:
#                                 Keystone, Cinder and glance-api with the
#                                 cinder_ext store as its default backend
#   tools/localstack.sh up --noauth   the light stack: Cinder alone, noauth
#   tools/localstack.sh down      stop what `up` started (by pid), detach loops
#   tools/localstack.sh status    what runs, where
#   tools/localstack.sh external  use an existing Cinder (DevStack...) instead:
#                                 reads OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
#                                 OS_PROJECT_NAME (+ domains) and
#                                 CINDER_EXT_VOLUME_TYPE; starts nothing
#   tools/localstack.sh clean     down, then delete the state directory
#
# Runs as root on Debian 12. Everything lives in $CINDER_EXT_STACK_DIR
# (default: <repo>/.localstack, ignored by git); `up` writes stack.env there
# for the tests and the demo (plus openrc for the `openstack` CLI). Cinder
# uses PostgreSQL and RabbitMQ of its own, and two backends of the TEST-ONLY
# loop-device driver
# (cinder_ext_store/tests/functional/stack/loop_driver.py): volume type
# "loop" supports online extend, "loop-offline" reports that it does not.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CINDER_EXT_STACK_DIR:-$REPO/.localstack}
PROJECT=c0ffee00c0ffee00c0ffee00c0ffee00
PG_PORT=${CINDER_EXT_PG_PORT:-55432}
RABBIT_PORT=${CINDER_EXT_RABBIT_PORT:-5682}
API_PORT=${CINDER_EXT_API_PORT:-18776}
KEYSTONE_PORT=${CINDER_EXT_KEYSTONE_PORT:-15000}
GLANCE_PORT=${CINDER_EXT_GLANCE_PORT:-19292}
CINDER_PIN=${CINDER_EXT_CINDER_PIN:-cinder==29.0.0}
KEYSTONE_PIN=${CINDER_EXT_KEYSTONE_PIN:-keystone==30.0.0}
GLANCE_PIN=${CINDER_EXT_GLANCE_PIN:-glance==33.0.0}
# Development secrets of a stack that listens on 127.0.0.1 only.
ADMIN_PASSWORD=admin-secret
SERVICE_PASSWORD=service-secret
DEMO_PASSWORD=demo-secret
AUTH_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
VENV=$STATE/venv
KS_VENV=$STATE/venv-keystone
GLANCE_VENV=$STATE/venv-glance
CONF=$STATE/cinder/cinder.conf
PIDS=$STATE/pids
ENVFILE=$STATE/stack.env
DRIVER_DIR=$REPO/cinder_ext_store/tests/functional/stack
NODE=cinderext@localhost

log() { echo "[localstack $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# A directory a service user can use: inside $STATE when that path is
# traversable for the user, else under /var/tmp (symlinked from $STATE).
svc_dir() {
    local name=$1 user=$2 dir=$STATE/$1
    if [ ! -e "$dir" ]; then
        if ! runuser -u "$user" -- test -x "$STATE"; then
            local alt=/var/tmp/cinder-ext-stack-$(echo "$STATE" | md5sum | cut -c1-8)/$name
            mkdir -p "$alt" && chmod 755 "$(dirname "$alt")"
            ln -s "$alt" "$dir"
        else
            mkdir -p "$dir"
        fi
    fi
    chown -R "$user": "$(readlink -f "$dir")"
    readlink -f "$dir"
}

alive() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

wait_for() {  # wait_for <seconds> <what> <command...>
    local limit=$1 what=$2 t=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        sleep 0.5
        t=$((t + 1))
        [ $t -lt $((limit * 2)) ] || die "timed out after ${limit}s waiting for $what"
    done
}

install() {
    local need=()
    command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
    [ -n "$(pgbin)" ] || need+=(postgresql)
    if [ ${#need[@]} -gt 0 ]; then
        log "installing Debian packages: ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    make_venv "$VENV" cinder-volume "$CINDER_PIN" python-cinderclient \
        psycopg2-binary
    if [ "$MODE" = keystone ]; then
        # uWSGI compiles from source (gcc and the Python headers).
        make_venv "$KS_VENV" uwsgi "$KEYSTONE_PIN" uwsgi
        make_venv "$GLANCE_VENV" uwsgi "$GLANCE_PIN" uwsgi python-glanceclient \
            python-openstackclient
        # The store under test, from this checkout.
        "$GLANCE_VENV/bin/pip" install -q -c "$REPO/tools/constraints.txt" \
            -e "$REPO" >> "$STATE/pip.log" 2>&1 || die "see $STATE/pip.log"
    fi
}

make_venv() {  # make_venv <dir> <a script it must have> <requirements...>
    local dir=$1 probe=$2
    shift 2
    [ -x "$dir/bin/$probe" ] && return 0
    log "installing $* into $dir (a minute or two)"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$@" >> "$STATE/pip.log" 2>&1 \
        || die "pip install failed, see $STATE/pip.log"
}

write_config() {
    mkdir -p "$STATE/cinder/log" "$STATE/cinder/lock" "$STATE/cinder/state" \
        "$STATE/cinder/coord" "$STATE/volumes" "$PIDS"
    local etc
    etc=$(ls -d "$VENV"/etc/cinder)
    cp "$etc/api-paste.ini" "$etc/resource_filters.json" "$STATE/cinder/"
    cat > "$CONF" <<EOF
[DEFAULT]
auth_strategy = $MODE
transport_url = rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/
host = localstack
my_ip = 127.0.0.1
state_path = $STATE/cinder/state
log_dir = $STATE/cinder/log
api_paste_config = $STATE/cinder/api-paste.ini
resource_query_filters_file = $STATE/cinder/resource_filters.json
rootwrap_config = $etc/rootwrap.conf
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $API_PORT
osapi_volume_workers = 1
enabled_backends = loop,loop-offline
default_volume_type = loop
quota_volumes = -1
quota_gigabytes = -1
quota_snapshots = -1
debug = True

[database]
connection = postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/cinder

[oslo_concurrency]
lock_path = $STATE/cinder/lock

[coordination]
backend_url = file://$STATE/cinder/coord

[loop]
volume_driver = loop_driver.LoopDriver
volume_backend_name = loop
loop_volume_dir = $STATE/volumes
loop_online_extend_support = True

[loop-offline]
volume_driver = loop_driver.LoopDriver
volume_backend_name = loop-offline
loop_volume_dir = $STATE/volumes
loop_online_extend_support = False

$(authtoken cinder)
EOF
}

authtoken() {  # the [keystone_authtoken] section of service $1
    [ "$MODE" = keystone ] || return 0
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $AUTH_URL
auth_url = $AUTH_URL
auth_type = password
username = $1
password = $SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
EOF
}

postgres_up() {
    local bin data
    bin=$(pgbin)
    data=$(svc_dir pg postgres)
    if [ ! -f "$data/PG_VERSION" ]; then
        runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
    fi
    if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
            -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    head -n 1 "$data/postmaster.pid" > "$PIDS/postgres"
    local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtA)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='cinder'")" != 1 ]; then
        "${psql[@]}" -c "CREATE DATABASE cinder" >/dev/null
    fi
}

rabbit_env() {
    local dir=$1
    echo HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=$NODE \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBIT_PORT \
        RABBITMQ_DIST_PORT=$((RABBIT_PORT + 20000)) \
        RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
        RABBITMQ_PID_FILE=$dir/rabbit.pid \
        RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
        RABBITMQ_CONFIG_FILE=$dir/rabbitmq
}

rabbitmqctl_() {
    local dir
    dir=$(readlink -f "$STATE/rabbit")
    # shellcheck disable=SC2046
    runuser -u rabbitmq -- env $(rabbit_env "$dir") rabbitmqctl -n $NODE "$@"
}

rabbit_up() {
    local dir
    dir=$(svc_dir rabbit rabbitmq)
    [ -f "$dir/enabled_plugins" ] || echo '[].' > "$dir/enabled_plugins"
    [ -f "$dir/rabbitmq.conf" ] || echo 'loopback_users = none' > "$dir/rabbitmq.conf"
    chown rabbitmq: "$dir/enabled_plugins" "$dir/rabbitmq.conf"
    # epmd is shared by every Erlang node; stop it later only if this
    # stack starts it (any rabbitmqctl call would, so look first).
    if [ -z "$(epmd_pid)" ]; then touch "$PIDS/epmd.ours"; fi
    if ! rabbitmqctl_ status >/dev/null 2>&1; then
        # shellcheck disable=SC2046
        runuser -u rabbitmq -- env $(rabbit_env "$dir") rabbitmq-server -detached
    fi
    wait_for 60 RabbitMQ rabbitmqctl_ await_startup
    cp "$dir/rabbit.pid" "$PIDS/rabbitmq"
    if [ -f "$PIDS/epmd.ours" ]; then epmd_pid > "$PIDS/epmd"; fi
}

# epmd daemonizes itself: find it by its listening port.
epmd_pid() { ss -Hltnp 'sport = :4369' | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; }

queue_exists() { rabbitmqctl_ list_queues -q name | grep -q "^$1"; }

start_service() {
    local name=$1
    if alive "$name"; then return; fi
    PYTHONPATH=$DRIVER_DIR setsid "$VENV/bin/$name" --config-file "$CONF" \
        > "$STATE/cinder/log/$name.out" 2>&1 < /dev/null &
    echo $! > "$PIDS/$name"
}

ctl() {
    CINDER_EXT_CINDER_URL=http://127.0.0.1:$API_PORT/v3/$PROJECT \
        CINDER_EXT_AUTH_URL=$([ "$MODE" = keystone ] && echo "$AUTH_URL") \
        CINDER_EXT_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        "$VENV/bin/python" "$REPO/tools/localstack_ctl.py" "$@"
}

cinder_up() {
    "$VENV/bin/cinder-manage" --config-file "$CONF" db sync >/dev/null 2>&1 \
        || die "cinder-manage db sync failed"
    # Order matters: started together, the scheduler may not see the pools
    # for minutes and early API calls hang.
    start_service cinder-volume
    wait_for 90 "cinder-volume's queue" queue_exists cinder-volume
    start_service cinder-scheduler
    wait_for 60 "cinder-scheduler's queue" queue_exists cinder-scheduler
    start_service cinder-api
    wait_for 60 cinder-api ctl ping
    wait_for 120 "both pools in the scheduler" ctl pools localstack@loop#loop localstack@loop-offline#loop-offline
    ctl types loop loop-offline
}

uwsgi_service() {  # uwsgi_service <name> <venv> <port> <module> [options...]
    local name=$1 venv=$2 port=$3 module=$4
    shift 4
    if alive "$name"; then return; fi
    setsid "$venv/bin/uwsgi" --master --die-on-term --enable-threads \
        --processes 1 --threads 4 --http-socket "127.0.0.1:$port" \
        --module "$module" --buffer-size 65535 --lazy-apps "$@" \
        > "$STATE/log/$name.log" 2>&1 < /dev/null &
    echo $! > "$PIDS/$name"
}

http_ok() {
    "$VENV/bin/python" -c \
        "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=5)" "$1"
}

keystone_up() {
    local dir=$STATE/keystone
    local ks=("$KS_VENV/bin/keystone-manage" --config-file "$dir/keystone.conf")
    mkdir -p "$dir"
    cat > "$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $STATE/log/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
EOF
    if [ ! -f "$dir/keystone.db" ]; then
        {
            "${ks[@]}" db_sync
            "${ks[@]}" fernet_setup --keystone-user root --keystone-group root
            "${ks[@]}" credential_setup --keystone-user root --keystone-group root
            "${ks[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
                --bootstrap-admin-url "$AUTH_URL" \
                --bootstrap-public-url "$AUTH_URL" \
                --bootstrap-internal-url "$AUTH_URL" \
                --bootstrap-region-id RegionOne
        } >> "$STATE/log/keystone-manage.log" 2>&1 \
            || die "keystone-manage failed, see $STATE/log/keystone-manage.log"
    fi
    # Connection: close, or clients reuse connections uWSGI has closed.
    uwsgi_service keystone "$KS_VENV" "$KEYSTONE_PORT" \
        keystone.wsgi.api:application --env "OS_KEYSTONE_CONFIG_DIR=$dir" \
        --add-header "Connection: close"
    wait_for 60 Keystone http_ok "$AUTH_URL"
    CINDER_EXT_SERVICE_PASSWORD=$SERVICE_PASSWORD \
        CINDER_EXT_DEMO_PASSWORD=$DEMO_PASSWORD \
        CINDER_EXT_CINDER_CATALOG="http://127.0.0.1:$API_PORT/v3/\$(project_id)s" \
        CINDER_EXT_GLANCE_URL="http://127.0.0.1:$GLANCE_PORT" \
        ctl identity || die "Keystone identity setup failed"
}

glance_backend() {  # glance_backend <backend> <volume type> <extend attached>
    cat <<EOF
[$1]
store_description = Cinder volumes of type $2 (cinder_ext)
cinder_store_auth_address = $AUTH_URL
cinder_store_user_name = glance
cinder_store_password = $SERVICE_PASSWORD
cinder_store_project_name = service
cinder_store_user_domain_name = Default
cinder_store_project_domain_name = Default
cinder_volume_type = $2
cinder_do_extend_attached = $3
cinder_state_transition_timeout = 120
EOF
}

glance_up() {
    local dir=$STATE/glance
    mkdir -p "$dir/etc" "$dir/staging" "$dir/tasks" "$dir/lock"
    cp "$GLANCE_VENV/etc/glance/glance-api-paste.ini" "$dir/etc/"
    cat > "$dir/etc/glance-api.conf" <<EOF
[DEFAULT]
enabled_backends = images:cinder_ext,offline:cinder_ext,intree:cinder
log_file = $STATE/log/glance-api.log
debug = True
[database]
connection = sqlite:///$dir/glance.db
[glance_store]
default_backend = images
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
$(glance_backend images loop True)
$(glance_backend offline loop-offline False)
$(glance_backend intree loop True | sed 's/(cinder_ext)/(in-tree cinder driver, for comparison)/')
$(authtoken glance)
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = $dir/lock
[os_brick]
lock_path = $dir/lock
# Root service without sudo: start privsep directly (the in-tree driver
# would otherwise prefix sudo).
[privsep_osbrick]
helper_command = $GLANCE_VENV/bin/privsep-helper
EOF
    "$GLANCE_VENV/bin/glance-manage" --config-dir "$dir/etc" db_sync \
        >> "$STATE/log/glance-manage.log" 2>&1 \
        || die "glance-manage db_sync failed, see $STATE/log/glance-manage.log"
    # Chunked uploads: uWSGI must accept chunked bodies above 1 MiB.
    uwsgi_service glance-api "$GLANCE_VENV" "$GLANCE_PORT" \
        glance.wsgi.api:application --env "OS_GLANCE_CONFIG_DIR=$dir/etc" \
        --http-auto-chunked --http-chunked-input --http-raw-body \
        --chunked-input-limit 16777216 --add-header "Connection: close"
    wait_for 60 glance-api http_ok "http://127.0.0.1:$GLANCE_PORT/versions"
}

write_env() {
    cat > "$ENVFILE" <<EOF
CINDER_EXT_STACK=local
CINDER_EXT_CINDER_URL=http://127.0.0.1:$API_PORT/v3/$PROJECT
CINDER_EXT_ENDPOINT_TEMPLATE=http://127.0.0.1:$API_PORT/v3/%(project_id)s
CINDER_EXT_PROJECT_ID=$PROJECT
CINDER_EXT_VOLUME_TYPE=loop
CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND=loop-offline
CINDER_EXT_VOLUME_DIR=$STATE/volumes
CINDER_EXT_LOG_DIR=$STATE/cinder/log
CINDER_EXT_AUTH=$MODE
EOF
    [ "$MODE" = keystone ] || return 0
    cat >> "$ENVFILE" <<EOF
CINDER_EXT_AUTH_URL=$AUTH_URL
CINDER_EXT_USERNAME=glance
CINDER_EXT_PASSWORD=$SERVICE_PASSWORD
CINDER_EXT_PROJECT_NAME=service
CINDER_EXT_USER_DOMAIN_NAME=Default
CINDER_EXT_PROJECT_DOMAIN_NAME=Default
CINDER_EXT_ADMIN_PASSWORD=$ADMIN_PASSWORD
CINDER_EXT_DEMO_PASSWORD=$DEMO_PASSWORD
CINDER_EXT_GLANCE_URL=http://127.0.0.1:$GLANCE_PORT
CINDER_EXT_GLANCE_LOG=$STATE/log/glance-api.log
EOF
    cat > "$STATE/openrc" <<EOF
export OS_AUTH_URL=$AUTH_URL OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
export OS_USERNAME=demo OS_PASSWORD=$DEMO_PASSWORD OS_PROJECT_NAME=demo
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
export OS_IMAGE_API_VERSION=2
EOF
}

up() {
    [ "$(id -u)" = 0 ] || die "run as root (loop devices, service users)"
    local t0=$SECONDS
    mkdir -p "$STATE" "$PIDS" "$STATE/log"
    if alive cinder-api && [ "$(cat "$STATE/mode" 2>/dev/null)" != "$MODE" ]; then
        die "the stack runs in $(cat "$STATE/mode") mode: run down first"
    fi
    echo "$MODE" > "$STATE/mode"
    install
    write_config
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    postgres_up
    log "starting RabbitMQ on 127.0.0.1:$RABBIT_PORT"
    rabbit_up
    if [ "$MODE" = keystone ]; then
        log "starting Keystone on $AUTH_URL"
        keystone_up
    fi
    log "starting cinder-volume, cinder-scheduler, cinder-api ($MODE)"
    cinder_up
    if [ "$MODE" = keystone ]; then
        log "starting glance-api on 127.0.0.1:$GLANCE_PORT"
        glance_up
    fi
    write_env
    log "ready in $((SECONDS - t0))s"
    status
}

stop_pid() {  # stop_pid <name>: TERM, wait, KILL
    local name=$1 pid i
    [ -f "$PIDS/$name" ] || return 0
    pid=$(cat "$PIDS/$name")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name"
}

down() {
    local name f dev
    for name in glance-api cinder-api cinder-scheduler cinder-volume keystone; do
        stop_pid "$name"
    done
    if [ -f "$PIDS/rabbitmq" ]; then
        rabbitmqctl_ stop >/dev/null 2>&1 || true
        stop_pid rabbitmq
    fi
    if [ -f "$PIDS/epmd.ours" ]; then stop_pid epmd; rm -f "$PIDS/epmd.ours"; fi
    if [ -f "$PIDS/postgres" ]; then
        runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$(readlink -f "$STATE/pg")" \
            -m fast -w stop >/dev/null 2>&1 || true
        stop_pid postgres
    fi
    # Only loop devices backing our own volume files.
    for f in "$STATE"/volumes/volume-*; do
        [ -e "$f" ] || continue
        for dev in $(losetup -j "$f" | cut -d: -f1); do losetup -d "$dev"; done
    done
    rm -f "$ENVFILE" "$STATE/openrc"
    log "stopped"
}

status() {
    local name
    for name in postgres rabbitmq keystone cinder-volume cinder-scheduler \
            cinder-api glance-api; do
        if alive "$name"; then
            printf '  %-17s running, pid %s\n' "$name" "$(cat "$PIDS/$name")"
        else
            printf '  %-17s stopped\n' "$name"
        fi
    done
    if [ -f "$ENVFILE" ]; then
        if [ "$MODE" = keystone ]; then
            echo "  keystone:  $AUTH_URL (users admin, demo; see $ENVFILE)"
            echo "  glance:    http://127.0.0.1:$GLANCE_PORT (backends 'images'" \
                 "(default) and 'offline': cinder_ext; 'intree': glance_store's" \
                 "cinder driver, for comparison)"
            echo "  cinder:    http://127.0.0.1:$API_PORT/v3/<project> (keystone)"
            echo "  use it:    source $STATE/openrc; openstack image list"
        else
            echo "  endpoint:  http://127.0.0.1:$API_PORT/v3/$PROJECT (noauth,"\
                 "token <user>:$PROJECT)"
        fi
        echo "  types:     loop (online extend), loop-offline (no online extend)"
        echo "  logs:      $STATE/cinder/log"
        echo "  env file:  $ENVFILE"
    fi
}

external() {
    : "${OS_AUTH_URL:?set OS_AUTH_URL (source an openrc)}"
    mkdir -p "$STATE"
    cat > "$ENVFILE" <<EOF
CINDER_EXT_STACK=external
CINDER_EXT_AUTH_URL=$OS_AUTH_URL
CINDER_EXT_USERNAME=${OS_USERNAME:?}
CINDER_EXT_PASSWORD=${OS_PASSWORD:?}
CINDER_EXT_PROJECT_NAME=${OS_PROJECT_NAME:?}
CINDER_EXT_USER_DOMAIN_NAME=${OS_USER_DOMAIN_NAME:-Default}
CINDER_EXT_PROJECT_DOMAIN_NAME=${OS_PROJECT_DOMAIN_NAME:-Default}
CINDER_EXT_VOLUME_TYPE=${CINDER_EXT_VOLUME_TYPE:-}
CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND=${CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND:-}
EOF
    log "using the Cinder of $OS_AUTH_URL; wrote $ENVFILE"
}

MODE=keystone
if [ "${1:-}" = up ]; then
    [ "${2:-}" = --noauth ] && MODE=noauth
elif [ -f "$STATE/mode" ]; then
    MODE=$(cat "$STATE/mode")
fi

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    external) external ;;
    clean)
        down
        for d in pg rabbit; do  # service dirs that svc_dir placed elsewhere
            if [ -L "$STATE/$d" ]; then rm -rf "$(readlink -f "$STATE/$d")"; fi
        done
        rm -rf "$STATE"
        log "removed $STATE" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac

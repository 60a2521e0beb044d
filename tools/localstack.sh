#!/usr/bin/env bash
# A real Cinder on this machine, for development, tests and demos.
#
#   tools/localstack.sh up        install what is missing, start, wait, print
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
# for the tests and the demo. Cinder runs in noauth mode with PostgreSQL and
# RabbitMQ of its own, and two backends of the TEST-ONLY loop-device driver
# (cinder_ext_store/tests/functional/stack/loop_driver.py): volume type
# "loop" supports online extend, "loop-offline" reports that it does not.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CINDER_EXT_STACK_DIR:-$REPO/.localstack}
PROJECT=c0ffee00c0ffee00c0ffee00c0ffee00
PG_PORT=${CINDER_EXT_PG_PORT:-55432}
RABBIT_PORT=${CINDER_EXT_RABBIT_PORT:-5682}
API_PORT=${CINDER_EXT_API_PORT:-18776}
CINDER_PIN=${CINDER_EXT_CINDER_PIN:-cinder==29.0.0}
VENV=$STATE/venv
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
    if [ ! -x "$VENV/bin/cinder-volume" ]; then
        log "installing $CINDER_PIN into $VENV (takes ~1.5 min)"
        python3 -m venv "$VENV"
        mkdir -p "$STATE/cinder/log"
        "$VENV/bin/pip" install -q "$CINDER_PIN" python-cinderclient \
            psycopg2-binary > "$STATE/cinder/log/pip.log" 2>&1 \
            || die "pip install failed, see $STATE/cinder/log/pip.log"
    fi
}

write_config() {
    mkdir -p "$STATE/cinder/log" "$STATE/cinder/lock" "$STATE/cinder/state" \
        "$STATE/cinder/coord" "$STATE/volumes" "$PIDS"
    local etc
    etc=$(ls -d "$VENV"/etc/cinder)
    cp "$etc/api-paste.ini" "$etc/resource_filters.json" "$STATE/cinder/"
    cat > "$CONF" <<EOF
[DEFAULT]
auth_strategy = noauth
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

ctl() { "$VENV/bin/python" "$REPO/tools/localstack_ctl.py" "$@"; }

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
    export CINDER_EXT_CINDER_URL=http://127.0.0.1:$API_PORT/v3/$PROJECT
    wait_for 60 cinder-api ctl ping
    wait_for 120 "both pools in the scheduler" ctl pools localstack@loop#loop localstack@loop-offline#loop-offline
    ctl types loop loop-offline
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
EOF
}

up() {
    [ "$(id -u)" = 0 ] || die "run as root (loop devices, service users)"
    local t0=$SECONDS
    mkdir -p "$STATE" "$PIDS"
    install
    write_config
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    postgres_up
    log "starting RabbitMQ on 127.0.0.1:$RABBIT_PORT"
    rabbit_up
    log "starting cinder-volume, cinder-scheduler, cinder-api"
    cinder_up
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
    for name in cinder-api cinder-scheduler cinder-volume; do stop_pid "$name"; done
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
    rm -f "$ENVFILE"
    log "stopped"
}

status() {
    local name
    for name in postgres rabbitmq cinder-volume cinder-scheduler cinder-api; do
        if alive "$name"; then
            printf '  %-17s running, pid %s\n' "$name" "$(cat "$PIDS/$name")"
        else
            printf '  %-17s stopped\n' "$name"
        fi
    done
    if [ -f "$ENVFILE" ]; then
        echo "  endpoint:  http://127.0.0.1:$API_PORT/v3/$PROJECT (noauth,"\
             "token <user>:$PROJECT)"
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
    *) sed -n '2,17p' "$0"; exit 2 ;;
esac

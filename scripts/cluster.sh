#!/usr/bin/env bash
# PayLedger scaled out on one machine, with the real parts: the machine's
# PostgreSQL as primary, a streaming read replica beside it (Debian's
# pg_createcluster, seeded by pg_basebackup -R), PgBouncer in transaction
# pooling mode in front of the primary, and two gunicorn app servers through
# PgBouncer sharing Redis for the throttles.
#
#   scripts/cluster.sh up       start what is not running (idempotent); print the URLs
#   scripts/cluster.sh down     stop the app servers, PgBouncer and the replica
#   scripts/cluster.sh status   one line per component
#
# Run as root (it switches to the postgres user for PostgreSQL and PgBouncer).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION=${PG_VERSION:-$(ls /etc/postgresql | sort -V | tail -n 1)}
PRIMARY_CLUSTER=${PRIMARY_CLUSTER:-main}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_CLUSTER=${REPLICA_CLUSTER:-payledger_replica}
REPLICA_PORT=${REPLICA_PORT:-5433}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
PGBOUNCER_POOL_SIZE=${PGBOUNCER_POOL_SIZE:-10}
APP_PORTS=${APP_PORTS:-"8101 8102"}
APP_WORKERS=${APP_WORKERS:-2}
CLUSTER_DB=${CLUSTER_DB:-payledger_cluster}
CLUSTER_REDIS_URL=${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379/4}
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/payledger-cluster}
PYTHON=${PYTHON:-.venv/bin/python}
# The key of the webhook secrets, the same for migrations and every app server;
# this one is for the local cluster only: set your own (README, "Configuration").
export PAYLEDGER_WEBHOOK_SECRET_KEYS=${PAYLEDGER_WEBHOOK_SECRET_KEYS:-cGF5bGVkZ2VyLWNsdXN0ZXItZGVtby1rZXktb25seSE=}
# The request timeouts PgBouncer sets on each server connection it opens.
LOCK_TIMEOUT_MS=${PAYLEDGER_LOCK_TIMEOUT_MS:-5000}
STATEMENT_TIMEOUT_MS=${PAYLEDGER_STATEMENT_TIMEOUT_MS:-15000}

as_postgres() { runuser -u postgres -- "$@"; }
psql_primary() { psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -X -qtA "$@"; }
status() { printf '%-22s %s\n' "$1" "$2"; }

primary_url() { echo "postgres://postgres@127.0.0.1:$PRIMARY_PORT/$CLUSTER_DB"; }
pooler_url() { echo "postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/$CLUSTER_DB"; }
replica_url() { echo "postgres://postgres@127.0.0.1:$REPLICA_PORT/$CLUSTER_DB"; }

install_missing() {
  local missing=""
  command -v pgbouncer >/dev/null || missing="$missing pgbouncer"
  command -v pg_basebackup >/dev/null || missing="$missing postgresql-$PG_VERSION"
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
}

primary_up() {
  pg_isready -q -h 127.0.0.1 -p "$PRIMARY_PORT" ||
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PRIMARY_CLUSTER" start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PRIMARY_PORT" && break; sleep 1; done
  # The replica streams over a loopback replication connection.
  local hba
  hba=$(psql_primary -c "SHOW hba_file")
  if ! grep -qE '^host\s+replication\s+all\s+127\.0\.0\.1/32' "$hba"; then
    echo "host replication all 127.0.0.1/32 trust" >>"$hba"
    psql_primary -c "SELECT pg_reload_conf()" >/dev/null
  fi
  psql_primary -c "SELECT 1 FROM pg_database WHERE datname = '$CLUSTER_DB'" | grep -q 1 ||
    createdb -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres "$CLUSTER_DB"
  # Migrations run against the primary directly, never through the pooler.
  DEBUG=false SECRET_KEY=cluster-migrate DATABASE_URL="$(primary_url)" \
    "$PYTHON" manage.py migrate --noinput -v 0
  status primary "up: $(primary_url)"
}

replica_up() {
  local data="/var/lib/postgresql/$PG_VERSION/$REPLICA_CLUSTER"
  if [ ! -f "$data/standby.signal" ]; then
    pg_lsclusters -h | awk '{print $2}' | grep -qx "$REPLICA_CLUSTER" &&
      pg_dropcluster --stop "$PG_VERSION" "$REPLICA_CLUSTER"
    pg_createcluster "$PG_VERSION" "$REPLICA_CLUSTER" -p "$REPLICA_PORT" >/dev/null
    # Whoever may connect to the primary may read its copy, no one else.
    cp "$(psql_primary -c "SHOW hba_file")" "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER/pg_hba.conf"
    as_postgres find "$data" -mindepth 1 -delete
    replication_slot_drop
    # A replication slot keeps the primary's WAL until the replica has it, so a
    # busy primary cannot recycle a segment the copy still needs. The copy starts
    # at a checkpoint taken at once: the default spreads it over minutes.
    as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$data" \
      -R -X stream -C -S "$REPLICA_CLUSTER" --checkpoint=fast
  fi
  pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" ||
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA_CLUSTER" start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" && break; sleep 1; done
  status replica "up: $(replica_url) (streaming from :$PRIMARY_PORT)"
}

replication_slot_drop() {
  psql_primary -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                   WHERE slot_name = '$REPLICA_CLUSTER' AND NOT active" >/dev/null
}

pgbouncer_up() {
  mkdir -p "$CLUSTER_DIR"
  chown postgres: "$CLUSTER_DIR"
  cat >"$CLUSTER_DIR/pgbouncer.ini" <<INI
[databases]
$CLUSTER_DB = host=127.0.0.1 port=$PRIMARY_PORT dbname=$CLUSTER_DB connect_query='SET lock_timeout = $LOCK_TIMEOUT_MS; SET statement_timeout = $STATEMENT_TIMEOUT_MS'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $CLUSTER_DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $PGBOUNCER_POOL_SIZE
max_client_conn = 1000
server_reset_query =
; After the primary restarts, reconnect within a second rather than PgBouncer's 15 s.
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = $CLUSTER_DIR/pgbouncer.log
pidfile = $CLUSTER_DIR/pgbouncer.pid
INI
  echo '"postgres" ""' >"$CLUSTER_DIR/userlist.txt"
  chown postgres: "$CLUSTER_DIR/pgbouncer.ini" "$CLUSTER_DIR/userlist.txt"
  if ! pgbouncer_running; then
    as_postgres pgbouncer -d "$CLUSTER_DIR/pgbouncer.ini"
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -d "$CLUSTER_DB" && break; sleep 0.2; done
  fi
  status pgbouncer "up: $(pooler_url) (transaction pooling, $PGBOUNCER_POOL_SIZE server connections)"
}

pgbouncer_running() {
  [ -f "$CLUSTER_DIR/pgbouncer.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/pgbouncer.pid")" 2>/dev/null
}

app_running() {
  [ -f "$CLUSTER_DIR/app-$1.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/app-$1.pid")" 2>/dev/null
}

app_up() {
  local port=$1
  if ! app_running "$port"; then
    # In the background with stdout in its log, not --daemon: gunicorn's daemon
    # mode sends stdout, where the application writes its JSON lines, to /dev/null.
    env DEBUG=false SECRET_KEY="${SECRET_KEY:-cluster-$(head -c 24 /dev/urandom | base64)}" \
      ALLOWED_HOSTS=127.0.0.1,localhost SECURE_SSL_REDIRECT=false SECURE_COOKIES=false \
      DATABASE_URL="$(pooler_url)" DATABASE_POOLER=pgbouncer \
      DATABASE_REPLICA_URL="$(replica_url)" REDIS_URL="$CLUSTER_REDIS_URL" \
      HOST=127.0.0.1 PORT="$port" WEB_CONCURRENCY="$APP_WORKERS" \
      PAYLEDGER_CHARGE_RATE="${PAYLEDGER_CHARGE_RATE:-600/minute}" \
      setsid "$PYTHON" -m gunicorn --config gunicorn.conf.py --pid "$CLUSTER_DIR/app-$port.pid" \
      >>"$CLUSTER_DIR/app-$port.log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
      curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
      sleep 0.5
    done
  fi
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null
  status "app :$port" "up: http://127.0.0.1:$port/ (gunicorn, $APP_WORKERS workers)"
}

stop_pidfile() {
  local pidfile=$1
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
}

case "${1:-up}" in
up)
  install_missing
  primary_up
  replica_up
  pgbouncer_up
  for port in $APP_PORTS; do app_up "$port"; done
  echo "base URLs: $(for port in $APP_PORTS; do printf 'http://127.0.0.1:%s ' "$port"; done)"
  ;;
down)
  for port in $APP_PORTS; do stop_pidfile "$CLUSTER_DIR/app-$port.pid"; status "app :$port" down; done
  stop_pidfile "$CLUSTER_DIR/pgbouncer.pid"
  status pgbouncer down
  # Dropped, not just stopped: its replication slot would hold the primary's WAL.
  if pg_lsclusters -h | awk '{print $2}' | grep -qx "$REPLICA_CLUSTER"; then
    pg_dropcluster --stop "$PG_VERSION" "$REPLICA_CLUSTER"
  fi
  replication_slot_drop
  status replica "down (removed, with its replication slot)"
  status primary "left running (the machine's cluster)"
  ;;
status)
  pg_isready -q -h 127.0.0.1 -p "$PRIMARY_PORT" && status primary up || status primary down
  pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" && status replica up || status replica down
  pgbouncer_running && status pgbouncer up || status pgbouncer down
  for port in $APP_PORTS; do app_running "$port" && status "app :$port" up || status "app :$port" down; done
  ;;
*)
  echo "usage: $0 up|down|status" >&2
  exit 2
  ;;
esac

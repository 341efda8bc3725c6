#!/usr/bin/env bash
# A Dagster cluster on this machine: Redis (the Celery broker), PostgreSQL (the Dagster instance),
# N Celery workers, one code server, dagster-webserver and dagster-daemon. Each process starts in its own session;
# `stop` ends each one by the process id recorded at start (its process group), nothing else.
#
#   deploy/cluster.sh install              Debian's redis-server and postgresql, if missing
#   deploy/cluster.sh start [--workers N]  start everything, then print how to use it
#   deploy/cluster.sh status               which recorded processes are alive
#   deploy/cluster.sh stop                 stop them (webserver, daemon, code server, workers, Redis,
#                                          Postgres)
#
# Settings (environment):
#   ENVFACTORY_HOME            the data home every worker shares, e.g. s3://bucket/prefix
#                              (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...)
#   ENVFACTORY_CLUSTER_DIR     state: database files, logs, pids, env file (~/.envfactory/cluster)
#   ENVFACTORY_WORKERS         Celery workers, one task at a time each (2)
#   ENVFACTORY_REDIS_PORT / ENVFACTORY_PG_PORT / ENVFACTORY_WEBSERVER_PORT   (6379 / 5432 / 3000)
#   ENVFACTORY_CODE_SERVER_PORT  the code server's gRPC port (4000)
#   ENVFACTORY_LLM_POOL_LIMIT  steps that may call the LLM at once, across all workers (4)
#   ENVFACTORY_LOCATION_TIMEOUT  seconds `start` waits for the code location to load (300)
#   PYTHON                     the environment's python (the repo's .venv/bin/python)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${ENVFACTORY_CLUSTER_DIR:-$HOME/.envfactory/cluster}"
WORKERS="${ENVFACTORY_WORKERS:-2}"
REDIS_PORT="${ENVFACTORY_REDIS_PORT:-6379}"
PG_PORT="${ENVFACTORY_PG_PORT:-5432}"
WEB_PORT="${ENVFACTORY_WEBSERVER_PORT:-3000}"
CODE_PORT="${ENVFACTORY_CODE_SERVER_PORT:-4000}"
LLM_POOL_LIMIT="${ENVFACTORY_LLM_POOL_LIMIT:-4}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
BIN="$(dirname "$PYTHON")"
export PATH="$BIN:$PATH"  # dagster-celery starts `celery` by name
PG_USER=envfactory
PG_DB=dagster
# Stopped in this order: nothing new is launched while the workers finish, the databases go last.
# The code server goes with its runs' orchestrators (its children, in its process group).
SERVICES_STOP_ORDER="webserver daemon code-server worker-* redis postgres"

# The command prefix that runs a PostgreSQL program as its user (setpriv execs: the pid is kept).
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups); fi

say() { echo "cluster: $*"; }
die() { echo "cluster: error: $*" >&2; exit 1; }

pg_bin_dir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

install_services() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  pg_bin_dir >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -eq 0 ]; then
    say "redis-server and postgresql are installed"
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "installing ${missing[*]} needs root: apt-get install ${missing[*]}"
    sudo=sudo
  fi
  say "installing Debian's ${missing[*]}"
  # Debian starts a service when its package is installed; this cluster runs its own processes, so
  # refuse service starts during the install (the usual policy-rc.d switch), then remove it.
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    own_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then $sudo rm -f "$policy"; fi
  say "installed ${missing[*]}"
}

alive() { [ -f "$STATE/run/$1.pid" ] && kill -0 "$(cat "$STATE/run/$1.pid")" 2>/dev/null; }

# Start a command in a new session (its pid is its process group id) and record the pid.
launch() {
  local name="$1"
  shift
  alive "$name" && die "$name is already running (pid $(cat "$STATE/run/$name.pid")); run stop first"
  # A script's background command starts with SIGINT and SIGQUIT ignored (no job control), and
  # Dagster gives SIGTERM SIGINT's handler: the code server and its runs' orchestrators would ignore
  # `stop`'s SIGTERM until the SIGKILL 30 s later. env restores the default, as in a terminal.
  setsid env --default-signal=INT,QUIT "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/run/$name.pid"
}

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds; fails at once if NAME's process ended.
wait_for() {
  local name="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited: $STATE/logs/$name.log"
    [ $SECONDS -lt $deadline ] || die "$name did not come up in ${seconds}s: $STATE/logs/$name.log"
    sleep 0.5
  done
}

http_ok() { "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1"; }

# The webserver answers before its code server has imported the definitions, and a run submitted
# in between is refused (PipelineNotFoundError): wait until GraphQL reports the location LOADED.
# Exit status of the probe: 0 loaded, 1 not yet (or no answer), 3 the location failed to load.
LOCATION_PROBE='
import sys
from envfactory_dagster.webserver_client import CodeLocationError, WebserverError, code_location
try:
    print(code_location(sys.argv[1]))
except CodeLocationError as error:
    print(error, file=sys.stderr)
    sys.exit(3)
except WebserverError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
'

wait_for_location() {
  local url="$1" seconds="$2" code
  local deadline=$((SECONDS + seconds)) last="$STATE/logs/location-probe.log"
  while :; do
    code=0
    "$PYTHON" -c "$LOCATION_PROBE" "$url" >"$last" 2>&1 || code=$?
    [ $code -eq 0 ] && return 0
    [ $code -eq 3 ] && die "the code location failed to load: $(cat "$last") (webserver log: $STATE/logs/webserver.log)"
    alive webserver || die "webserver exited: $STATE/logs/webserver.log"
    [ $SECONDS -lt $deadline ] ||
      die "the code location was not loaded after ${seconds}s: $(tail -1 "$last") (webserver log: $STATE/logs/webserver.log)"
    sleep 1
  done
}

# PostgreSQL refuses to run as root: as root it runs as the postgres user, with its files in the
# state directory if that user can reach it, else in its own home.
pg_data_dir() {
  if [ "$(id -u)" -eq 0 ] && ! "${AS_PG[@]}" test -x "$STATE"; then
    echo "/var/lib/postgresql/envfactory-$(echo -n "$STATE" | sha1sum | cut -c1-12)"
  else
    echo "$STATE/postgres"
  fi
}


start_postgres() {
  local bin data
  bin="$(pg_bin_dir)" || die "postgresql is not installed: run deploy/cluster.sh install"
  data="$(pg_data_dir)"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    local pwfile="$data.pw"
    (umask 077 && printf '%s\n' "$DAGSTER_PG_PASSWORD" >"$pwfile")
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$data" "$pwfile"; fi
    "${AS_PG[@]}" "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth-local=scram-sha-256 \
      --auth-host=scram-sha-256 >"$STATE/logs/initdb.log" 2>&1 || die "initdb failed: $STATE/logs/initdb.log"
    rm -f "$pwfile"
  fi
  launch postgres "${AS_PG[@]}" "$bin/postgres" -D "$data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 -k "$data"
  wait_for "postgres" 60 "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  export PGPASSWORD="$DAGSTER_PG_PASSWORD"
  if [ -z "$("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  fi
  unset PGPASSWORD
}

write_env() {
  local secret="$STATE/pg_password"
  if [ ! -f "$secret" ]; then
    (umask 077 && "$PYTHON" -c "import secrets; print(secrets.token_hex(16))" >"$secret")
  fi
  (
    umask 077
    cat >"$STATE/env" <<EOF
# Source this file to use the cluster from a shell: envfactory submit, dagster CLI, workers elsewhere.
export DAGSTER_HOME='$STATE/dagster'
export DAGSTER_PG_USERNAME='$PG_USER'
export DAGSTER_PG_PASSWORD='$(cat "$secret")'
export DAGSTER_PG_HOST='127.0.0.1'
export DAGSTER_PG_PORT='$PG_PORT'
export DAGSTER_PG_DB='$PG_DB'
export ENVFACTORY_CELERY_BROKER='redis://127.0.0.1:$REDIS_PORT/0'
export ENVFACTORY_CELERY_BACKEND='redis://127.0.0.1:$REDIS_PORT/1'
export ENVFACTORY_HOME='${ENVFACTORY_HOME:-$HOME/.envfactory}'
export ENVFACTORY_WEBSERVER='http://127.0.0.1:$WEB_PORT'
export ENVFACTORY_CODE_SERVER_HOST='127.0.0.1'
export ENVFACTORY_CODE_SERVER_PORT='$CODE_PORT'
EOF
  )
  # shellcheck disable=SC1091
  source "$STATE/env"
  mkdir -p "$DAGSTER_HOME"
  cp "$REPO/deploy/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
  # A worker acknowledges a step when it ends (acks_late), so a busy worker holds no step in reserve
  # that an idle one could run; Redis hands an unacknowledged task to another worker after the
  # visibility timeout, so that is longer than any step (12 h).
  cat >"$STATE/celery.yaml" <<EOF
execution:
  config:
    broker: '$ENVFACTORY_CELERY_BROKER'
    backend: '$ENVFACTORY_CELERY_BACKEND'
    config_source:
      task_acks_late: true
      worker_prefetch_multiplier: 1
      broker_transport_options: {visibility_timeout: 43200, max_retries: 3, interval_start: 0, interval_step: 0.2, interval_max: 0.5}
EOF
}

start() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --workers) WORKERS="$2"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -x "$BIN/dagster-celery" ] || die "$BIN/dagster-celery not found: pip install -e '.[cluster]' (or set PYTHON)"
  command -v redis-server >/dev/null || die "redis-server is not installed: run deploy/cluster.sh install"
  mkdir -p "$STATE/logs" "$STATE/run" "$STATE/redis"
  # A start that fails half-way stops what it had started.
  trap 'code=$?; if [ $code -ne 0 ]; then say "start failed: stopping what it started"; stop; fi' EXIT
  write_env

  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" --save "" \
    --appendonly no
  wait_for "redis" 30 redis-cli -p "$REDIS_PORT" ping
  start_postgres
  say "redis on :$REDIS_PORT, postgres on :$PG_PORT"

  # Create the instance's tables once, before several processes open the database at the same time.
  (cd "$REPO" && "$BIN/dagster" instance migrate >"$STATE/logs/migrate.log" 2>&1) ||
    die "dagster instance migrate failed: $STATE/logs/migrate.log"
  "$BIN/dagster" instance concurrency set llm "$LLM_POOL_LIMIT" >>"$STATE/logs/migrate.log" 2>&1

  # One code server for the webserver and the daemon (deploy/workspace.yaml): left to itself, each
  # starts its own, and the daemon replaces its one every 60 s (a fresh interpreter importing the
  # definitions). This one also starts each run's orchestrator. Every run's orchestrator is a fresh
  # interpreter: the project's bytecode is compiled once here, which a PYTHONDONTWRITEBYTECODE
  # environment would otherwise redo in each of them.
  "$PYTHON" -m compileall -q "$REPO/envfactory_dagster" "$REPO/assets" "$REPO/resources" >/dev/null ||
    say "warning: could not write the project's bytecode (read-only checkout?); each run compiles it"
  (cd "$REPO" && launch code-server "$BIN/dagster" api grpc -m envfactory_dagster.cluster_definitions \
    --location-name envfactory -h 127.0.0.1 -p "$CODE_PORT" -d "$REPO" --log-level warning)
  local i
  for i in $(seq 1 "$WORKERS"); do
    (cd "$REPO" && launch "worker-$i" "$BIN/dagster-celery" worker start -A envfactory_dagster.cluster_worker \
      -y "$STATE/celery.yaml" -n "w$i" -- --concurrency=1)
  done
  (cd "$REPO/deploy" && launch webserver "$BIN/dagster-webserver" -w workspace.yaml -h 127.0.0.1 -p "$WEB_PORT")
  (cd "$REPO/deploy" && launch daemon "$BIN/dagster-daemon" run -w workspace.yaml)
  for i in $(seq 1 "$WORKERS"); do
    wait_for "worker-$i" 180 grep -q "w$i@.* ready" "$STATE/logs/worker-$i.log"
  done
  # It listens once it has imported the definitions.
  wait_for code-server 180 bash -c "echo >/dev/tcp/127.0.0.1/$CODE_PORT"
  wait_for "webserver" 180 http_ok "http://127.0.0.1:$WEB_PORT/server_info"
  wait_for_location "http://127.0.0.1:$WEB_PORT" "${ENVFACTORY_LOCATION_TIMEOUT:-300}"
  say "$WORKERS worker(s), code server :$CODE_PORT, webserver http://127.0.0.1:$WEB_PORT, daemon; data home $ENVFACTORY_HOME"
  say "use it from a shell: source $STATE/env"
}

stop_one() {
  local name="$1" pidfile="$STATE/run/$1.pid" pid signal=TERM
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  # Postgres: SIGINT to the postmaster is a fast shutdown; it ends its own backends.
  if [ "$name" = postgres ]; then
    kill -INT "$pid" 2>/dev/null || true
  else
    kill -"$signal" -- "-$pid" 2>/dev/null || true
  fi
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) did not stop in 30s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  # Children that outlived their leader (a Celery pool process, a run worker) share its group.
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
  say "stopped $name (pid $pid)"
}

stop() {
  local pattern name
  [ -d "$STATE/run" ] || { say "nothing recorded in $STATE/run"; return; }
  for pattern in $SERVICES_STOP_ORDER; do
    for pidfile in "$STATE"/run/$pattern.pid; do
      [ -e "$pidfile" ] || continue
      name="$(basename "$pidfile" .pid)"
      stop_one "$name"
    done
  done
}

status() {
  local pidfile name
  for pidfile in "$STATE"/run/*.pid; do
    [ -e "$pidfile" ] || { say "nothing running"; return; }
    name="$(basename "$pidfile" .pid)"
    if alive "$name"; then say "$name: running (pid $(cat "$pidfile"))"; else say "$name: not running"; fi
  done
}

case "${1:-}" in
  install) install_services ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install | start [--workers N] | status | stop" >&2; exit 2 ;;
esac

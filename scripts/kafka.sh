#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, no ZooKeeper, no Docker) for development and CI.
#
#   bash scripts/kafka.sh up [--keep-data]    download the jars if not cached, format, start, wait until it answers
#   bash scripts/kafka.sh down [--keep-data]  stop it (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s)
#   bash scripts/kafka.sh restart [--keep-data]
#   bash scripts/kafka.sh stop-broker         = down --keep-data   (simulate an outage; the topics survive)
#   bash scripts/kafka.sh start-broker        = up --keep-data
#   bash scripts/kafka.sh status              exit 0 when it answers, 1 when running but not answering, 3 when stopped
#   bash scripts/kafka.sh download            only fetch the jars
#   bash scripts/kafka.sh logs                the end of the broker's logs
#
# `up` and `status` print `TEST_KAFKA_BROKERS=127.0.0.1:<port>` on stdout (and nothing else there;
# progress goes to stderr), so `export "$(bash scripts/kafka.sh up)"` works. `up` on a running broker
# changes nothing. Without --keep-data, `up` starts from empty storage and `down` deletes it.
#
# The broker jars come from Maven Central through `mvn` (Maven's own ~/.m2 cache, then
# .cache/kafka/<version>/libs in the repository). Needs Java 17+ (`java`, or $JAVA_HOME/bin/java).
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT + 1), KAFKA_VERSION (4.2.2),
# KAFKA_HEAP_OPTS (-Xms128m -Xmx512m), KAFKA_JVM_OPTS (extra JVM flags), KAFKA_START_TIMEOUT (90 s),
# KAFKA_STOP_TIMEOUT (30 s), KAFKA_MVN_ARGS (extra arguments for mvn).
#
# KAFKA_INSTANCE=<name> ([A-Za-z0-9_-]) manages a separate, private broker instead of the shared one: its own
# run and data directories (.cache/kafka/instances/<name>/) and lock, the same cached jars. Give it its own
# KAFKA_PORT (and KAFKA_CONTROLLER_PORT). A test that has to stop a broker (an outage under load) runs one
# of these, so the shared broker other test files use at the same time never goes away. Example:
#   KAFKA_INSTANCE=outage-42 KAFKA_PORT=19092 bash scripts/kafka.sh up | stop-broker | start-broker | down
# KAFKA_ADVERTISED_PORT (default KAFKA_PORT) is the port the broker tells clients to connect to: a test puts a
# fault proxy there, so every connection of every client (not only the bootstrap one) goes through it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/kafka"
HOST=127.0.0.1
# @platformatic/kafka 2.x supports brokers 3.5.0 to 4.2.0 (patch releases of 4.2 speak the same protocol).
KAFKA_VERSION="${KAFKA_VERSION:-4.2.2}"
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

CACHE="$ROOT/.cache/kafka"
LIBS="$CACHE/$KAFKA_VERSION/libs"
# The shared broker lives directly in $CACHE; a named instance in a directory of its own (jars shared).
INSTANCE="${KAFKA_INSTANCE:-}"
if [ -n "$INSTANCE" ]; then
  [[ $INSTANCE =~ ^[A-Za-z0-9_-]+$ ]] || { printf 'kafka.sh: error: KAFKA_INSTANCE may hold only letters, digits, _ and -\n' >&2; exit 64; }
  BASE="$CACHE/instances/$INSTANCE"
else
  BASE="$CACHE"
fi
DATA="$BASE/data"
RUN="$BASE/run"
PROPS="$RUN/server.properties"
PID_FILE="$RUN/broker.pid"
STATE_FILE="$RUN/broker.state"
LOG_DIR="$RUN/logs"
OUT_FILE="$RUN/logs/broker.out"

PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%01d s' $((ms / 1000)) $((ms % 1000 / 100)); }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 64
}

# --- processes --------------------------------------------------------------------------------------

# True when $1 is a live java process running kafka.Kafka with this checkout's server.properties.
is_our_broker() {
  local -a args
  local i
  [ -n "${1:-}" ] || return 1
  mapfile -d '' args 2>/dev/null <"/proc/$1/cmdline" || return 1
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    if [ "${args[i]}" = kafka.Kafka ] && [ "${args[i + 1]}" = "$PROPS" ]; then return 0; fi
  done
  return 1
}

# The broker's pid: from the pid file, or, when that is gone or stale, by looking for the process itself.
broker_pid() {
  local pid dir
  if [ -s "$PID_FILE" ]; then
    pid="$(<"$PID_FILE")"
    if is_our_broker "$pid"; then echo "$pid"; return 0; fi
  fi
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    if is_our_broker "$pid"; then
      echo "$pid" >"$PID_FILE"
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# Ports and version of the running broker (as started), else the requested ones.
load_state() {
  local key value
  RUNNING_VERSION="$KAFKA_VERSION"
  [ -s "$STATE_FILE" ] || return 0
  while IFS='=' read -r key value; do
    case "$key" in
      PORT) PORT="$value" ;;
      CONTROLLER_PORT) CONTROLLER_PORT="$value" ;;
      RUNNING_VERSION) RUNNING_VERSION="$value" ;;
      *) ;;
    esac
  done <"$STATE_FILE"
}

# --- readiness --------------------------------------------------------------------------------------

tcp_open() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# Speaks the Kafka protocol: sends ApiVersions v0 and checks the answer (same correlation id, error
# code 0, a plausible list of APIs). Prints the number of APIs the broker supports. The broker opens
# its client port only once it has caught up with the controller and is unfenced, and answers
# requests from then on, so this answering means the broker is usable.
api_versions_probe() {
  local host=$1 port=$2 size count
  local -a b
  exec 3<>"/dev/tcp/$host/$port" || return 1
  # size 18 | api_key 18 (ApiVersions) | api_version 0 | correlation_id 42 | client_id "kafka.sh"
  printf '\x00\x00\x00\x12\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x08kafka.sh' >&3
  read -ra b < <(head -c 4 <&3 | od -An -v -tu1)
  [ "${#b[@]}" -eq 4 ] || return 1
  size=$((b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]))
  [ "$size" -ge 10 ] && [ "$size" -le 65536 ] || return 1
  # correlation_id (4) | error_code (2) | api_keys count (4) | count x (api_key, min, max) (6 each)
  read -ra b < <(head -c "$size" <&3 | od -An -v -tu1 -w65536)
  exec 3>&-
  [ "${#b[@]}" -eq "$size" ] || return 1
  [ "$((b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]))" -eq 42 ] || return 1
  [ "$((b[4] << 8 | b[5]))" -eq 0 ] || return 1
  count=$((b[6] << 24 | b[7] << 16 | b[8] << 8 | b[9]))
  [ "$count" -gt 0 ] && [ $((10 + 6 * count)) -le "$size" ] || return 1
  echo "$count"
}
export -f api_versions_probe

answers() {
  tcp_open "$1" && timeout 5 bash -c 'api_versions_probe "$@"' _ "$HOST" "$1" 2>/dev/null
}

show_logs() {
  local f
  [ $# -gt 0 ] || set -- "$OUT_FILE" "$LOG_DIR/server.log"
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf -- '--- %s (last 30 lines)\n' "${f#"$ROOT"/}" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

# --- download ---------------------------------------------------------------------------------------

download() {
  local pom="$HERE/pom.xml" stamp="$CACHE/$KAFKA_VERSION/pom.sha256" want tmp attempt t0
  local -a extra=()
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -d "$LIBS" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  # A named instance holds only its own lock; the jars are everyone's, so fetching them takes the shared one.
  if [ -n "$INSTANCE" ] && command -v flock >/dev/null; then
    exec 8>"$CACHE/.lock"
    flock -w 600 8 || die "another kafka.sh is still busy (lock ${CACHE#"$ROOT"/}/.lock)"
    if [ -d "$LIBS" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  fi
  command -v mvn >/dev/null || die "mvn (Maven) is needed to download the broker the first time"
  read -ra extra <<<"${KAFKA_MVN_ARGS:-}"
  log "downloading the Apache Kafka $KAFKA_VERSION broker jars from Maven Central (once; cached in ${LIBS#"$ROOT"/})"
  t0=$(now_ms)
  mkdir -p "$CACHE/$KAFKA_VERSION"
  tmp="$CACHE/$KAFKA_VERSION/libs.tmp.$$"
  for attempt in 1 2; do
    rm -rf "$tmp"
    # The retry forces Maven to ask again (-U) instead of trusting a failure cached in ~/.m2.
    [ "$attempt" -eq 1 ] || extra+=(-U)
    # (Debian's Maven prints colour codes even in batch mode; they are dropped.)
    if mvn -B -q -ntp -f "$pom" -Dkafka.version="$KAFKA_VERSION" "${extra[@]}" \
      "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
      sed -u 's/\x1b\[[0-9;]*m//g' >&2; then
      break
    fi
    rm -rf "$tmp"
    [ "$attempt" -eq 1 ] || { rmdir "$CACHE/$KAFKA_VERSION" 2>/dev/null || true; die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"; }
    log "mvn failed; retrying once in 5 s"
    sleep 5
  done
  compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || die "no kafka_2.13-$KAFKA_VERSION.jar after the download"
  compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null || die "no SLF4J binding (log4j-slf4j-impl) after the download"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  echo "$want" >"$stamp"
  log "downloaded $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(since "$t0")"
}

# --- start / stop -----------------------------------------------------------------------------------

check_java() {
  local v
  command -v "$JAVA" >/dev/null || die "java not found (Java 17 or newer is needed)"
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Kafka $KAFKA_VERSION needs Java 17 or newer; $JAVA is ${v:-unknown}"
}

new_cluster_id() {
  # Base64url of 16 random bytes, as Kafka's Uuid wants; not starting with '-' (it would look like an option).
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ $id == -* ]] || break
  done
  echo "$id"
}

start() {
  local keep=$1 pid t0 count
  local -a heap jvm
  t0=$(now_ms)
  load_state
  if pid="$(broker_pid)"; then
    if [ -n "${KAFKA_PORT:-}" ] && [ "$KAFKA_PORT" != "$PORT" ]; then
      log "note: the running broker listens on $PORT, not on KAFKA_PORT=$KAFKA_PORT (down first to change it)"
    fi
    if [ "$RUNNING_VERSION" != "$KAFKA_VERSION" ]; then
      log "note: the running broker is Kafka $RUNNING_VERSION, not $KAFKA_VERSION (down first to change it)"
    fi
    if count="$(answers "$PORT")"; then
      log "already up (pid $pid, Kafka $RUNNING_VERSION, $count APIs)"
      echo "TEST_KAFKA_BROKERS=$HOST:$PORT"
      return 0
    fi
    log "already running (pid $pid) but not answering yet; waiting"
    wait_ready "$pid" "$t0" || die "the running broker (pid $pid) does not answer; try: bash scripts/kafka.sh restart"
    echo "TEST_KAFKA_BROKERS=$HOST:$PORT"
    return 0
  fi
  # Not running: the requested ports apply, not those of an earlier run.
  PORT="${KAFKA_PORT:-9092}"
  CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
  [ "$PORT" != "$CONTROLLER_PORT" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
  tcp_open "$PORT" && die "$HOST:$PORT is already taken by another process (set KAFKA_PORT to use another port)"
  tcp_open "$CONTROLLER_PORT" && die "$HOST:$CONTROLLER_PORT is already taken by another process (set KAFKA_CONTROLLER_PORT)"

  check_java
  download

  rm -f "$PID_FILE"
  [ "$keep" = 1 ] || rm -rf "$LOG_DIR"
  mkdir -p "$RUN" "$LOG_DIR"
  sed -e "s#@ADVERTISED_PORT@#${KAFKA_ADVERTISED_PORT:-$PORT}#g" -e "s#@PORT@#$PORT#g" \
    -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$DATA#g" "$HERE/server.properties" >"$PROPS"
  printf 'PORT=%s\nCONTROLLER_PORT=%s\nRUNNING_VERSION=%s\n' "$PORT" "$CONTROLLER_PORT" "$KAFKA_VERSION" >"$STATE_FILE"

  local -a log_opts=(-Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$HERE/log4j2.properties")
  if [ "$keep" = 1 ] && [ -f "$DATA/meta.properties" ]; then
    log "keeping the existing data in ${DATA#"$ROOT"/}"
  else
    rm -rf "$DATA"
    if ! "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${log_opts[@]}" -cp "$LIBS/*" \
      kafka.tools.StorageTool format --cluster-id "$(new_cluster_id)" --config "$PROPS" >"$RUN/format.out" 2>&1; then
      show_logs "$RUN/format.out"
      die "formatting the storage failed"
    fi
  fi

  read -ra heap <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
  read -ra jvm <<<"${KAFKA_JVM_OPTS:-}"
  jvm=("${heap[@]}" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:ErrorFile="$LOG_DIR/hs_err_%p.log"
    -Djava.awt.headless=true "${log_opts[@]}" "${jvm[@]}")
  log "starting Kafka $KAFKA_VERSION on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT)"
  # In its own session, so that signals meant for the caller's process group (Ctrl-C, test runners
  # ending their children) do not reach it; the inner shell writes its pid, which java then keeps.
  # fds 8 and 9 (the locks) are not passed on.
  # shellcheck disable=SC2016 # expanded by the inner shell
  (cd "$RUN" && exec setsid bash -c 'echo $$ >"$0" && exec "$@"' "$PID_FILE" \
    "$JAVA" "${jvm[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS" </dev/null >>"$OUT_FILE" 2>&1 8>&- 9>&-) &
  local i
  for ((i = 0; i < 50; i++)); do
    [ -s "$PID_FILE" ] && is_our_broker "$(<"$PID_FILE")" && break
    sleep 0.1
  done
  pid="$(<"$PID_FILE")" || true
  if ! wait_ready "${pid:-}" "$t0"; then
    stop 0 >/dev/null 2>&1 || true
    die "Kafka did not come up"
  fi
  echo "TEST_KAFKA_BROKERS=$HOST:$PORT"
}

wait_ready() {
  local pid=$1 t0=$2 deadline=$(($(now_ms) + START_TIMEOUT * 1000)) count
  while :; do
    if ! is_our_broker "$pid"; then
      log "the broker exited while starting"
      show_logs
      return 1
    fi
    if count="$(answers "$PORT")"; then
      log "up in $(since "$t0") (pid $pid; ApiVersions answered with $count APIs)"
      return 0
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      log "no answer on $HOST:$PORT within ${START_TIMEOUT} s"
      show_logs
      return 1
    fi
    sleep 0.3
  done
}

stop() {
  local keep=$1 pid t0 deadline
  t0=$(now_ms)
  if pid="$(broker_pid)"; then
    log "stopping the broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((t0 + STOP_TIMEOUT * 1000))
    while is_our_broker "$pid" && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
    if is_our_broker "$pid"; then
      log "still running after ${STOP_TIMEOUT} s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while is_our_broker "$pid"; do sleep 0.1; done
    fi
    # The exited java lingers as a zombie (ports already closed) until init reaps it, which can take
    # a second or two. A full `down` waits for that, so that no java process is listed afterwards
    # (up to 5 s: some inits never reap); stop-broker, used to simulate outages, does not wait.
    if [ "$keep" != 1 ]; then
      deadline=$(($(now_ms) + 5000))
      while [ -e "/proc/$pid" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
    fi
    log "stopped in $(since "$t0")"
  else
    log "not running"
  fi
  rm -f "$PID_FILE" "$STATE_FILE"
  if [ "$keep" = 1 ]; then
    [ ! -d "$DATA" ] || log "data kept in ${DATA#"$ROOT"/}"
  elif [ -n "$INSTANCE" ]; then
    # A named instance leaves nothing behind (its logs included: `logs` before `down` to keep them).
    rm -rf "$BASE"
  else
    rm -rf "$DATA"
  fi
}

status() {
  local pid count
  load_state
  if ! pid="$(broker_pid)"; then
    log "stopped"
    return 3
  fi
  if count="$(answers "$PORT")"; then
    log "up: pid $pid, Kafka $RUNNING_VERSION, $HOST:$PORT ($count APIs), controller $HOST:$CONTROLLER_PORT"
    echo "TEST_KAFKA_BROKERS=$HOST:$PORT"
    return 0
  fi
  log "running (pid $pid) but not answering on $HOST:$PORT"
  return 1
}

lock() {
  mkdir -p "$BASE"
  command -v flock >/dev/null || return 0
  exec 9>"$BASE/.lock"
  flock -w 600 9 || die "another kafka.sh is still busy (lock ${BASE#"$ROOT"/}/.lock)"
}

# --- main -------------------------------------------------------------------------------------------

cmd="${1:-}"
[ $# -eq 0 ] || shift
keep=0
for arg in "$@"; do
  case "$arg" in
    --keep-data) keep=1 ;;
    *) usage ;;
  esac
done

case "$cmd" in
  up) lock; start "$keep" ;;
  down) lock; stop "$keep" ;;
  restart) lock; stop "$keep"; start "$keep" ;;
  start-broker) lock; start 1 ;;
  stop-broker) lock; stop 1 ;;
  status) status ;;
  download) lock; download ;;
  logs) show_logs "$OUT_FILE" "$LOG_DIR/server.log" "$RUN/format.out" 2>&1 ;;
  *) usage ;;
esac

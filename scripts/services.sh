#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis used by integration tests are running (starting them with this
# machine's own commands when they are not). Usage: scripts/services.sh up|status
set -euo pipefail
action="${1:-status}"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

wait_for() {
  local name="$1" check="$2" tries=60
  until "$check"; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then echo "$name did not come up" >&2; return 1; fi
    sleep 0.5
  done
  echo "$name: up"
}

case "$action" in
  up)
    if ! pg_up; then
      echo "starting PostgreSQL"
      if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
      fi
    fi
    wait_for PostgreSQL pg_up
    if ! redis_up; then
      echo "starting Redis"
      if command -v redis-server >/dev/null; then
        mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
          --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
      fi
    fi
    wait_for Redis redis_up
    ;;
  status)
    pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: down"
    redis_up && echo "Redis: up" || echo "Redis: down"
    ;;
  *)
    echo "usage: $0 up|status" >&2
    exit 64
    ;;
esac

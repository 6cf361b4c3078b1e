#!/usr/bin/env bash
# Makes sure the services the integration tests use answer on 127.0.0.1: Redis (6379),
# PostgreSQL (5432) and RabbitMQ (5672). Each one that does not answer is started with the
# Debian package's own server command. Safe to run again.
set -euo pipefail

step() { printf 'services-up: %s\n' "$*"; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2 seconds=$3
  for _ in $(seq 1 "$seconds"); do
    if answers "$port"; then step "$name answers on 127.0.0.1:$port"; return 0; fi
    sleep 1
  done
  printf 'services-up: error: %s did not answer on 127.0.0.1:%s within %ss\n' "$name" "$port" "$seconds" >&2
  return 1
}

if answers 6379; then
  step "redis answers on 127.0.0.1:6379"
else
  step "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis 6379 30
fi

if answers 5432; then
  step "postgresql answers on 127.0.0.1:5432"
else
  step "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  wait_for postgresql 5432 60
fi

if answers 5672; then
  step "rabbitmq answers on 127.0.0.1:5672"
else
  step "starting rabbitmq"
  rabbitmq-server -detached
  wait_for rabbitmq 5672 120
fi

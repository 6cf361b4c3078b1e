#!/usr/bin/env bash
# Debian packages the tests of the built-in task types use as real peers: zstd and xz-utils (the
# test ZIM writer, test/support/zim-writer.ts, compresses clusters with the real programs) and
# python3-aiosmtpd (a real local SMTP server); python3-pika and python3-psycopg2 for the Python
# worker example (examples/python-worker); chromium and chromium-driver, the real browser the
# dashboard's tests drive through playwright-core; docker-compose, which checks deploy/compose.yaml
# (test/deploy), unless the Docker Compose plugin is there. Safe to run again.
set -euo pipefail

step() { printf 'test-deps: %s\n' "$*"; }
missing=()
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
/usr/bin/python3 -c 'import pika' >/dev/null 2>&1 || missing+=(python3-pika)
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || missing+=(python3-psycopg2)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || missing+=(docker-compose)
if [ ${#missing[@]} -eq 0 ]; then
  step "zstd, xz-utils, python3-aiosmtpd, python3-pika, python3-psycopg2, chromium, chromium-driver and Docker Compose already installed"
  exit 0
fi
step "installing ${missing[*]} with apt-get"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"

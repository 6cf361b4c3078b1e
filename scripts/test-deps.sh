#!/usr/bin/env bash
# Debian packages the tests of the built-in task types use as real peers: zim-tools (zimwriterfs
# makes a small real ZIM file) and python3-aiosmtpd (a real local SMTP server). Safe to run again.
set -euo pipefail

step() { printf 'test-deps: %s\n' "$*"; }
missing=()
command -v zimwriterfs >/dev/null 2>&1 || missing+=(zim-tools)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
if [ ${#missing[@]} -eq 0 ]; then
  step "zim-tools and python3-aiosmtpd already installed"
  exit 0
fi
step "installing ${missing[*]} with apt-get"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"

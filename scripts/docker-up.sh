#!/usr/bin/env bash
# Starts a local Docker engine for the executor and its integration tests, and makes sure a
# `busybox:latest` image exists without pulling anything: CI machines may have no registry
# access, so the image is built from the busybox-static binary and imported.
# Safe to run again: every step checks first and does nothing when already done.
set -euo pipefail

LOG=/var/log/task-mgmt-dockerd.log
DATA_ROOT=${DOCKER_DATA_ROOT:-/var/lib/docker}
IMAGE=busybox:latest

step() { printf 'docker-up: %s\n' "$*"; }
fail() { printf 'docker-up: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  step "installing $* with apt-get"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- 1. packages -----------------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1; then
  apt_install docker.io busybox-static
elif ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  apt_install busybox-static
else
  step "dockerd and busybox-static already installed"
fi

# --- 2. engine -------------------------------------------------------------------------------
engine_answers() { docker info >/dev/null 2>&1; }

# overlay2 needs a kernel with overlayfs and an upper filesystem that supports it (it does not
# work on top of another overlay, as inside many containers). Try a real mount rather than guess.
pick_storage_driver() {
  local probe ok=no
  # Probe on the data root's filesystem, since that is where overlay2 would mount.
  as_root mkdir -p "$DATA_ROOT"
  probe=$(as_root mktemp -d "$DATA_ROOT/.overlay-probe.XXXXXX")
  as_root mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if as_root mount -t overlay overlay \
      -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
    ok=yes
    as_root umount "$probe/merged" || true
  fi
  as_root rm -rf "$probe"
  if [ "$ok" = yes ]; then echo overlay2; else echo vfs; fi
}

if engine_answers; then
  step "engine already answers"
else
  driver=$(pick_storage_driver)
  step "starting dockerd (storage driver $driver, no bridge, no iptables), log in $LOG"
  # --bridge=none: the engine must not create docker0 (no default bridge here, and task
  # containers only ever use --network none). Without iptables rules nothing NATs anyway.
  # dockerd 20.10 starts its own managed containerd when /run/containerd/containerd.sock is
  # absent, so containerd needs no separate start.
  as_root touch "$LOG"
  as_root nohup dockerd \
    --bridge=none \
    --iptables=false \
    --ip6tables=false \
    --storage-driver="$driver" \
    --data-root="$DATA_ROOT" \
    >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    engine_answers && break
    sleep 1
  done
  if ! engine_answers; then
    tail -n 40 "$LOG" >&2 || true
    fail "dockerd did not answer within 60 s (log above, full log in $LOG)"
  fi
  step "engine answers ($(docker version --format '{{.Server.Version}}'))"
fi

# --- 3. busybox image ------------------------------------------------------------------------
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  step "image $IMAGE already present"
else
  busybox_bin=/bin/busybox
  [ -x "$busybox_bin" ] || fail "$busybox_bin is missing; install busybox-static"
  # A dynamically linked busybox would need libc inside the image; only the static one works.
  if command -v ldd >/dev/null 2>&1 && ldd "$busybox_bin" 2>&1 | grep -q '=>'; then
    fail "$busybox_bin is dynamically linked; install busybox-static"
  fi
  step "building $IMAGE from $busybox_bin (no registry needed)"
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs"/{bin,etc,tmp,root,home,var,proc,sys,dev,out}
  chmod 1777 "$rootfs/tmp"
  cp "$busybox_bin" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf - . |
    docker import \
      --change 'CMD ["sh"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$IMAGE" >/dev/null
  step "imported $IMAGE"
fi

docker run --rm --network none "$IMAGE" true || fail "$IMAGE does not run"
step "ready: engine answers and $IMAGE runs"

#!/usr/bin/env bash
# A real container engine for the tests: Debian's podman serving the Docker API on a fixed socket, a
# `localhost/registry:2` stand-in image built from Debian's docker-registry binary,
# and, when REGISTRY_V3_BIN names a distribution v3 binary, a `localhost/registry:3` stand-in built from it.
#
#   container-engine.sh setup   idempotent: engine config, stand-in image, API service (started detached)
#   container-engine.sh env     prints DOCKER_HOST=… for the service
#   container-engine.sh stop    stops the API service started by setup (containers are left alone)
#
# Tests hold a shared lock on $ENGINE_DIR/users.lock while they use the service; `stop-if-idle` (run by their
# teardown) stops the service only when setup started it on a test's behalf and no one else holds that lock.
set -euo pipefail

ENGINE_DIR=${REGISTRY_JANITOR_ENGINE_DIR:-/run/registry-janitor}
SOCKET=$ENGINE_DIR/podman.sock
PID_FILE=$ENGINE_DIR/podman-service.pid
EPHEMERAL_MARK=$ENGINE_DIR/podman-service.ephemeral
SERVICE_LOG=$ENGINE_DIR/podman-service.log
IMAGE=localhost/registry:2
IMAGE_V3=localhost/registry:3
# Records which binary an image was built from, so that another REGISTRY_V3_BIN rebuilds it.
SOURCE_LABEL=io.github.registry-janitor.source-sha256
CONTAINERS_CONF=/etc/containers/containers.conf

say() { printf 'container-engine: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

require_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v docker >/dev/null 2>&1 || missing+=("docker (the Docker CLI)")
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  [ -x /bin/busybox ] || missing+=("busybox-static (/bin/busybox)")
  command -v flock >/dev/null 2>&1 || missing+=("flock (util-linux)")
  if [ -n "${REGISTRY_V3_BIN:-}" ] && [ ! -x "$REGISTRY_V3_BIN" ]; then
    die "REGISTRY_V3_BIN=$REGISTRY_V3_BIN is not an executable file; point it at a distribution v3 binary, or unset it"
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    die "missing: ${missing[*]}. Install with: apt-get update && apt-get install -y podman runc busybox-static docker-registry (the docker CLI comes from Docker's docker-ce-cli package)"
  fi
}

# crun fails on cgroups v1 hybrid hosts, and podman's default ulimits need CAP_SYS_RESOURCE.
write_containers_conf() {
  if [ -e "$CONTAINERS_CONF" ]; then
    if ! grep -q 'runc' "$CONTAINERS_CONF" || ! grep -q 'default_ulimits' "$CONTAINERS_CONF"; then
      say "note: $CONTAINERS_CONF exists and was left as is; if containers fail to start, it needs runtime = \"runc\" and default_ulimits (see CONTAINERS.md)"
    fi
    return
  fi
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  cat >"$CONTAINERS_CONF" <<'EOF'
# Written by registry-janitor's test/support/container-engine.sh: crun fails on cgroups v1 hybrid hosts, and
# podman's default ulimits cannot be set without CAP_SYS_RESOURCE.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
  say "wrote $CONTAINERS_CONF"
}

# Copies a dynamically linked binary's libraries to the same paths under the root filesystem.
copy_libs() {
  local binary=$1 root=$2 lib
  for lib in $(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# build_image IMAGE BINARY CONFIG_DIR: a stand-in for the official image, running BINARY as `registry` with
# CONFIG_DIR/config.yml (registry:2: /etc/docker/registry; registry:3: /etc/distribution).
build_image() {
  local image=$1 binary=$2 config_dir=$3 source built_from
  # The recipe's revision after the binary's hash: a changed recipe (more applets) rebuilds the image too.
  source="$(sha256sum "$binary" | cut -d' ' -f1)+find-stat"
  if podman image exists "$image"; then
    # An image without the label was built by an earlier version of this script from the same binary.
    built_from=$(podman image inspect -f "{{index .Labels \"$SOURCE_LABEL\"}}" "$image" 2>/dev/null || true)
    case $built_from in '' | '<no value>' | "$source") return ;; esac
    # Importing again moves the name; containers of the old image keep running on it.
    say "$image was built from another binary; rebuilding it from $binary"
  fi
  say "building $image from $binary and /bin/busybox"
  local work root
  work=$(mktemp -d)
  root=$work/rootfs
  mkdir -p "$root/bin" "$root$config_dir" "$root/var/lib/registry" "$root/tmp"
  cp "$binary" "$root/bin/registry"
  cp /bin/busybox "$root/bin/busybox"
  copy_libs "$root/bin/registry" "$root"
  copy_libs "$root/bin/busybox" "$root"
  local applet
  for applet in sh du ls cat rm mkdir sleep test env wget find stat; do
    ln -s busybox "$root/bin/$applet"
  done
  # The official images' configuration.
  cat >"$root$config_dir/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  # Behaves like the official images' entrypoint.
  cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
case "$1" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
EOF
  chmod 755 "$root/entrypoint.sh"
  tar -C "$root" -cf "$work/rootfs.tar" .
  podman import \
    --change 'ENTRYPOINT ["/entrypoint.sh"]' \
    --change "CMD [\"$config_dir/config.yml\"]" \
    --change 'VOLUME ["/var/lib/registry"]' \
    --change 'EXPOSE 5000' \
    --change 'ENV PATH=/bin' \
    --change "LABEL $SOURCE_LABEL=$source" \
    --quiet "$work/rootfs.tar" "$image" >/dev/null
  rm -rf "$work"
  say "built $image"
}

build_images() {
  build_image "$IMAGE" "$(command -v docker-registry)" /etc/docker/registry
  if [ -n "${REGISTRY_V3_BIN:-}" ]; then
    build_image "$IMAGE_V3" "$REGISTRY_V3_BIN" /etc/distribution
  fi
}

service_answers() {
  DOCKER_HOST=unix://$SOCKET timeout 10 docker ps -q >/dev/null 2>&1
}

# A service whose working directory was removed (started from a checkout since deleted) answers the API, but
# conmon inherits that directory and every container start fails: replace it.
service_is_stale() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  kill -0 "$pid" 2>/dev/null || return 1
  case $(readlink "/proc/$pid/cwd" 2>/dev/null) in
  *' (deleted)') return 0 ;;
  *) return 1 ;;
  esac
}

start_service() {
  if service_is_stale; then
    say "the podman service (pid $(cat "$PID_FILE")) runs in a removed directory; restarting it"
    stop_service
  fi
  if service_answers; then
    return
  fi
  if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    # Started but not answering yet (another setup just launched it): give it time below.
    :
  else
    rm -f "$SOCKET"
    # Detached into its own session so it outlives this script and the test process that ran it.
    # From /, so that its containers never depend on the directory setup ran in.
    (cd / && exec setsid podman system service --time=0 "unix://$SOCKET" </dev/null >>"$SERVICE_LOG" 2>&1 8>&-) &
    echo $! >"$PID_FILE"
    if [ "${1:-}" = ephemeral ]; then touch "$EPHEMERAL_MARK"; else rm -f "$EPHEMERAL_MARK"; fi
    say "started podman system service (pid $!) on unix://$SOCKET"
  fi
  local i
  for i in $(seq 1 100); do
    service_answers && return
    sleep 0.2
  done
  die "podman system service does not answer on unix://$SOCKET; see $SERVICE_LOG"
}

smoke_test() {
  local out image
  for image in "$IMAGE" ${REGISTRY_V3_BIN:+"$IMAGE_V3"}; do
    # --tmpfs over the image's VOLUME: podman's Docker API can leave anonymous volumes behind.
    if ! out=$(DOCKER_HOST=unix://$SOCKET docker run --rm --tmpfs /var/lib/registry --entrypoint registry "$image" --version 2>&1); then
      die "the engine cannot run a container of $image: $out
Check $CONTAINERS_CONF (runtime = \"runc\", default_ulimits; see CONTAINERS.md) and $SERVICE_LOG"
    fi
  done
}

setup() {
  require_tools
  mkdir -p "$ENGINE_DIR"
  # Several test files may run setup at once.
  exec 8>"$ENGINE_DIR/setup.lock"
  flock 8
  write_containers_conf
  local fresh=0
  podman image exists "$IMAGE" || fresh=1
  [ -z "${REGISTRY_V3_BIN:-}" ] || podman image exists "$IMAGE_V3" || fresh=1
  build_images
  service_answers || fresh=1
  start_service "${1:-}"
  if [ "$fresh" = 1 ]; then smoke_test; fi
  exec 8>&-
}

stop_service() {
  if [ -f "$PID_FILE" ]; then
    local pid
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      local i
      for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      say "stopped podman system service (pid $pid)"
    fi
    rm -f "$PID_FILE" "$EPHEMERAL_MARK" "$SOCKET"
  fi
}

stop_if_idle() {
  [ -f "$EPHEMERAL_MARK" ] || return 0
  exec 7>>"$ENGINE_DIR/users.lock"
  if flock -n -x 7; then
    stop_service
  fi
}

case "${1:-}" in
  setup) setup "${2:-}" ;;
  env) echo "DOCKER_HOST=unix://$SOCKET" ;;
  stop) stop_service ;;
  stop-if-idle) stop_if_idle ;;
  *)
    echo "usage: $0 setup|env|stop|stop-if-idle" >&2
    exit 2
    ;;
esac

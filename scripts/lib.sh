# Shared by scripts/daemon, scripts/test and scripts/package: install and
# start what cordon needs on Debian. Sourced, not run.

# Installs the Debian packages named, when their command is missing.
# Usage: ensure_packages cmd:package ...
ensure_packages() {
  local need=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -e "$cmd" ] || need+=("$pkg")
    else command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg"); fi
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

docker_up() { timeout 5 docker info >/dev/null 2>&1; }

# Starts dockerd in the background unless one answers; sets STARTED_DOCKERD
# to its pid when this script started it.
STARTED_DOCKERD=""
ensure_dockerd() {
  docker_up && return 0
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker >&2 || true
    docker_up && return 0
  fi
  echo "starting dockerd" >&2
  local args=()
  # gVisor, when installed and no daemon.json says otherwise: registered as
  # the runtime `runsc` (its own network off: Docker's `none` network and
  # cordon's sandbox need none) for `cordon sandbox run --runtime runsc`.
  if command -v runsc >/dev/null 2>&1 && [ ! -e /etc/docker/daemon.json ]; then
    printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": ["--network=none"]}}}\n' \
      "$(command -v runsc)" >/tmp/cordon-dockerd.json
    args=(--config-file /tmp/cordon-dockerd.json)
  fi
  dockerd "${args[@]}" >/tmp/cordon-dockerd.log 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 60); do docker_up && return 0; sleep 0.5; done
  echo "dockerd did not come up; see /tmp/cordon-dockerd.log" >&2
  tail -5 /tmp/cordon-dockerd.log >&2
  return 1
}

stop_started_dockerd() {
  if [ -n "$STARTED_DOCKERD" ]; then
    echo "stopping the dockerd this script started" >&2
    # A lab test restarts dockerd (same command line): stop that one too.
    local now
    now=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$now" ] && [ "$now" != "$STARTED_DOCKERD" ] && \
       [ "$(cat /proc/"$now"/comm 2>/dev/null)" = dockerd ]; then
      kill "$now" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$now" 2>/dev/null || break; sleep 0.25; done
    fi
    kill "$STARTED_DOCKERD" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$STARTED_DOCKERD" 2>/dev/null || true
    STARTED_DOCKERD=""
  fi
}

# The cargo-deb that scripts/package uses, installed with cargo when
# missing (a pinned version: it compiles for a few minutes).
CARGO_DEB_VERSION=3.8.0
ensure_cargo_deb() {
  if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb $CARGO_DEB_VERSION (cargo install)" >&2
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked -q >&2
  fi
}

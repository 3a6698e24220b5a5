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
# The host-wide lab lock of crates/cordon-lab (lock.rs LOCK_PATH): a lab
# test that restarts dockerd holds it, so starting or stopping dockerd
# under it never races with one (a script that saw dockerd down in the
# middle of such a restart would start a second one, and later stop the
# daemon other runs use).
LAB_LOCK=/run/cordon-lab.lock
# A script that already runs under the lock (the bench scripts re-exec
# themselves under flock with CORDON_LAB_LOCK_HELD=1) must not take it
# again: a second flock on a new descriptor would wait for itself.
with_lab_lock() {
  if [ "${CORDON_LAB_LOCK_HELD:-}" = 1 ]; then
    "$@"
    return
  fi
  local fd
  exec {fd}>>"$LAB_LOCK"
  flock "$fd"
  local rc=0
  "$@" {fd}>&- || rc=$?
  exec {fd}>&-
  return "$rc"
}
ensure_dockerd() {
  docker_up && return 0
  with_lab_lock ensure_dockerd_locked
}
ensure_dockerd_locked() {
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
  [ -n "$STARTED_DOCKERD" ] || return 0
  with_lab_lock stop_started_dockerd_locked
}
stop_started_dockerd_locked() {
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

# The lab guard (as crates/cordon-lab/src/guard.rs): refuses, in one line on
# stderr, to let a benchmark build its lab when one of the ranges it assigns,
# routes or serves overlaps the resolver in /etc/resolv.conf, the subnet or
# gateway of the host's default-route interface, or an address the hosts of
# the apt sources, cargo's registries or an HTTP proxy resolve to (a name
# that does not resolve is skipped). Call it before building anything.
# Usage: lab_guard 198.51.100.0/24 10.53.0.0/24 2001:db8::/32 ...
# Exits the calling script with status 1 when it refuses. Needs python3.
# LAB_GUARD_FACTS='NET=what;NET=what' replaces the host's facts (its tests).
lab_guard() {
  python3 - "$@" <<'PY' || exit 1
import concurrent.futures, glob, ipaddress, json, os, re, socket, subprocess, sys

def net(s):
    return ipaddress.ip_network(s.strip().strip("[]"), strict=False)

def url_host(url):
    m = re.match(r"^[a-z0-9+.-]+://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)", url.strip(), re.I)
    return m.group(1).strip("[]").lower() if m and m.group(1) else None

def read(p):
    try:
        return open(p, encoding="utf-8", errors="replace").read()
    except OSError:
        return ""

def ip_json(*args):
    try:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, check=False).stdout
        return json.loads(out or b"null") or []
    except (OSError, ValueError):
        return []

def gather():
    facts = []
    for line in read("/etc/resolv.conf").splitlines():
        w = line.split()
        if len(w) >= 2 and w[0] == "nameserver":
            try:
                facts.append((net(w[1].split("%")[0]), "the resolver in /etc/resolv.conf"))
            except ValueError:
                pass
    for fam in ("-4", "-6"):
        for r in ip_json(fam, "route", "show", "default"):
            dev = r.get("dev")
            if r.get("gateway"):
                facts.append((net(r["gateway"]), f"the default gateway via {dev}"))
            for link in ip_json(fam, "addr", "show", "dev", dev) if dev else []:
                for a in link.get("addr_info", []):
                    if a.get("scope") not in ("link", "host") and "local" in a:
                        facts.append((net(f"{a['local']}/{a['prefixlen']}"),
                                      f"the subnet of {dev}, the host's default-route interface"))
    hosts = {}
    def add(h, why):
        if h:
            hosts.setdefault(h, why)
    lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for p in lists:
        for line in read(p).splitlines():
            line = line.split("#")[0]
            if line.split()[:1] in (["deb"], ["deb-src"]):
                line = re.sub(r"\[[^\]]*\]", " ", line)
                add(next((h for h in map(url_host, line.split()) if h), None), "apt source")
    for p in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", read(p)):
            lines = [l for l in stanza.splitlines() if not l.startswith("#")]
            if any(re.match(r"(?i)enabled:\s*no\b", l) for l in lines):
                continue
            for l in lines:
                if l.lower().startswith("uris:"):
                    for u in l.split(":", 1)[1].split():
                        add(url_host(u), "apt source")
    for h in ("index.crates.io", "static.crates.io", "crates.io"):
        add(h, "cargo registry")
    dirs = [os.environ.get("CARGO_HOME"), os.path.expanduser("~/.cargo"), "/usr/local/cargo"]
    cwd = os.getcwd()
    while True:
        dirs.append(os.path.join(cwd, ".cargo"))
        if cwd == "/":
            break
        cwd = os.path.dirname(cwd)
    for d in filter(None, dirs):
        for name in ("config.toml", "config"):
            text = read(os.path.join(d, name))
            for q in re.findall(r"[\"']([^\"']*)[\"']", text):
                add(url_host(q), f"cargo, {os.path.join(d, name)}")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        add(url_host(os.environ.get(var, "")), f"proxy in ${var}")
    def resolve(h):
        try:
            return {ai[4][0].split("%")[0] for ai in socket.getaddrinfo(h, 443)}
        except OSError:
            return set()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(hosts)))
    futures = {pool.submit(resolve, h): h for h in hosts}
    try:
        for f in concurrent.futures.as_completed(futures, timeout=5):
            h = futures[f]
            for ip in sorted(f.result()):
                facts.append((net(ip), f"what {h} resolves to ({hosts[h]})"))
    except concurrent.futures.TimeoutError:
        print("lab_guard: some registry names did not resolve within 5 s; not checked", file=sys.stderr)
    pool.shutdown(wait=False)
    return facts

def show(n):
    return str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n)

# LAB_GUARD_FACTS="NET=what;NET=what" replaces the host's facts (tests).
if os.environ.get("LAB_GUARD_FACTS"):
    facts = [(net(f.split("=", 1)[0]), f.split("=", 1)[1]) for f in os.environ["LAB_GUARD_FACTS"].split(";") if f]
else:
    facts = gather()
for r in sys.argv[1:]:
    try:
        rn = net(r)
    except ValueError:
        print(f"lab_guard: not an address or prefix: {r!r}", file=sys.stderr)
        sys.exit(1)
    for fn, what in facts:
        if rn.version == fn.version and (rn.subnet_of(fn) or fn.subnet_of(rn)):
            print(f"lab_guard refuses lab range {rn}: it overlaps {show(fn)}, {what}; "
                  "use 198.51.100.0/24, 198.18.0.0/15, 2001:db8::/32 or a 10.x subnet of your own",
                  file=sys.stderr)
            sys.exit(1)
PY
}

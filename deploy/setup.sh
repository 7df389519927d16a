#!/usr/bin/env bash
# Idempotent setup for a development machine, CI, or the container build stage:
#   1. installs the Debian packages xlb needs, only those that are missing;
#   2. runs `npm ci` when node_modules is missing or older than package-lock.json;
#   3. compiles bpf/ (clang -O2 -g -target bpf) into build/bpf/;
#   4. builds the Node-API addon with node-gyp (libbpf linked statically);
#   5. compiles the TypeScript into dist/;
#   6. links the `xlb` command into /usr/local/bin (root only; otherwise it says how).
# Flags: --build-only (steps 3-5 only), --no-apt (skip apt only), --deps-only (steps 1 and 2
#   only: the image's build stage runs it first, so its package and npm layers stay cached
#   while the sources change),
#   --npm-hook (package.json's "install" script: steps 3-5, nothing when this script's own
#   `npm ci` runs it, because steps 3-5 follow anyway).
# XLB_SETUP_IMAGE=1 in the environment (the image's build stage sets it): only the build tools,
#   not what tests and benchmarks run.
# The explicit "install" script matters: for a package with a binding.gyp and no install
# script npm adds `node-gyp rebuild`, which on every npm install / ci / rebuild / first npx
# deletes build/ (BPF objects included) and rebuilds only the addon, downloading headers.
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt=1
want_npm=1
want_link=1
want_build=1
want_test_pkgs=1
[ -z "${XLB_SETUP_IMAGE:-}" ] || want_test_pkgs=0
for a in "$@"; do
  case "$a" in
    --build-only) want_apt=0; want_npm=0; want_link=0 ;;
    --npm-hook)
      [ -z "${XLB_SETUP_NPM:-}" ] || exit 0
      want_apt=0; want_npm=0; want_link=0 ;;
    --no-apt) want_apt=0 ;;
    --deps-only) want_build=0 ;;
    *) echo "setup: unknown flag $a" >&2; exit 2 ;;
  esac
done

say() { [ -n "${XLB_QUIET:-}" ] || echo "setup: $*"; }

# Build tools and the BPF toolchain.
PKGS=(clang llvm libbpf-dev libelf-dev zlib1g-dev libzstd-dev pkg-config make g++ python3)
# What tests, the demo and the benchmarks run, and the container suite's engine (test/container
# builds and runs the image with podman, under runc: crun refuses hosts with cgroup v1 and v2
# both mounted; its base comes from debootstrap). Not in the image's build stage (XLB_SETUP_IMAGE),
# which only builds. Asked by flag, not guessed from /.dockerenv: machines and CI runners that
# carry that file still run the tests.
[ "$want_test_pkgs" = 0 ] || PKGS+=(iproute2 iperf3 curl wrk nftables iptables nginx procps
  ethtool podman runc debootstrap)

if [ "$want_apt" = 1 ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # nginx-light's package starts a server on port 80 in the root namespace; xlb only
    # uses nginx inside its own namespaces, so stop the packaged one if it started.
    if [[ " ${missing[*]} " == *" nginx "* ]]; then
      if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
      # Without systemd the package's init script started it: stop that one by its pid file.
      if [ -s /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
    fi
  fi
fi

if [ "$want_npm" = 1 ]; then
  stamp=node_modules/.xlb-lock-sha
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    say "npm ci"
    XLB_SETUP_NPM=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$sum" > "$stamp"
  fi
fi

[ "$want_build" = 1 ] || { say "done (dependencies only)"; exit 0; }

# TypeScript compiles beside the BPF objects and the addon (it needs neither): on a 2-core
# CI machine that takes the longest step off the critical path.
tsc_out=$(mktemp)
npx --no-install tsc -p . >"$tsc_out" 2>&1 &
tsc_pid=$!
trap 'kill "$tsc_pid" 2>/dev/null || true; rm -f "$tsc_out"' EXIT
say "compiling bpf/ (TypeScript beside it)"
make -s -j "$(nproc)" -C bpf

# Build against the headers of the node that runs xlb (Debian's under /usr, the official
# image's under /usr/local), so nothing is downloaded; npm_config_nodedir overrides.
nodedir=${npm_config_nodedir:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")}
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "setup: no Node headers under $nodedir/include/node; set npm_config_nodedir to the directory holding include/node" >&2
  exit 1
fi
if [ ! -f build/Makefile ] || [ binding.gyp -nt build/Makefile ]; then
  say "configuring the addon"
  npx --no-install node-gyp configure --nodedir="$nodedir" --loglevel=error >/dev/null
fi
say "building the addon"
npx --no-install node-gyp build --loglevel=error -j 2 >/dev/null

say "compiling TypeScript"
tsc_rc=0
wait "$tsc_pid" || tsc_rc=$?
cat "$tsc_out"
[ "$tsc_rc" = 0 ] || { echo "setup: tsc failed (exit $tsc_rc)" >&2; exit "$tsc_rc"; }
chmod +x dist/src/cli/main.js 2>/dev/null || true

if [ "$want_link" = 1 ]; then
  cli="$PWD/dist/src/cli/main.js"
  if [ "$(id -u)" = 0 ]; then
    ln -sfn "$cli" /usr/local/bin/xlb
    say "xlb is on PATH: /usr/local/bin/xlb -> $cli"
  else
    echo "setup: not root, so xlb is not linked onto PATH; run: sudo ln -sfn $cli /usr/local/bin/xlb (or use npx xlb)" >&2
  fi
fi
say "done"

#!/usr/bin/env bash
# Runs the whole suite with node's test runner: unit, native, bpf, e2e, and the quick bench.
# Root-only suites need CAP_BPF/CAP_NET_ADMIN; CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "test: the suite loads BPF programs and creates network namespaces: run it as root (sudo npm test)" >&2
  exit 1
fi
# Socket LB attaches to a cgroup; an agent a test starts without saying so must never take the
# machine's root cgroup (tests that want it pass --socket-lb and a child --cgroup).
export XLB_SOCKET_LB=off
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
# Explicit file list (unit first, then the kernel-facing suites); only *.test.js files are tests.
files=()
for d in unit native bpf fuzz e2e conformance container bench; do
  [ -d "dist/test/$d" ] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "dist/test/$d" -name '*.test.js' | sort)
done
[ ${#files[@]} -gt 0 ] || { echo "no test files found under dist/test" >&2; exit 1; }
exec node --test --test-concurrency=1 "$@" "${files[@]}"

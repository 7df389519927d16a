#!/usr/bin/env bash
# Runs the whole suite with node's test runner: unit, native, bpf, e2e, and the quick bench.
# Root-only suites need CAP_BPF/CAP_NET_ADMIN; CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
dirs=()
for d in unit native bpf e2e bench; do
  [ -d "dist/test/$d" ] && dirs+=("dist/test/$d")
done
exec node --test --test-concurrency=1 "${dirs[@]}"

#!/usr/bin/env bash
# The demo: guide use case 1, CRM lookup for VIP routing. Installs what is
# missing, builds, and runs a few hundred simulated calls through one
# Passthru step against an embedded customer server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/install-deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target crm_vip_routing
build/examples/crm_vip_routing "${1:-300}"

#!/usr/bin/env bash
# The demo: the toy engine (examples/flow_engine) runs the guide's five use
# cases as flows on one Asio io_context, each Passthru step against its own
# customer server on loopback. Installs what is missing, builds, runs a few
# thousand simulated calls concurrently, prints per flow where the calls went
# and the latency percentiles, and checks every tally against what the
# servers were built to answer (exit 1 on any difference).
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/install-deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target flow_engine
build/examples/flow_engine/flow_engine --calls "${1:-3000}" --check

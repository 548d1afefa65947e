#!/usr/bin/env bash
# Runs passthru's whole test suite from a fresh Debian 12 machine: installs
# what is missing, builds with warnings as errors, and runs CTest (unit,
# integration over loopback, the demo, and the out-of-tree consumers).
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/install-deps
build_dir=${PASSTHRU_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${PASSTHRU_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 -j 2

#!/usr/bin/env bash
# Runs passthru's whole test suite from a fresh Debian 12 machine: installs
# what is missing, then builds and runs CTest (unit, integration over
# loopback, the demo, the out-of-tree consumers) three times: a normal
# build with warnings as errors, ASan+UBSan, and TSan; runs the benchmarks
# once in their smoke mode (bench/run --quick); and runs the libFuzzer
# targets for FUZZ_SECONDS (default 60) each.
#
#   bash tests/run.sh          everything (what CI runs)
#   bash tests/run.sh quick    the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/install-deps
mode=${1:-all}
jobs=$(nproc)

# suite NAME BUILD_DIR CTEST_EXCLUDE CMAKE_ARGS...
suite() {
  local name=$1 dir=$2 exclude=$3
  shift 3
  echo "=== $name ==="
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure --timeout 600 -j 2 ${exclude:+-E "$exclude"}
}

suite "normal build" build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
[[ "$mode" == quick ]] && exit 0

# The benchmarks in their smoke mode: bench/run --quick builds them, starts
# its nginx and silent server, runs every program on small sizes and stops
# what it started. It proves they still work; its figures mean nothing, and
# nothing here is a timed test.
echo "=== benchmarks (smoke) ==="
bash bench/run --quick

# libFuzzer targets (Clang, ASan+UBSan) for the router, request builder and
# step validation, each for a bounded time; any crash fails the run.
FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash tests/fuzz/run.sh

# The consumers build their own copies without sanitizers: run once, above.
# The soak runs a tenth of its requests there, and RSS means nothing there.
export PASSTHRU_SOAK_REQUESTS=20000 PASSTHRU_SOAK_CHECK_RSS=0
suite "ASan+UBSan" build-asan consumer -DCMAKE_BUILD_TYPE=Debug "-DPASSTHRU_SANITIZE=address;undefined"
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
  suite "TSan" build-tsan consumer -DCMAKE_BUILD_TYPE=Debug -DPASSTHRU_SANITIZE=thread

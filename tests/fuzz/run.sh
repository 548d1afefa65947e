#!/usr/bin/env bash
# Builds passthru's libFuzzer targets with Clang (ASan + UBSan + libFuzzer)
# in build-fuzz/ and runs each for FUZZ_SECONDS (default 60) from a copy of
# its seed corpus. Exits non-zero when any target crashes, leaks, times out
# or trips a sanitizer; crashing inputs are kept in build-fuzz/artifacts/.
#
#   FUZZ_SECONDS=30 bash tests/fuzz/run.sh
#   FUZZ_TARGETS="fuzz_step_config" bash tests/fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

fuzz_seconds=${FUZZ_SECONDS:-60}
build_dir=${PASSTHRU_FUZZ_BUILD_DIR:-build-fuzz}
read -r -a targets <<<"${FUZZ_TARGETS:-fuzz_response_router fuzz_request_builder fuzz_step_config}"

# Build dependencies, then Clang and its sanitizer/libFuzzer runtimes.
.ci/install-deps
missing=()
for package in clang libclang-rt-14-dev; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The library is instrumented for coverage (fuzzer-no-link) and built with
# ASan + UBSan; the fuzz targets add -fsanitize=fuzzer themselves.
cmake_args=(
  -G Ninja
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link"
  "-DPASSTHRU_SANITIZE=address;undefined"
  -DPASSTHRU_BUILD_FUZZERS=ON
  -DPASSTHRU_BUILD_TESTS=OFF -DPASSTHRU_BUILD_EXAMPLES=OFF -DPASSTHRU_INSTALL=OFF
)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
bin_dir="$build_dir/tests/fuzz"
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for target in "${targets[@]}"; do
  corpus="$work/$target"
  artifacts="$repo/$build_dir/artifacts/$target"
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  echo "=== $target: ${fuzz_seconds}s from $(find "$corpus" -type f | wc -l) seeds"
  if "$bin_dir/$target" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$work/$target.log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$work/$target.log" || true
    echo "=== $target: ok"
  else
    tail -n 60 "$work/$target.log"
    for artifact in "$artifacts"/*; do
      [[ -f "$artifact" ]] || continue
      echo "--- $artifact:"
      od -An -tx1 -v "$artifact" | head -n 40
    done
    echo "=== $target: FAILED"
    failed+=("$target")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "all fuzz targets ran ${fuzz_seconds}s without a crash"

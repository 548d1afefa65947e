# Builds and runs README.md's quickstart as an out-of-tree consumer.
#   MODE=find_package      install passthru into a fresh prefix, then find_package(passthru CONFIG REQUIRED)
#   MODE=pkg_config        install passthru into a fresh prefix, then compile with `pkg-config passthru`
#   MODE=add_subdirectory  add_subdirectory() the source tree
cmake_minimum_required(VERSION 3.20)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# The quickstart is the README's own code block, so the README cannot drift
# from code that compiles.
file(READ "${PASSTHRU_SOURCE_DIR}/README.md" readme)
string(REGEX MATCH "<!-- quickstart:begin -->[^`]*```cpp\n(.*)```[^`]*<!-- quickstart:end -->" _ "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md has no quickstart block between quickstart:begin/end markers")
endif()
file(WRITE "${WORK_DIR}/quickstart.cpp" "${CMAKE_MATCH_1}")

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkg_config")
  run(${CMAKE_COMMAND} --install "${PASSTHRU_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
endif()

if(MODE STREQUAL "pkg_config")
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/lib/pkgconfig:${WORK_DIR}/prefix/lib/x86_64-linux-gnu/pkgconfig")
  run(pkg-config --cflags --libs passthru)
  string(STRIP "${last_output}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(c++ -std=c++17 -Wall -Wextra -Werror "${WORK_DIR}/quickstart.cpp" ${flags} -pthread -o "${WORK_DIR}/quickstart")
  set(exe "${WORK_DIR}/quickstart")
else()
  run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}/${MODE}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
      -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
      -DPASSTHRU_SOURCE_DIR=${PASSTHRU_SOURCE_DIR}
      -DQUICKSTART_SOURCE=${WORK_DIR}/quickstart.cpp)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  set(exe "${WORK_DIR}/build/quickstart")
endif()

# Nothing listens on port 1 of loopback: the quickstart must route the
# refused connection to its on-error applet and say so.
run("${exe}" "http://127.0.0.1:1/passthru")
if(NOT last_output MATCHES "route=on_error target=apology-greeting")
  message(FATAL_ERROR "quickstart printed an unexpected outcome:\n${last_output}")
endif()
message(STATUS "consumer (${MODE}) ok: ${last_output}")

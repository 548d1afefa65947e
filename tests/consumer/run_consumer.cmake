# Builds and runs README.md's programs (the quickstart and the three
# "Embedding in your engine" snippets) and the embedding examples
# (examples/embed_asio.cpp, embed_uv.cpp, embed_c.c) as an out-of-tree consumer.
#   MODE=find_package      install passthru into a fresh prefix, then
#                          find_package(passthru CONFIG REQUIRED COMPONENTS asio uv)
#   MODE=pkg_config        install passthru into a fresh prefix, then compile with
#                          `pkg-config passthru` (C with `cc -std=c99 -pedantic`) and `passthru-uv`
#   MODE=add_subdirectory  add_subdirectory() the source tree
cmake_minimum_required(VERSION 3.20)

# run(<command>...): fails the test unless the command succeeds; sets
# last_stdout and last_output (stdout and standard error) in the caller.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_stdout "${out}" PARENT_SCOPE)
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

set(components_csv "${COMPONENTS}")  # the adapters built: "asio,uv"
string(REPLACE "," ";" COMPONENTS "${COMPONENTS}")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(examples "${PASSTHRU_SOURCE_DIR}/examples")

# The README's programs are its own code blocks, so the README cannot drift
# from code that compiles and runs.
file(READ "${PASSTHRU_SOURCE_DIR}/README.md" readme)
function(extract_snippet marker language file)
  string(REGEX MATCH "<!-- ${marker}:begin -->[^`]*```${language}\n(.*)```[^`]*<!-- ${marker}:end -->" _ "${readme}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "README.md has no ```${language} block between ${marker}:begin/end markers")
  endif()
  file(WRITE "${WORK_DIR}/${file}" "${CMAKE_MATCH_1}")
endfunction()
extract_snippet(quickstart cpp quickstart.cpp)
extract_snippet(embed-c c embed-c.c)
foreach(component IN LISTS COMPONENTS)
  extract_snippet(embed-${component} cpp embed-${component}.cpp)
endforeach()

if(NOT EXISTS "${examples}/embed_c.c")
  message(FATAL_ERROR "examples/embed_c.c is missing")
endif()

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkg_config")
  run(${CMAKE_COMMAND} --install "${PASSTHRU_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
endif()

if(MODE STREQUAL "pkg_config")
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/lib/pkgconfig:${WORK_DIR}/prefix/lib/x86_64-linux-gnu/pkgconfig")
  # compile(<package> <compiler and flags...> <source> <exe>)
  function(compile package)
    run(pkg-config --cflags --libs ${package})
    string(STRIP "${last_stdout}" flags)
    separate_arguments(flags UNIX_COMMAND "${flags}")
    list(POP_BACK ARGN exe)
    run(${ARGN} ${flags} -o "${WORK_DIR}/${exe}")
  endfunction()
  set(cxx c++ -std=c++17 -Wall -Wextra -Werror)
  # C programs link the C++ library with the C compiler: passthru.pc must
  # name the C++ runtime for a static libpassthru.a.
  set(c cc -std=c99 -pedantic -Wall -Wextra -Werror)
  compile(passthru ${cxx} "${WORK_DIR}/quickstart.cpp" -pthread quickstart)
  compile(passthru ${c} "${WORK_DIR}/embed-c.c" -pthread readme_c)
  compile(passthru ${c} "${examples}/embed_c.c" -pthread embed_c)
  set(programs quickstart readme_c embed_c)
  if("uv" IN_LIST COMPONENTS)
    compile(passthru-uv ${cxx} "${WORK_DIR}/embed-uv.cpp" readme_uv)
    compile(passthru-uv ${cxx} "${examples}/embed_uv.cpp" embed_uv)
    list(APPEND programs readme_uv embed_uv)
  endif()
  set(bin "${WORK_DIR}")
else()
  run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}/${MODE}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
      -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
      -DPASSTHRU_SOURCE_DIR=${PASSTHRU_SOURCE_DIR}
      -DSNIPPETS_DIR=${WORK_DIR}
      -DEXAMPLES_DIR=${examples}
      -DCOMPONENTS=${components_csv})
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  set(bin "${WORK_DIR}/build")
  set(programs quickstart readme_c embed_c)
  foreach(component IN LISTS COMPONENTS)
    list(APPEND programs readme_${component} embed_${component})
  endforeach()
endif()

# Nothing listens on port 1 of loopback: every program must route its calls
# to on-error and say so on standard output (the log lines go to standard
# error, so they cannot stand in for it).
set(summary "")
foreach(program IN LISTS programs)
  run("${bin}/${program}" "http://127.0.0.1:1/passthru")
  if(program MATCHES "^embed_(asio|uv)$")
    set(expectations)
    foreach(i 1 2 3)
      list(APPEND expectations "call=call-${i} route=on_error target=apology-greeting reason=\"connection refused\"")
    endforeach()
  elseif(program STREQUAL "embed_c")
    set(expectations "route=on_error target=[^ \n]")  # the example's own applet names
  else()
    set(expectations "route=on_error target=apology-greeting")
  endif()
  foreach(expected IN LISTS expectations)
    if(NOT last_stdout MATCHES "${expected}")
      message(FATAL_ERROR "${program} did not print '${expected}':\n${last_output}")
    endif()
  endforeach()
  if(last_stdout MATCHES "route=(next_applet|external_flow|default|on_timeout|cancelled)")
    message(FATAL_ERROR "${program} routed a refused call elsewhere than on-error:\n${last_output}")
  endif()
  string(APPEND summary "${program}: ${last_stdout}")
endforeach()
message(STATUS "consumer (${MODE}) ok:\n${summary}")

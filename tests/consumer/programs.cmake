# The programs each CMake consumer builds, exactly as an engine would:
# README.md's snippets (extracted into SNIPPETS_DIR by run_consumer.cmake)
# and the embedding examples (from EXAMPLES_DIR), warnings as errors, the C
# ones as C99; those of an adapter for each of COMPONENTS. Included by
# find_package/ and add_subdirectory/ once the passthru targets exist.
function(consumer_program name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${ARGN})
  if(source MATCHES "\\.c$")
    set_target_properties(${name} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  else()
    target_compile_features(${name} PRIVATE cxx_std_17)
    set_target_properties(${name} PROPERTIES CXX_EXTENSIONS OFF)
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${name} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  endif()
endfunction()

find_package(Threads REQUIRED)
consumer_program(quickstart ${SNIPPETS_DIR}/quickstart.cpp passthru::passthru)
consumer_program(readme_c ${SNIPPETS_DIR}/embed-c.c passthru::passthru Threads::Threads)
consumer_program(embed_c ${EXAMPLES_DIR}/embed_c.c passthru::passthru Threads::Threads)
foreach(component IN LISTS COMPONENTS)
  consumer_program(readme_${component} ${SNIPPETS_DIR}/embed-${component}.cpp passthru::${component})
  consumer_program(embed_${component} ${EXAMPLES_DIR}/embed_${component}.cpp passthru::${component})
endforeach()

# Warnings as errors and sanitizers, for passthru's own targets only.
function(passthru_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Werror)
  endif()
endfunction()

function(passthru_set_sanitizers target)
  if(PASSTHRU_SANITIZE)
    list(JOIN PASSTHRU_SANITIZE "," _sanitizers)
    target_compile_options(${target} PRIVATE -fsanitize=${_sanitizers} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${_sanitizers})
  endif()
endfunction()

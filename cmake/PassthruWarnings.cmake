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
    if("thread" IN_LIST PASSTHRU_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU"
       AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 11)
      # Asio's fenced blocks call std::atomic_thread_fence, which TSan does
      # not model; GCC says so (-Wtsan) wherever Asio is included, and
      # -Werror would turn that notice into a failed build.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()

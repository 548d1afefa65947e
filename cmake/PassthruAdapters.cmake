# The optional event loop adapters, each an INTERFACE target (the adapters
# are header-only, so they always match the engine's own Asio or libuv):
#   passthru::asio  <passthru/asio.hpp>, passthru::AsioEventLoop (standalone Asio)
#   passthru::uv    <passthru/uv.hpp>,   passthru::UvEventLoop   (libuv)
# PASSTHRU_WITH_ASIO / PASSTHRU_WITH_UV: AUTO (built when the library is
# found), ON (required), OFF. Sets PASSTHRU_COMPONENTS to what is built.
include("${CMAKE_CURRENT_LIST_DIR}/PassthruFindEventLoops.cmake")

set(PASSTHRU_COMPONENTS "")

# passthru_adapter(<component> <header> <finder> <dependency target> <option> <what to install>)
function(passthru_adapter component header finder dependency option package)
  set(mode "${${option}}")
  string(TOUPPER "${mode}" mode)
  if(mode STREQUAL "OFF" OR mode STREQUAL "FALSE" OR mode STREQUAL "NO" OR mode STREQUAL "0")
    message(STATUS "passthru: component ${component} off (${option}=${${option}})")
    return()
  endif()
  cmake_language(CALL ${finder})
  if(NOT TARGET ${dependency})
    if(mode STREQUAL "AUTO")
      message(STATUS "passthru: component ${component} not built: ${package} not found "
                     "(install it, or set ${option}=OFF to silence this)")
      return()
    endif()
    message(FATAL_ERROR "passthru: ${option}=${${option}} but ${package} was not found")
  endif()
  add_library(passthru_${component} INTERFACE)
  add_library(passthru::${component} ALIAS passthru_${component})
  set_target_properties(passthru_${component} PROPERTIES EXPORT_NAME ${component})
  target_link_libraries(passthru_${component} INTERFACE passthru ${dependency})
  message(STATUS "passthru: component ${component} (<passthru/${header}>) built")
  set(PASSTHRU_COMPONENTS ${PASSTHRU_COMPONENTS} ${component} PARENT_SCOPE)
endfunction()

passthru_adapter(asio asio.hpp passthru_find_asio passthru_deps::asio PASSTHRU_WITH_ASIO
                 "standalone Asio (Debian: libasio-dev)")
passthru_adapter(uv uv.hpp passthru_find_libuv passthru_deps::libuv PASSTHRU_WITH_UV "libuv (Debian: libuv1-dev)")

# Finds the event loop libraries of passthru's optional adapters, as imported
# targets with passthru's own names so that no target of the engine's clashes:
#   passthru_find_asio()  -> passthru_deps::asio   (standalone Asio, header-only)
#   passthru_find_libuv() -> passthru_deps::libuv
# Neither fails when the library is missing; the caller tests the target.
# Used by passthru's build and, installed next to it, by passthruConfig.cmake.

function(passthru_find_asio)
  if(TARGET passthru_deps::asio)
    return()
  endif()
  # Debian's libasio-dev ships neither a CMake package nor a .pc file.
  find_path(PASSTHRU_ASIO_INCLUDE_DIR asio.hpp DOC "Directory holding standalone Asio's asio.hpp")
  if(NOT PASSTHRU_ASIO_INCLUDE_DIR)
    return()
  endif()
  find_package(Threads QUIET)
  add_library(passthru_deps::asio INTERFACE IMPORTED)
  set_target_properties(passthru_deps::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${PASSTHRU_ASIO_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endfunction()

function(passthru_find_libuv)
  if(TARGET passthru_deps::libuv)
    return()
  endif()
  # A libuv the engine built itself (libuv's own CMake package, or add_subdirectory).
  foreach(candidate IN ITEMS libuv::uv uv libuv::uv_a uv_a)
    if(TARGET ${candidate})
      add_library(passthru_deps::libuv INTERFACE IMPORTED)
      set_target_properties(passthru_deps::libuv PROPERTIES INTERFACE_LINK_LIBRARIES ${candidate})
      return()
    endif()
  endforeach()
  # The system's libuv (Debian libuv1-dev): its .pc file, else a plain search.
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(PASSTHRU_LIBUV QUIET IMPORTED_TARGET libuv>=1.0)
    if(TARGET PkgConfig::PASSTHRU_LIBUV)
      add_library(passthru_deps::libuv INTERFACE IMPORTED)
      set_target_properties(passthru_deps::libuv PROPERTIES INTERFACE_LINK_LIBRARIES PkgConfig::PASSTHRU_LIBUV)
      return()
    endif()
  endif()
  find_path(PASSTHRU_LIBUV_INCLUDE_DIR uv.h DOC "Directory holding libuv's uv.h")
  find_library(PASSTHRU_LIBUV_LIBRARY NAMES uv libuv DOC "libuv's library")
  if(PASSTHRU_LIBUV_INCLUDE_DIR AND PASSTHRU_LIBUV_LIBRARY)
    add_library(passthru_deps::libuv UNKNOWN IMPORTED)
    set_target_properties(passthru_deps::libuv PROPERTIES
      IMPORTED_LOCATION "${PASSTHRU_LIBUV_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${PASSTHRU_LIBUV_INCLUDE_DIR}")
  endif()
endfunction()

# Install rules: headers, the library, a CMake package (config, version and
# targets files) and a pkg-config file for engines built without CMake.
include(CMakePackageConfigHelpers)

set(PASSTHRU_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/passthru" CACHE STRING
    "Where passthruConfig.cmake is installed")

# The adapters' headers only with their components: an installed header
# always compiles.
install(DIRECTORY include/passthru DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  PATTERN "asio.hpp" EXCLUDE
  PATTERN "uv.hpp" EXCLUDE)
install(FILES
  "${PASSTHRU_GENERATED_DIR}/passthru/version.hpp"
  "${PASSTHRU_GENERATED_DIR}/passthru/export.hpp"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/passthru)

install(TARGETS passthru EXPORT passthruTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT passthruTargets
  NAMESPACE passthru::
  FILE passthruTargets.cmake
  DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})
export(EXPORT passthruTargets NAMESPACE passthru:: FILE "${PROJECT_BINARY_DIR}/passthruTargets.cmake")

# Components, one export set each, loaded by passthruConfig.cmake only when
# asked for (after it has found the component's event loop library).
foreach(component IN LISTS PASSTHRU_COMPONENTS)
  string(SUBSTRING "${component}" 0 1 first)
  string(SUBSTRING "${component}" 1 -1 rest)
  string(TOUPPER "${first}" first)
  set(export_set "passthru${first}${rest}Targets")  # passthruAsioTargets, passthruUvTargets
  install(FILES include/passthru/${component}.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/passthru)
  install(TARGETS passthru_${component} EXPORT ${export_set})
  install(EXPORT ${export_set}
    NAMESPACE passthru::
    FILE ${export_set}.cmake
    DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})
  export(EXPORT ${export_set} NAMESPACE passthru:: FILE "${PROJECT_BINARY_DIR}/${export_set}.cmake")
endforeach()

configure_package_config_file(cmake/passthruConfig.cmake.in
  "${PROJECT_BINARY_DIR}/passthruConfig.cmake"
  INSTALL_DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/passthruConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
configure_file(cmake/PassthruFindEventLoops.cmake "${PROJECT_BINARY_DIR}/PassthruFindEventLoops.cmake" COPYONLY)
install(FILES
  "${PROJECT_BINARY_DIR}/passthruConfig.cmake"
  "${PROJECT_BINARY_DIR}/passthruConfigVersion.cmake"
  cmake/PassthruFindEventLoops.cmake
  DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})

# A static libpassthru.a needs libcurl, fmt and spdlog on the consumer's link
# line even without `pkg-config --static` (whose expansion of libcurl's own
# private libraries needs static archives Debian does not ship).
if(BUILD_SHARED_LIBS)
  set(PASSTHRU_PC_REQUIRES "")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "libcurl >= 7.87.0, libcrypto, fmt, spdlog")
  set(PASSTHRU_PC_CFLAGS "")
else()
  set(PASSTHRU_PC_REQUIRES "libcurl >= 7.87.0, libcrypto, fmt, spdlog")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "")
  set(PASSTHRU_PC_CFLAGS "-DPASSTHRU_STATIC_DEFINE")
endif()
# A C engine links a static libpassthru.a with the C compiler, which does not
# add the C++ runtime: name what the C++ compiler links beyond the C one
# (-lstdc++ -lm with GCC).
set(PASSTHRU_PC_LIBS_EXTRA "")
if(NOT BUILD_SHARED_LIBS)
  set(cxx_runtime "")
  foreach(lib IN LISTS CMAKE_CXX_IMPLICIT_LINK_LIBRARIES)
    if(NOT lib IN_LIST CMAKE_C_IMPLICIT_LINK_LIBRARIES AND NOT lib IN_LIST cxx_runtime)
      list(APPEND cxx_runtime "${lib}")
      if(IS_ABSOLUTE "${lib}" OR lib MATCHES "^-")
        string(APPEND PASSTHRU_PC_LIBS_EXTRA " ${lib}")
      else()
        string(APPEND PASSTHRU_PC_LIBS_EXTRA " -l${lib}")
      endif()
    endif()
  endforeach()
endif()
# Relocatable: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH PASSTHRU_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/passthru.pc.in "${PROJECT_BINARY_DIR}/passthru.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/passthru.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# `pkg-config passthru-uv`: passthru and libuv, for <passthru/uv.hpp>.
if("uv" IN_LIST PASSTHRU_COMPONENTS)
  configure_file(cmake/passthru-uv.pc.in "${PROJECT_BINARY_DIR}/passthru-uv.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/passthru-uv.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

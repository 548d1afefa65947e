# Install rules: headers, the library, a CMake package (config, version and
# targets files) and a pkg-config file for engines built without CMake.
include(CMakePackageConfigHelpers)

set(PASSTHRU_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/passthru" CACHE STRING
    "Where passthruConfig.cmake is installed")

install(DIRECTORY include/passthru DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
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

configure_package_config_file(cmake/passthruConfig.cmake.in
  "${PROJECT_BINARY_DIR}/passthruConfig.cmake"
  INSTALL_DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/passthruConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/passthruConfig.cmake"
  "${PROJECT_BINARY_DIR}/passthruConfigVersion.cmake"
  DESTINATION ${PASSTHRU_INSTALL_CMAKEDIR})

# A static libpassthru.a needs libcurl, fmt and spdlog on the consumer's link
# line even without `pkg-config --static` (whose expansion of libcurl's own
# private libraries needs static archives Debian does not ship).
if(BUILD_SHARED_LIBS)
  set(PASSTHRU_PC_REQUIRES "")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "libcurl, libcrypto, fmt, spdlog")
  set(PASSTHRU_PC_CFLAGS "")
else()
  set(PASSTHRU_PC_REQUIRES "libcurl, libcrypto, fmt, spdlog")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "")
  set(PASSTHRU_PC_CFLAGS "-DPASSTHRU_STATIC_DEFINE")
endif()
# Relocatable: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH PASSTHRU_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/passthru.pc.in "${PROJECT_BINARY_DIR}/passthru.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/passthru.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

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

if(BUILD_SHARED_LIBS)
  set(PASSTHRU_PC_LIBS_PRIVATE "")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "libcurl, fmt, spdlog")
  set(PASSTHRU_PC_CFLAGS "")
else()
  set(PASSTHRU_PC_LIBS_PRIVATE "-pthread")
  set(PASSTHRU_PC_REQUIRES_PRIVATE "libcurl, fmt, spdlog")
  set(PASSTHRU_PC_CFLAGS "-DPASSTHRU_STATIC_DEFINE")
endif()
configure_file(cmake/passthru.pc.in "${PROJECT_BINARY_DIR}/passthru.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/passthru.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

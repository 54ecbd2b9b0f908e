# cmake --install layout, the CMake package (find_package(pairrm) -> pairrm::pairrm), pkg-config, and the
# .deb (cpack -G DEB). Included from the top-level CMakeLists.txt after the targets exist.
include(CMakePackageConfigHelpers)

# The bundled tiny random-weight model lives in share/pairrm/models/tiny, found relative to the binary at
# run time (src/cli/bundled_model.cpp). In a build tree the binary finds the source tree's models/ through
# this link, so no absolute path is compiled in.
if(NOT EXISTS "${CMAKE_BINARY_DIR}/share/pairrm/models")
  file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/share/pairrm")
  file(CREATE_LINK "${CMAKE_SOURCE_DIR}/models" "${CMAKE_BINARY_DIR}/share/pairrm/models" SYMBOLIC)
endif()

install(TARGETS pairrm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS pairrm_shared EXPORT pairrmTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/pairrm/pairrm.h include/pairrm/ranking.h include/pairrm/chat_template.h include/pairrm/pairrm_c.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pairrm)
install(DIRECTORY models/tiny DESTINATION ${CMAKE_INSTALL_DATADIR}/pairrm/models)

set(PAIRRM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pairrm)
install(EXPORT pairrmTargets NAMESPACE pairrm:: DESTINATION ${PAIRRM_CMAKE_DIR})
configure_package_config_file(cmake/pairrmConfig.cmake.in "${CMAKE_BINARY_DIR}/pairrmConfig.cmake"
  INSTALL_DESTINATION ${PAIRRM_CMAKE_DIR})
write_basic_package_version_file("${CMAKE_BINARY_DIR}/pairrmConfigVersion.cmake" COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_BINARY_DIR}/pairrmConfig.cmake" "${CMAKE_BINARY_DIR}/pairrmConfigVersion.cmake"
  DESTINATION ${PAIRRM_CMAKE_DIR})

# The .pc file finds the prefix from its own place, whatever depth the library directory has (lib,
# lib/x86_64-linux-gnu), so `cmake --install --prefix` anywhere works.
file(RELATIVE_PATH PAIRRM_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" PAIRRM_PC_TO_PREFIX "${PAIRRM_PC_TO_PREFIX}")
configure_file(cmake/pairrm.pc.in "${CMAKE_BINARY_DIR}/pairrm.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/pairrm.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB: a Debian package installing under /usr; dpkg-shlibdeps derives Depends from the binaries.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pairrm)
set(CPACK_PACKAGE_VENDOR "pairrm.cpp")
set(CPACK_PACKAGE_CONTACT "pairrm.cpp maintainers <pairrm@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PairRM pairwise reward model: CPU engine, CLI, server and C/C++ library")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)

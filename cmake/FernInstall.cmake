# install(EXPORT) with a namespaced package config: find_package(fern) gives fern::fern.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS fern EXPORT fernTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(layer arch core sync io)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fern/${layer}
    FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${FERN_CONFIG_ROOT}/fern/config.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fern)
install(FILES ${PROJECT_SOURCE_DIR}/tools/fern_gdb.py DESTINATION ${CMAKE_INSTALL_DATADIR}/fern)
install(EXPORT fernTargets NAMESPACE fern:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fernConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fernConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fernConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fernConfig.cmake ${PROJECT_BINARY_DIR}/fernConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)

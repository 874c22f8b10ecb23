# Install rules and the CMake package (issue 27): after `cmake --install build --prefix P`,
#   find_package(Sluice CONFIG REQUIRED [COMPONENTS kafka monitor])
#   target_link_libraries(app PRIVATE Sluice::sluice [Sluice::kafka Sluice::monitor])
# is all a user writes; headers are included as <sluice/api/job.hpp>.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SLUICE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Sluice)

# Sluice::sluice and everything it links. The libraries are static, so their private
# dependencies (LevelDB, CAF) are still needed at link time and the package config finds
# them; no CAF or LevelDB header reaches a user's compile.
install(TARGETS sluice_core sluice_channels sluice_operators sluice_sources
                sluice_sinks sluice_checkpoint sluice_graph sluice_net sluice_actors sluice_api
        EXPORT SluiceTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The Kafka source and sink (Sluice::kafka) and the librdkafka wrapper they link
# (Sluice::kafka_client): a component of its own, so only a job that uses Kafka links
# librdkafka.
install(TARGETS sluice_kafka_connectors sluice_kafka
        EXPORT SluiceKafkaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The monitor (metrics, status page) is a component of its own: only it needs cpp-httplib.
install(TARGETS sluice_monitor
        EXPORT SluiceMonitorTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT SluiceTargets NAMESPACE Sluice:: DESTINATION ${SLUICE_CMAKE_DIR})
install(EXPORT SluiceMonitorTargets NAMESPACE Sluice:: DESTINATION ${SLUICE_CMAKE_DIR})
install(EXPORT SluiceKafkaTargets NAMESPACE Sluice:: DESTINATION ${SLUICE_CMAKE_DIR})

# Headers: <prefix>/include/sluice/<folder>/... The actors/ headers that include CAF are
# the runtime's own and stay out (actors/runtime.hpp, which api/ includes, is CAF-free).
foreach(folder core channels kafka operators sources sinks checkpoint graph net actors api monitor)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice/${folder}
          FILES_MATCHING PATTERN "*.hpp"
          REGEX "/actors/(actor_transport|bridge|coordinator|messages|remote|task|task_actor|tsan)\\.hpp$" EXCLUDE)
endforeach()

if(TARGET sluice-kafka-mock)
  install(TARGETS sluice-kafka-mock RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# A user of multi-node runs needs it wherever the library is installed.
if(TARGET sluice-cluster-key)
  install(TARGETS sluice-cluster-key RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/SluiceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/SluiceConfig.cmake
  INSTALL_DESTINATION ${SLUICE_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SluiceConfig.cmake
              ${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
              # Debian's libcaf-dev has no CMake package: the config finds CAF with this.
              ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
        DESTINATION ${SLUICE_CMAKE_DIR})

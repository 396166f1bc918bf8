# systemd units, DEB/RPM packages and a real install under systemd (deploy/systemd,
# deploy/packaging, cmake/Packaging.cmake). Each script takes the build dir: it stages or packages
# the already built agents from there (install() rules, cpack).
add_test(NAME deploy_units COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/units_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(deploy_units PROPERTIES LABELS deploy TIMEOUT 120)

# The .deb and the .rpm are built once per run, by the fixture deploy_cpack (cpack_packages.sh, into
# ${PROJECT_BINARY_DIR}/packages): deploy_packages checks both, deploy_systemd_container installs
# the .deb. Run by hand, those two scripts need cpack_packages.sh run first and say so.
add_test(NAME deploy_cpack COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cpack_packages.sh ${PROJECT_BINARY_DIR})
add_test(NAME deploy_packages COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/packages_test.sh ${PROJECT_BINARY_DIR})
add_test(NAME deploy_systemd_container COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/systemd_container_test.sh
                                               ${PROJECT_BINARY_DIR})
# Never at the same time as each other: deploy_cpack rewrites the packages the other two read, and
# podman images and the apt lock are shared.
set_tests_properties(deploy_cpack PROPERTIES LABELS deploy TIMEOUT 900 FIXTURES_SETUP dogwatch_packages
                                             RESOURCE_LOCK dogwatch_packages)
set_tests_properties(deploy_packages deploy_systemd_container
                     PROPERTIES LABELS deploy TIMEOUT 900 FIXTURES_REQUIRED dogwatch_packages
                                RESOURCE_LOCK dogwatch_packages)

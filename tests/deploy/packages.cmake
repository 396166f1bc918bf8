# systemd units, DEB/RPM packages and a real install under systemd (deploy/systemd,
# deploy/packaging, cmake/Packaging.cmake). Each script takes the build dir: it stages or packages
# the already built agents from there (install() rules, cpack).
add_test(NAME deploy_units COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/units_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(deploy_units PROPERTIES LABELS deploy TIMEOUT 120)

add_test(NAME deploy_packages COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/packages_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(deploy_packages PROPERTIES LABELS deploy TIMEOUT 900)

add_test(NAME deploy_systemd_container COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/systemd_container_test.sh
                                               ${PROJECT_BINARY_DIR})
# Both build packages with cpack in their own directories, but podman images and the apt lock are
# shared: never at the same time as each other.
set_tests_properties(deploy_systemd_container PROPERTIES LABELS deploy TIMEOUT 900 RESOURCE_LOCK dogwatch_packages)
set_tests_properties(deploy_packages PROPERTIES RESOURCE_LOCK dogwatch_packages)

# Container image + docker-compose stack, end to end with real dd-trace and hot-shots clients
# (tests/deploy/compose_test.sh). Needs root, podman and docker-compose (scripts/deps.d/
# containers.txt) and `npm ci --prefix tests/e2e`; the image is built from this build directory's
# executables, so they must be built first (scripts/test.sh builds everything before ctest).
add_test(NAME deploy_compose_stack
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/compose_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(deploy_compose_stack PROPERTIES LABELS deploy TIMEOUT 900 RUN_SERIAL TRUE)

# The image entrypoint's health checks, run outside a container against a real suite from this
# build directory (tests/deploy/entrypoint_test.sh): no podman needed.
add_test(NAME deploy_entrypoint_health
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/entrypoint_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(deploy_entrypoint_health PROPERTIES LABELS deploy TIMEOUT 300)

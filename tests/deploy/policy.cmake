# SELinux module and Kubernetes manifests (deploy/selinux, deploy/kubernetes).
add_test(NAME deploy_selinux COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/selinux_test.sh)
set_tests_properties(deploy_selinux PROPERTIES LABELS deploy TIMEOUT 300)

# Passes the built system-probe: its real syscalls are checked against the seccomp profile.
add_test(NAME deploy_kubernetes COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kubernetes_test.sh $<TARGET_FILE:system-probe>)
set_tests_properties(deploy_kubernetes PROPERTIES LABELS deploy TIMEOUT 300)

# Install layout and DEB/RPM packages (CPack). Included at the end of the top-level CMakeLists.txt.
#
# The layout is fixed because units, images and policies refer to it:
#   /opt/dogwatch/bin/{agent,trace-agent,process-agent,system-probe}   0755 root:root
#   /etc/dogwatch/{dogwatch,system-probe}.yaml                         0640 root:dogwatch, conffiles
#   /etc/dogwatch/{dogwatch,system-probe}.yaml.example                 0644 root:root, conffiles
#   /opt/dogwatch/libexec/system-probe-enabled                         0755 root:root
#   /usr/lib/tmpfiles.d/dogwatch.conf                                  0644
#   /etc/logrotate.d/dogwatch                                          0644, conffile
#   <unit dir>/dogwatch-{agent,trace-agent,process-agent,system-probe}.service   0644
#   /var/lib/dogwatch (state), /var/log/dogwatch (logs)                0750 dogwatch:dogwatch
#   /usr/share/selinux/packages/dogwatch/dogwatch.pp                   when it was built
# /var/run/dogwatch is not shipped: it lives on a tmpfs and systemd creates it (RuntimeDirectory=).
#
# Destinations are absolute on purpose: `DESTDIR=/stage cmake --install build` must produce
# /stage/opt/dogwatch/bin/agent whatever CMAKE_INSTALL_PREFIX the build dir was configured with
# (the container image stages the binaries that way). Ownership other than root cannot be expressed
# by install(): the packages' maintainer scripts (DEB) and %attr (RPM) set it.
#
#   cmake --build build --target agent trace-agent process-agent system-probe
#   (cd build && cpack -G DEB)   # dogwatch_<version>-1_<arch>.deb
#   (cd build && cpack -G RPM)   # dogwatch-<version>-1.<arch>.rpm

# `cmake --install`, `ninja install` and cpack must not build everything (tests, benchmarks) first:
# the packages need only the four agents, built explicitly (see tests/deploy/packages_test.sh).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(DOGWATCH_PKG_BIN_DIR /opt/dogwatch/bin)
set(DOGWATCH_PKG_LIBEXEC_DIR /opt/dogwatch/libexec)
set(DOGWATCH_PKG_CONF_DIR /etc/dogwatch)
set(DOGWATCH_PKG_STATE_DIR /var/lib/dogwatch)
set(DOGWATCH_PKG_LOG_DIR /var/log/dogwatch)
set(DOGWATCH_PKG_DOC_DIR /usr/share/doc/dogwatch)
set(DOGWATCH_PKG_SELINUX_DIR /usr/share/selinux/packages/dogwatch)
set(DOGWATCH_PKG_UNITS dogwatch-agent.service dogwatch-trace-agent.service dogwatch-process-agent.service
                       dogwatch-system-probe.service)
# Debian 12 ships units in /lib/systemd/system (the /usr-merge moratorium keeps packaged files out
# of /usr/lib/systemd/system until trixie); RPM distributions use /usr/lib/systemd/system. The unit
# directory is therefore chosen when the files are installed, not when CMake configures: the
# environment variable DOGWATCH_SYSTEMD_UNIT_DIR, which CPackProjectConfig.cmake sets per generator
# (cpack runs the install script in its own process, where variables set by the project config
# file are not visible but its environment is), or for a plain install
# `DOGWATCH_SYSTEMD_UNIT_DIR=/usr/lib/systemd/system cmake --install build`.
set(DOGWATCH_PKG_DEFAULT_UNIT_DIR /lib/systemd/system)
set(DOGWATCH_PKG_SOURCE ${PROJECT_SOURCE_DIR}/deploy)

install(TARGETS agent trace-agent process-agent system-probe
        RUNTIME DESTINATION ${DOGWATCH_PKG_BIN_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

# The live configs start as copies of the examples: each example is a working package default
# (local intake, state under /var/lib/dogwatch, system-probe off) with every other key commented.
# 0640 because dogwatch.yaml is where api_key goes; the group (dogwatch) is set at install time.
foreach(config dogwatch system-probe)
  install(FILES ${DOGWATCH_PKG_SOURCE}/config/${config}.yaml.example DESTINATION ${DOGWATCH_PKG_CONF_DIR}
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  install(FILES ${DOGWATCH_PKG_SOURCE}/config/${config}.yaml.example DESTINATION ${DOGWATCH_PKG_CONF_DIR}
          RENAME ${config}.yaml PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
endforeach()

install(CODE "if(NOT DEFINED DOGWATCH_SYSTEMD_UNIT_DIR)
  if(DEFINED ENV{DOGWATCH_SYSTEMD_UNIT_DIR})
    set(DOGWATCH_SYSTEMD_UNIT_DIR \"\$ENV{DOGWATCH_SYSTEMD_UNIT_DIR}\")
  else()
    set(DOGWATCH_SYSTEMD_UNIT_DIR ${DOGWATCH_PKG_DEFAULT_UNIT_DIR})
  endif()
endif()
# Without its leading slash, so that the DESTINATION below (\"/\" + this) stays one absolute path.
string(REGEX REPLACE \"^/+\" \"\" dogwatch_unit_dir_rel \"\${DOGWATCH_SYSTEMD_UNIT_DIR}\")")
foreach(unit IN LISTS DOGWATCH_PKG_UNITS)
  # The escaped variable is expanded by cmake_install.cmake, i.e. at install time; the leading
  # slash keeps CMake from treating the destination as relative to CMAKE_INSTALL_PREFIX.
  install(FILES ${DOGWATCH_PKG_SOURCE}/systemd/${unit} DESTINATION "/\${dogwatch_unit_dir_rel}"
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

# ExecCondition= helper of dogwatch-system-probe.service.
install(PROGRAMS ${DOGWATCH_PKG_SOURCE}/systemd/system-probe-enabled DESTINATION ${DOGWATCH_PKG_LIBEXEC_DIR})
# Creates /run/dogwatch at boot for system-probe (see the comment in dogwatch-agent.service).
install(FILES ${DOGWATCH_PKG_SOURCE}/systemd/dogwatch.tmpfiles DESTINATION /usr/lib/tmpfiles.d RENAME dogwatch.conf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(FILES ${DOGWATCH_PKG_SOURCE}/packaging/logrotate DESTINATION /etc/logrotate.d RENAME dogwatch
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(DIRECTORY DESTINATION ${DOGWATCH_PKG_STATE_DIR}
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
install(DIRECTORY DESTINATION ${DOGWATCH_PKG_LOG_DIR}
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)

# The SELinux module (deploy/selinux, another area) is shipped when it has been built at package
# time and silently left out otherwise: `cmake --build build --target selinux-module` builds it into
# the build tree with the reference-policy Makefile (package selinux-policy-dev); a dogwatch.pp
# built in place in deploy/selinux is taken too. The first existing candidate wins.
set(DOGWATCH_SELINUX_MODULE_BUILT ${PROJECT_BINARY_DIR}/selinux/dogwatch.pp)
set(DOGWATCH_SELINUX_MODULE_CANDIDATES ${DOGWATCH_SELINUX_MODULE_BUILT} ${DOGWATCH_PKG_SOURCE}/selinux/dogwatch.pp)
set(dogwatch_selinux_sources ${DOGWATCH_PKG_SOURCE}/selinux/dogwatch.te ${DOGWATCH_PKG_SOURCE}/selinux/dogwatch.if
                             ${DOGWATCH_PKG_SOURCE}/selinux/dogwatch.fc)
if(EXISTS ${DOGWATCH_PKG_SOURCE}/selinux/dogwatch.te)
  add_custom_command(
    OUTPUT ${DOGWATCH_SELINUX_MODULE_BUILT}
    COMMAND ${CMAKE_COMMAND} -E copy ${dogwatch_selinux_sources} ${PROJECT_BINARY_DIR}/selinux/
    COMMAND make -f /usr/share/selinux/devel/Makefile dogwatch.pp
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/selinux
    DEPENDS ${dogwatch_selinux_sources}
    COMMENT "SELinux module dogwatch.pp"
    VERBATIM)
  file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/selinux)
  add_custom_target(selinux-module DEPENDS ${DOGWATCH_SELINUX_MODULE_BUILT})
endif()
# (install(FILES ... OPTIONAL) would still create an empty directory, which lintian rejects.)
install(CODE "
  foreach(candidate ${DOGWATCH_SELINUX_MODULE_CANDIDATES})
    if(EXISTS \"\${candidate}\")
      file(INSTALL DESTINATION \"${DOGWATCH_PKG_SELINUX_DIR}\" TYPE FILE FILES \"\${candidate}\"
           PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
      break()
    endif()
  endforeach()
")

# Debian wants a copyright file, a gzip -9n changelog in /usr/share/doc/<package> and the lintian
# overrides (each with its reason) in /usr/share/lintian/overrides; the RPM carries its changelog
# in the header instead. The environment variable DOGWATCH_PACKAGE_FORMAT is set per generator by
# CPackProjectConfig.cmake.
set(DOGWATCH_PACKAGE_MAINTAINER "dogwatch maintainers <dogwatch@localhost>"
    CACHE STRING "Maintainer/Packager field and changelog signature of the DEB and RPM packages")
string(TIMESTAMP DOGWATCH_PKG_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${DOGWATCH_PKG_SOURCE}/packaging/changelog.in ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
install(FILES ${DOGWATCH_PKG_SOURCE}/packaging/copyright DESTINATION ${DOGWATCH_PKG_DOC_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(CODE "
  if(\"\$ENV{DOGWATCH_PACKAGE_FORMAT}\" STREQUAL \"DEB\")
    set(doc \"\$ENV{DESTDIR}${DOGWATCH_PKG_DOC_DIR}\")
    file(MAKE_DIRECTORY \"\${doc}\")
    execute_process(COMMAND gzip -9nc \"${PROJECT_BINARY_DIR}/packaging/changelog\"
                    OUTPUT_FILE \"\${doc}/changelog.Debian.gz\" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR \"gzip of the changelog failed (\${rc})\")
    endif()
    file(CHMOD \"\${doc}/changelog.Debian.gz\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(INSTALL DESTINATION /usr/share/lintian/overrides TYPE FILE
         FILES \"${DOGWATCH_PKG_SOURCE}/packaging/deb/lintian-overrides\" RENAME dogwatch
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
")

# ---- CPack ----------------------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME dogwatch)
set(CPACK_PACKAGE_VENDOR "dogwatch")
set(CPACK_PACKAGE_CONTACT "${DOGWATCH_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Datadog-compatible monitoring agent suite")
# One paragraph per line for dpkg (CPack indents the continuation lines); lintian wants <= 80 columns.
set(CPACK_PACKAGE_DESCRIPTION "dogwatch is a Datadog-compatible monitoring agent suite: a core agent
(DogStatsD, host checks, forwarder, local intake), a trace-agent for Datadog
tracers, a process-agent and an eBPF system-probe, each run by its own
systemd unit under /opt/dogwatch.")
set(CPACK_GENERATOR DEB)
# Every destination is absolute, so CPack must install through DESTDIR (otherwise it would write
# into the real /opt and /etc); CMAKE_INSTALL_PREFIX plays no part.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /)
set(CPACK_INSTALL_PREFIX /)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CHECKSUM SHA256)
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/packaging/CPackProjectConfig.cmake)
configure_file(${DOGWATCH_PKG_SOURCE}/packaging/CPackProjectConfig.cmake.in ${CPACK_PROJECT_CONFIG_FILE} @ONLY)

# DEB
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/dogwatch/dogwatch")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser: postinst creates the system user; init-system-helpers: deb-systemd-helper/-invoke.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only for log_file setups (the agents log to the journal by default).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS logrotate)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${DOGWATCH_PKG_SOURCE}/packaging/deb/conffiles ${DOGWATCH_PKG_SOURCE}/packaging/deb/postinst
    ${DOGWATCH_PKG_SOURCE}/packaging/deb/prerm ${DOGWATCH_PKG_SOURCE}/packaging/deb/postrm)

# RPM
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "LicenseRef-dogwatch-unlicensed")
set(CPACK_RPM_PACKAGE_VENDOR "${DOGWATCH_PACKAGE_MAINTAINER}")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_URL "https://github.com/dogwatch/dogwatch")
set(CPACK_RPM_COMPRESSION_TYPE xz)
set(CPACK_RPM_PACKAGE_AUTOREQPROV ON)
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
# Packager tag from the macro; no /usr/lib/.build-id links (they would only duplicate what the
# separate debuginfo packages of a distribution carry, and dogwatch ships none).
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${DOGWATCH_PACKAGE_MAINTAINER}
%define _build_id_links none")
# useradd/groupadd in %pre; systemctl in the scriptlets.
set(CPACK_RPM_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_RPM_PACKAGE_REQUIRES_POST "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_PREUN "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_POSTUN "systemd")
set(CPACK_RPM_PRE_INSTALL_SCRIPT_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/pre.sh)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/post.sh)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/preun.sh)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/postun.sh)
set(CPACK_RPM_POST_TRANS_SCRIPT_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/posttrans.sh)
set(CPACK_RPM_CHANGELOG_FILE ${DOGWATCH_PKG_SOURCE}/packaging/rpm/changelog)
# Directories the package owns besides its own files; the system ones must stay unowned.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /opt /etc /etc/logrotate.d /var /var/lib /var/log /usr/lib/systemd /usr/lib/systemd/system
    /usr/lib/tmpfiles.d /usr/share/selinux
    /usr/share/selinux/packages /usr/share/doc)

include(CPack)

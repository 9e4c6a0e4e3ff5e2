# Debian packages through CPack, one per install component:
#
#   libwebhook1      component runtime: libwebhook.so.1 and the file it names. Section libs.
#                    Depends computed by dpkg-shlibdeps; a shlibs file for the programs
#                    built against it.
#   libwebhook-dev   component dev: the headers, libwebhook.a, the libwebhook.so link, the
#                    pkg-config and CMake package files, the man pages. Section libdevel.
#                    Depends: libwebhook1 of the same version, and the -dev packages that
#                    a program built with pkg-config, pkg-config --static or
#                    find_package(webhook) needs.
#
# Both are Multi-Arch: same, with the library in /usr/lib/<multiarch> as Debian's own. That
# directory comes from GNUInstallDirs, which picks it only for the prefix /usr, so build
# the packages from a tree configured for /usr:
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
#         -DWEBHOOK_BUILD_TESTS=OFF -DWEBHOOK_BUILD_EXAMPLES=OFF
#   cmake --build build-deb -j2
#   cpack --config build-deb/CPackConfig.cmake -B build-deb/packages
#
# tests/packaging/deb_check.sh does exactly this and checks the result.

set(WEBHOOK_PACKAGE_MAINTAINER "libwebhook developers <libwebhook@example.invalid>"
  CACHE STRING "Maintainer field of the Debian packages: Name <address>")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libwebhook)
set(CPACK_PACKAGE_VENDOR libwebhook)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${WEBHOOK_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL https://example.invalid/libwebhook)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # NAME_VERSION-RELEASE_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")

set(_about "libwebhook is an embeddable C library that sends webhooks the way the best\n\
services do: Standard Webhooks v1 signatures, retries with backoff, a circuit\n\
breaker per endpoint, a network policy against SSRF, and a durable SQLite or\n\
shared PostgreSQL outbox, without a service to run beside the application. It\n\
also verifies incoming webhooks.")

# --- libwebhook1 ---------------------------------------------------------------------------
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libwebhook${WEBHOOK_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "send and verify signed webhooks from C - shared library\n\
${_about}\n\nThis package contains the shared library.")
# The shlibs file of libwebhook1: a program built against 1.x needs at least the 1.x it
# was built with, since 1.x only adds functions (docs/abi.md).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

# --- libwebhook-dev ------------------------------------------------------------------------
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libwebhook-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION "send and verify signed webhooks from C - development files\n\
${_about}\n\nThis package contains the header, the static library, the pkg-config and CMake\n\
package files, and the man pages (man 3 libwebhook).")
# What the pkg-config file (Requires.private, Libs.private) and webhookConfig.cmake
# (find_dependency) name. Debian's libcurl4-openssl-dev only suggests the -dev packages
# that `pkg-config --static --libs libcurl` needs; a static link needs them, so they are
# here. deb_check.sh checks this list against what a consumer's build actually reads.
set(_dev_depends
  "libwebhook${WEBHOOK_SOVERSION} (= ${_deb_version})"
  "libcurl4-openssl-dev | libcurl-dev" libssl-dev libcjson-dev)
if(WEBHOOK_WITH_SQLITE)
  list(APPEND _dev_depends libsqlite3-dev)
endif()
if(WEBHOOK_WITH_POSTGRES)
  # webhookConfig.cmake finds libpq through pkg-config.
  list(APPEND _dev_depends libpq-dev "pkgconf | pkg-config")
endif()
list(APPEND _dev_depends libbrotli-dev libidn2-dev libkrb5-dev libldap-dev libnghttp2-dev
  libpsl-dev librtmp-dev libssh2-1-dev libzstd-dev zlib1g-dev)
list(JOIN _dev_depends ", " CPACK_DEBIAN_DEV_PACKAGE_DEPENDS)

# --- checks and fix-ups at cpack time ------------------------------------------------------
# Refuse a tree not configured for /usr (the library would land in /usr/lib, not the
# multiarch directory); afterwards, add what CPack 3.25 cannot write (cmake/deb_fixup.cmake).
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/packaging_check.cmake)
# (cpack sees only CPACK_* variables: hence the names.)
set(CPACK_WEBHOOK_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_WEBHOOK_LIBDIR ${CMAKE_INSTALL_LIBDIR})
set(CPACK_WEBHOOK_MULTIARCH "${CMAKE_LIBRARY_ARCHITECTURE}")
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/deb_fixup.cmake)

include(CPack)

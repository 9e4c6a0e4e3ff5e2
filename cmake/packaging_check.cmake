# Read by cpack before each generator runs (CPACK_PROJECT_CONFIG_FILE, cmake/packaging.cmake).
# A Debian package installs into /usr, with the library in /usr/lib/<multiarch>; a tree
# configured for another prefix has the wrong library directory baked in (GNUInstallDirs
# chooses lib/<multiarch> only for /usr), so refuse it rather than package it wrongly.
if(CPACK_GENERATOR STREQUAL "DEB")
  if(NOT CPACK_WEBHOOK_INSTALL_PREFIX STREQUAL "/usr")
    message(FATAL_ERROR
      "Debian packages install into /usr, but this build was configured for "
      "${CPACK_WEBHOOK_INSTALL_PREFIX}: configure a tree with -DCMAKE_INSTALL_PREFIX=/usr "
      "to build them (README, Packages).")
  endif()
  if(CPACK_WEBHOOK_MULTIARCH AND NOT CPACK_WEBHOOK_LIBDIR STREQUAL "lib/${CPACK_WEBHOOK_MULTIARCH}")
    message(FATAL_ERROR
      "The library directory is ${CPACK_WEBHOOK_LIBDIR}, not lib/${CPACK_WEBHOOK_MULTIARCH} "
      "as in Debian: leave CMAKE_INSTALL_LIBDIR unset.")
  endif()
endif()

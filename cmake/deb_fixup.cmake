# Run by cpack after it built the packages (CPACK_POST_BUILD_SCRIPTS, cmake/packaging.cmake),
# for what the DEB generator of CMake 3.25 cannot express:
#  - the Multi-Arch field, "same" for both packages: every file of theirs outside
#    /usr/lib/<multiarch> (headers, man pages) is the same on every architecture;
#  - ldconfig through dpkg's trigger, as Debian's own libraries do, instead of the
#    postinst and postrm scripts that CPack writes to call ldconfig: no maintainer script
#    runs at all then, and the cache is rebuilt once per dpkg run, not once per package.
# Each .deb is unpacked with dpkg-deb, amended, and built again with the same contents.
find_program(_dpkg_deb dpkg-deb REQUIRED)

# The scripts CPack writes, exactly; any other script is left alone.
function(_cpack_ldconfig_script action out)
  set(${out} "#!/bin/sh\n\nset -e\n\nif [ \"\$1\" = \"${action}\" ]; then\n\tldconfig\nfi\n" PARENT_SCOPE)
endfunction()
_cpack_ldconfig_script(configure _expected_postinst)
_cpack_ldconfig_script(remove _expected_postrm)

foreach(_deb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT _deb MATCHES "\\.deb$")
    continue()
  endif()
  set(_tree "${_deb}.tree")
  file(REMOVE_RECURSE "${_tree}")
  execute_process(COMMAND ${_dpkg_deb} --raw-extract "${_deb}" "${_tree}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --raw-extract ${_deb} failed")
  endif()

  file(READ "${_tree}/DEBIAN/control" _control)
  if(NOT _control MATCHES "(^|\n)Multi-Arch:")
    string(REGEX REPLACE "(^|\n)(Architecture: [^\n]*)" "\\1\\2\nMulti-Arch: same"
           _control "${_control}")
    file(WRITE "${_tree}/DEBIAN/control" "${_control}")
  endif()

  set(_ldconfig OFF)
  foreach(_script postinst postrm)
    if(EXISTS "${_tree}/DEBIAN/${_script}")
      file(READ "${_tree}/DEBIAN/${_script}" _text)
      if(_text STREQUAL _expected_${_script})
        file(REMOVE "${_tree}/DEBIAN/${_script}")
        set(_ldconfig ON)
      endif()
    endif()
  endforeach()
  if(_ldconfig)
    file(WRITE "${_tree}/DEBIAN/triggers" "activate-noawait ldconfig\n")
  endif()

  # Owned by root whoever builds it, as CPack writes it.
  execute_process(COMMAND ${_dpkg_deb} --root-owner-group -Zxz --build "${_tree}" "${_deb}"
                  RESULT_VARIABLE _rc OUTPUT_QUIET)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --build ${_tree} failed")
  endif()
  file(REMOVE_RECURSE "${_tree}")
endforeach()

# hb_install_pc(NAME): install NAME.pc, made from the top-level NAME.pc.in.
#
# The prefix is written when the files are installed, not when CMake
# configures, so `cmake --install build --prefix DIR` and DESTDIR staging
# get a .pc naming the directories the files really went to; libdir and
# includedir are the real CMAKE_INSTALL_LIBDIR / INCLUDEDIR (multiarch
# lib/x86_64-linux-gnu included), relative to the prefix unless absolute.
#
# The templates use @HB_PC_PREFIX@, @HB_PC_LIBDIR@, @HB_PC_INCLUDEDIR@ and
# @PROJECT_VERSION@.
function(hb_install_pc name)
  set(HB_PC_PREFIX "@HB_PC_PREFIX@") # kept for the install-time pass
  foreach(d LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
      set(HB_PC_${d} "${CMAKE_INSTALL_${d}}")
    else()
      set(HB_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
    endif()
  endforeach()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(dest "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  else()
    set(dest "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  endif()
  set(stage ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc)
  configure_file(${PROJECT_SOURCE_DIR}/${name}.pc.in ${stage}.in @ONLY)
  install(CODE "
    set(HB_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${stage}.in\" \"${stage}\" @ONLY)
    file(INSTALL DESTINATION \"${dest}\" TYPE FILE FILES \"${stage}\")")
endfunction()

# godwit_add_plugin(<kind> <name> SOURCES ...)
# Builds gw-<kind>-<name>.so as a MODULE into the build tree's plugin dir.
# Plugins see only the SDK headers: they never link against libgodwit.
function(godwit_add_plugin kind name)
  cmake_parse_arguments(P "" "OUTPUT_DIR" "SOURCES;LIBRARIES" ${ARGN})
  set(target gw-${kind}-${name})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${GODWIT_PLUGIN_BUILD_DIR})
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${target}
                        LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR}
                        C_VISIBILITY_PRESET hidden)
  target_link_libraries(${target} PRIVATE godwit::sdk ${P_LIBRARIES})
  if(P_OUTPUT_DIR STREQUAL GODWIT_PLUGIN_BUILD_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${GODWIT_PLUGIN_INSTALL_DIR})
  endif()
endfunction()

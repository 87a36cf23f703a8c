# The PyPI ROS 2 message wheels export, in their Python generator targets, the include path of the machine
# that built them (/opt/python/...). Drop the paths that do not exist here, so interface packages can be
# built against the wheels. Call after find_package() of the dependencies.
function(morobot_fix_wheel_targets)
  foreach(pkg ${ARGN})
    set(t ${pkg}::${pkg}__rosidl_generator_py)
    if(TARGET ${t})
      get_target_property(dirs ${t} INTERFACE_INCLUDE_DIRECTORIES)
      set(kept "")
      foreach(d ${dirs})
        if(EXISTS "${d}" OR d MATCHES "^\\$<")
          list(APPEND kept "${d}")
        endif()
      endforeach()
      set_target_properties(${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
    endif()
  endforeach()
endfunction()

# An interface package from its definition files: find the generators and the dependencies (each must be
# a message package of the wheels), fix their targets, generate, and declare the ament package.
macro(morobot_interface_package)
  cmake_parse_arguments(MIP "" "" "FILES;DEPENDENCIES" ${ARGN})
  find_package(ament_cmake REQUIRED)
  find_package(rosidl_default_generators REQUIRED)
  foreach(dep ${MIP_DEPENDENCIES})
    find_package(${dep} REQUIRED)
  endforeach()
  morobot_fix_wheel_targets(${MIP_DEPENDENCIES} std_msgs builtin_interfaces unique_identifier_msgs service_msgs)
  rosidl_generate_interfaces(${PROJECT_NAME} ${MIP_FILES} DEPENDENCIES ${MIP_DEPENDENCIES})
  ament_package()
endmacro()

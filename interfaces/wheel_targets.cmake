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

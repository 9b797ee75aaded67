# pybind11 comes from pip (the `pybind11` package in the build environment);
# no copy lives in this repository. Its CMake config is located by asking the
# Python interpreter that builds the extension.
find_package(Python COMPONENTS Interpreter Development.Module REQUIRED)
if(NOT pybind11_DIR)
  execute_process(
    COMMAND ${Python_EXECUTABLE} -m pybind11 --cmakedir
    OUTPUT_VARIABLE pybind11_DIR
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _pybind11_status)
  if(NOT _pybind11_status EQUAL 0)
    message(FATAL_ERROR "pybind11 not found: `pip install pybind11` into ${Python_EXECUTABLE}'s environment")
  endif()
endif()
find_package(pybind11 CONFIG REQUIRED)

# GoogleTest comes from Debian's libgtest-dev (`apt-get install -y libgtest-dev`,
# which `make test` does when it is missing); no copy lives in this repository.
# Sets PYTHIA_TESTS_ENABLED.
set(PYTHIA_TESTS_ENABLED OFF)
if(NOT PYTHIA_BUILD_TESTS STREQUAL "OFF")
  find_package(GTest)
  if(GTest_FOUND)
    set(PYTHIA_TESTS_ENABLED ON)
  elseif(PYTHIA_BUILD_TESTS STREQUAL "ON")
    message(FATAL_ERROR "PYTHIA_BUILD_TESTS=ON but GoogleTest was not found: apt-get install -y libgtest-dev")
  else()
    message(STATUS "GoogleTest not found: C++ tests are not built")
  endif()
endif()

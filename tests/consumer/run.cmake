# Builds tests/consumer with fern vendored (add_subdirectory, in a parent
# that installs an export set of its own), installed (find_package), and
# installed Release with the consumer built with -fsanitize=address (the
# layout choices come from fern/config.h, not the consumer's flags); runs
# each result. Arguments:
#   -DFERN_SOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=...
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(here ${CMAKE_CURRENT_LIST_DIR})
file(REMOVE_RECURSE ${WORK_DIR})

# Vendored: the consumer's tree includes fern's.
step(${CMAKE_COMMAND} -S ${here}/vendored -B ${WORK_DIR}/vendored -G ${GENERATOR}
     -DFERN_SOURCE_DIR=${FERN_SOURCE_DIR})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/vendored)
step(${WORK_DIR}/vendored/consumer)
step(${CMAKE_COMMAND} --install ${WORK_DIR}/vendored --prefix ${WORK_DIR}/vendored-prefix)

# Installed: build and install fern alone, then find_package it.
step(${CMAKE_COMMAND} -S ${FERN_SOURCE_DIR} -B ${WORK_DIR}/fern -G ${GENERATOR}
     -DCMAKE_BUILD_TYPE=Release -DFERN_BUILD_TESTS=OFF -DFERN_BUILD_BENCHMARKS=OFF
     -DFERN_BUILD_EXAMPLES=OFF -DFERN_HOOKS_SHARED=OFF -DFERN_INSTALL=ON
     -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/fern --target install)
step(${CMAKE_COMMAND} -S ${here}/installed -B ${WORK_DIR}/installed -G ${GENERATOR}
     -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/installed)
step(${WORK_DIR}/installed/consumer)
if(CMAKE_HOST_SYSTEM_NAME STREQUAL "Linux")  # fern::hooks is installed there
  step(${WORK_DIR}/installed/consumer_hooks)
endif()

# An AddressSanitizer application against the installed Release fern.
step(${CMAKE_COMMAND} -S ${here}/installed -B ${WORK_DIR}/installed-asan -G ${GENERATOR}
     -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix "-DCMAKE_CXX_FLAGS=-fsanitize=address -fno-omit-frame-pointer"
     -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/installed-asan)
step(${WORK_DIR}/installed-asan/consumer)

# emulator.cmake - the CPU emulator of our CUDA kernels (tests/emu), included by the top-level
# CMakeLists.txt. It needs only the CUDA toolkit *headers* (host-side types: dim3, float4, __half,
# __nv_bfloat16, the runtime API declarations) and python3, not nvcc, a GPU or libcudart:
#   - translate_cu.py turns each kernel source into host C++ in the build tree (re-run when the
#     .cu or the script changes);
#   - those are compiled by the C++ compiler with cuda_emu.h force-included, with tests/emu ahead
#     of cuda/ on the include path so that tensor_core.cuh and <mma.h> are the emulator's;
#   - cuda_emu_runtime.cpp provides the fiber scheduler and the runtime API calls our code makes.
#   - the engine (engine_cuda.cu, gemm.cu, tuning.cu; cuDNN as its "not built" stub, the CUTLASS
#     GEMM + GELU and 3xTF32 GEMM as plain stand-in kernels with their contracts, so that
#     gemm.cu's choices among them run) is translated the same way and runs on
#     cublaslt_emu.cpp, a host cuBLASLt that follows the documented semantics, and on
#     cuda_emu_stream.cpp's streams, events and graph capture.
# Tests: test_gpu_ops_emulated (tests/test_gpu_ops.c against the emulated kernels),
# test_gpu_model_emulated (tests/test_gpu_model.c: the whole engine against the CPU reference),
# test_tensor_core_emu and test_emu_runtime (the emulator's own checks), emu_translate_selftest.
# Not built under BQ_SANITIZE: the fibers switch stacks with _longjmp, which ASan cannot follow.

option(BQ_EMULATOR "Build the CPU emulation of the CUDA kernels and its tests" ON)
set(BQ_EMU_ENABLED OFF)
set(BQ_EMU_WHY "")
find_package(Python3 COMPONENTS Interpreter QUIET)
if(NOT CUDAToolkit_INCLUDE_DIRS)
  find_package(CUDAToolkit QUIET)
endif()
find_path(BQ_EMU_CUDA_INCLUDE cuda_runtime_api.h
          HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV CUDA_HOME ENV CUDA_PATH
          PATHS /usr/local/cuda/include
          PATH_SUFFIXES include)
if(NOT BQ_EMULATOR)
  set(BQ_EMU_WHY "BQ_EMULATOR=OFF") # the device run tests the real kernels instead
elseif(BQ_SANITIZE)
  set(BQ_EMU_WHY "sanitizer build")
elseif(NOT Python3_Interpreter_FOUND)
  set(BQ_EMU_WHY "no python3")
elseif(NOT BQ_EMU_CUDA_INCLUDE)
  set(BQ_EMU_WHY "no CUDA toolkit headers")
else()
  foreach(h cuda_fp16.h cuda_bf16.h cublas_v2.h)
    if(NOT EXISTS ${BQ_EMU_CUDA_INCLUDE}/${h})
      set(BQ_EMU_WHY "no ${h} in ${BQ_EMU_CUDA_INCLUDE}")
    endif()
  endforeach()
  if(NOT BQ_EMU_WHY)
    set(BQ_EMU_ENABLED ON)
  endif()
endif()
if(NOT BQ_EMU_ENABLED)
  message(STATUS "bertqa-gpu: CPU emulation of the CUDA kernels OFF (${BQ_EMU_WHY})")
  return()
endif()
message(STATUS "bertqa-gpu: CPU emulation of the CUDA kernels ON (headers: ${BQ_EMU_CUDA_INCLUDE})")

set(BQ_EMU_SRC ${CMAKE_CURRENT_SOURCE_DIR}/tests/emu)
set(BQ_EMU_GEN ${CMAKE_CURRENT_BINARY_DIR}/emu)
set(BQ_EMU_TRANSLATE ${BQ_EMU_SRC}/translate_cu.py)

# The kernel sources under test (not gemm.cu / attention_cudnn.cu / engine_cuda.cu: cuBLASLt, cuDNN
# and the engine are libraries and streams, not kernels), and the headers that declare __shared__
# memory (a header missing here still compiles, but its shared arrays are neither poisoned nor
# counted, and ldmatrix / cp.async reject them as not shared). Translated headers sit next to the
# translated .cpp files, so they win the quoted-include search over cuda/.
set(BQ_EMU_KERNEL_SOURCES attention.cu attention_wgmma.cu bias_gelu.cu bias_residual_layernorm.cu
                          embeddings_layernorm.cu qa_head.cu normwise_diff.cu cuda_check.cu)
set(BQ_EMU_KERNEL_HEADERS kernel_common.cuh attention_common.cuh)
# The engine's host-side CUDA sources: no kernels of their own except cuDNN's mask bias, which the
# "built without cuDNN" stub of attention_cudnn.cu does not have.
set(BQ_EMU_ENGINE_SOURCES engine_cuda.cu gemm.cu tuning.cu gemm_bias_gelu.cu gemm_3xtf32.cu
                          attention_cudnn.cu)
set(BQ_EMU_TRANSLATED)
set(BQ_EMU_ENGINE_TRANSLATED)
foreach(f ${BQ_EMU_KERNEL_SOURCES} ${BQ_EMU_KERNEL_HEADERS} ${BQ_EMU_ENGINE_SOURCES})
  get_filename_component(base ${f} NAME_WE)
  if(f MATCHES "\\.cu$")
    set(out ${BQ_EMU_GEN}/${base}.cpp)
  else()
    set(out ${BQ_EMU_GEN}/${f})
  endif()
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${Python3_EXECUTABLE} ${BQ_EMU_TRANSLATE} ${CMAKE_CURRENT_SOURCE_DIR}/cuda/${f} ${out}
            --display-name cuda/${f}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cuda/${f} ${BQ_EMU_TRANSLATE}
    COMMENT "Translating cuda/${f} for the CPU emulator" VERBATIM)
  if(f IN_LIST BQ_EMU_ENGINE_SOURCES)
    list(APPEND BQ_EMU_ENGINE_TRANSLATED ${out})
  else()
    list(APPEND BQ_EMU_TRANSLATED ${out})
  endif()
endforeach()

# The runtime: no force-include (it must #undef _FORTIFY_SOURCE before any system header).
add_library(bq_emu_runtime STATIC ${BQ_EMU_SRC}/cuda_emu_runtime.cpp ${BQ_EMU_SRC}/cuda_emu_stream.cpp)
target_include_directories(bq_emu_runtime PUBLIC ${BQ_EMU_SRC})
target_include_directories(bq_emu_runtime SYSTEM PUBLIC ${BQ_EMU_CUDA_INCLUDE})
target_compile_features(bq_emu_runtime PUBLIC cxx_std_17)
target_compile_options(bq_emu_runtime PRIVATE -Wall -Wextra)

# The kernels, as host code. Include order matters: tests/emu (shadows) before cuda/.
# -fno-strict-aliasing: kernels store through reinterpreted pointers (the mma.sync attention writes
# a packed pair of halves as one uint32_t, the vector loads cast to uint4), formally undefined in
# C++; nvcc compiles it as intended, g++ -O2 may reorder or drop such accesses and the emulator
# would blame the kernel for the host compiler's liberty.
add_library(bq_emu_kernels STATIC ${BQ_EMU_TRANSLATED})
target_include_directories(bq_emu_kernels PRIVATE ${BQ_EMU_SRC} ${CMAKE_CURRENT_SOURCE_DIR}/cuda
                           ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_compile_options(bq_emu_kernels PRIVATE "SHELL:-include ${BQ_EMU_SRC}/cuda_emu.h" -Wall
                       -Wno-unknown-pragmas -fno-strict-aliasing)
# the wgmma attention kernel as on an sm_90a build (the emulator is an sm_90 device)
target_compile_definitions(bq_emu_kernels PRIVATE BQ_WGMMA_ATTENTION=1)
target_link_libraries(bq_emu_kernels PUBLIC bq_emu_runtime)

# The host library without any CUDA: `bertqa` itself when the real backend is off, else the same
# sources again with the stub backend (bertqa then links the real CUDA kernels and libcudart).
if(BQ_HAVE_CUDA)
  add_library(bq_emu_host STATIC ${BQ_SOURCES} src/engine_cuda_stub.c)
  target_include_directories(bq_emu_host PUBLIC include src PRIVATE ${CBLAS_INCLUDE_DIR})
  target_link_libraries(bq_emu_host PUBLIC PkgConfig::UTF8PROC PkgConfig::CJSON ${OPENBLAS_LIBRARY}
                        Threads::Threads m)
  set(BQ_EMU_HOST_LIB bq_emu_host)
else()
  set(BQ_EMU_HOST_LIB bertqa)
endif()

# The op-level harness itself against the emulated kernels (BQ_CUDA_EMULATED picks smaller
# cases where the full ones would take the emulator too long).
add_executable(test_gpu_ops_emulated tests/test_gpu_ops.c tests/test_support.c)
target_include_directories(test_gpu_ops_emulated PRIVATE cuda)
target_link_libraries(test_gpu_ops_emulated PRIVATE bq_emu_kernels ${BQ_EMU_HOST_LIB} PkgConfig::CMOCKA)
target_compile_definitions(test_gpu_ops_emulated PRIVATE BQ_HAVE_CUDA=1 BQ_CUDA_EMULATED=1
  BQ_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}" BQ_BINARY_DIR="${CMAKE_CURRENT_BINARY_DIR}")
set_target_properties(test_gpu_ops_emulated PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME test_gpu_ops_emulated COMMAND test_gpu_ops_emulated)
set_tests_properties(test_gpu_ops_emulated PROPERTIES TIMEOUT 900)

# The whole engine on the emulator: the host library (without the CUDA stub), the translated engine
# sources and the host cuBLASLt in one archive. It and the kernels need each other (the kernels'
# error checks are the host library's bq_fail), hence the archive twice on the test's link line.
add_library(bq_emu_engine STATIC ${BQ_SOURCES} ${BQ_EMU_ENGINE_TRANSLATED}
            ${BQ_EMU_SRC}/cublaslt_emu.cpp)
target_include_directories(bq_emu_engine BEFORE PUBLIC ${BQ_EMU_SRC})
target_include_directories(bq_emu_engine PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/cuda
                           ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/src
                           PRIVATE ${CBLAS_INCLUDE_DIR})
set_source_files_properties(${BQ_EMU_ENGINE_TRANSLATED} PROPERTIES COMPILE_OPTIONS
                            "-include;${BQ_EMU_SRC}/cuda_emu.h;-fno-strict-aliasing")
target_compile_options(bq_emu_engine PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wno-unknown-pragmas>)
target_link_libraries(bq_emu_engine PUBLIC bq_emu_kernels PkgConfig::UTF8PROC PkgConfig::CJSON
                      ${OPENBLAS_LIBRARY} Threads::Threads m)

add_executable(test_gpu_model_emulated tests/test_gpu_model.c tests/test_support.c)
target_link_libraries(test_gpu_model_emulated PRIVATE bq_emu_engine bq_emu_kernels bq_emu_engine
                      PkgConfig::CMOCKA)
target_compile_definitions(test_gpu_model_emulated PRIVATE BQ_HAVE_CUDA=1 BQ_CUDA_EMULATED=1
  BQ_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}" BQ_BINARY_DIR="${CMAKE_CURRENT_BINARY_DIR}")
set_target_properties(test_gpu_model_emulated PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME test_gpu_model_emulated COMMAND test_gpu_model_emulated)
set_tests_properties(test_gpu_model_emulated PROPERTIES TIMEOUT 900)

# The command line on the emulated engine: `--device cuda` end to end (SQuAD, ask) without a GPU,
# checked against `--device cpu` by tests/emu/cli_cuda_emulated.sh.
add_executable(bertqa-gpu-emulated ${BQ_CLI_SOURCES})
target_link_libraries(bertqa-gpu-emulated PRIVATE bq_emu_engine bq_emu_kernels bq_emu_engine)
bq_cli_target(bertqa-gpu-emulated "the CPU emulator of the CUDA engine (tests/emu)")
set_target_properties(bertqa-gpu-emulated PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME cli_cuda_emulated COMMAND bash ${BQ_EMU_SRC}/cli_cuda_emulated.sh
         $<TARGET_FILE:bertqa-gpu-emulated> $<TARGET_FILE:bertqa-make-model>
         ${CMAKE_CURRENT_SOURCE_DIR})
set_tests_properties(cli_cuda_emulated PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)

# The public interface over the emulated CUDA engine: test_api's cuda reader is answered (and held
# to the CPU reader) instead of skipped. Linked statically: libbertqa.so is the real engine's.
add_executable(test_api_emulated tests/test_api.c src/api.c)
target_link_libraries(test_api_emulated PRIVATE bq_emu_engine bq_emu_kernels bq_emu_engine
                      PkgConfig::CMOCKA PkgConfig::CJSON m)
target_compile_definitions(test_api_emulated PRIVATE ${BQ_TEST_API_DEFINES} BQ_CUDA_EMULATED=1)
add_dependencies(test_api_emulated bertqa-make-model bertqa-gpu)
set_target_properties(test_api_emulated PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME test_api_emulated COMMAND test_api_emulated)
set_tests_properties(test_api_emulated PROPERTIES TIMEOUT 600)

foreach(t test_tensor_core_emu test_emu_runtime)
  add_executable(${t} ${BQ_EMU_SRC}/${t}.cpp)
  target_link_libraries(${t} PRIVATE bq_emu_runtime)
  target_compile_options(${t} PRIVATE -Wall -Wextra)
  target_compile_definitions(${t} PRIVATE BQ_WGMMA_ATTENTION=1) # the wgmma stand-ins too
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 120)
endforeach()

add_test(NAME emu_translate_selftest COMMAND ${Python3_EXECUTABLE} ${BQ_EMU_TRANSLATE} --self-test)

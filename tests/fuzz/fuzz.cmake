# ---- fuzz targets (tests/fuzz): every parser of outside input, and the pipeline, on any bytes ------
# Each tests/fuzz/fuzz_<name>.c is built twice over:
#  - fuzz_replay_<name>: with replay.c, on every build; ctest runs the committed corpus
#    (tests/fuzz/corpus/<name>/: seeds and every input that once broke something) through it,
#    under the sanitizers too in tools/test.sh's second build;
#  - fuzz_<name>: with libFuzzer, when configured with -DBQ_FUZZ=ON and clang (tools/fuzz.sh).
set(BQ_FUZZ_TARGETS config safetensors model_load vocab tokenizer tokenizer_files answer_match squad_data
                    predictions jsonl_record features_decode reader tuning_cache)
set(BQ_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz)
function(bq_fuzz_target target name)
  target_sources(${target} PRIVATE ${BQ_FUZZ_DIR}/fuzz_${name}.c ${BQ_FUZZ_DIR}/fuzz_common.c)
  target_include_directories(${target} PRIVATE ${BQ_FUZZ_DIR})
  target_compile_definitions(${target} PRIVATE BQ_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}"
                             BQ_MAKE_MODEL="$<TARGET_FILE:bertqa-make-model>")
  # the reader target goes through the public interface, as an outside program would
  if(name STREQUAL "reader")
    target_link_libraries(${target} PRIVATE bertqa_shared bertqa)
    add_dependencies(${target} bertqa-make-model)
  else()
    target_link_libraries(${target} PRIVATE bertqa m)
  endif()
endfunction()
foreach(name ${BQ_FUZZ_TARGETS})
  add_executable(fuzz_replay_${name} ${BQ_FUZZ_DIR}/replay.c)
  bq_fuzz_target(fuzz_replay_${name} ${name})
  add_test(NAME fuzz_replay_${name} COMMAND fuzz_replay_${name} ${BQ_FUZZ_DIR}/corpus/${name})
  set_tests_properties(fuzz_replay_${name} PROPERTIES TIMEOUT 600)
  if(BQ_FUZZ)
    add_executable(fuzz_${name})
    bq_fuzz_target(fuzz_${name} ${name})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()

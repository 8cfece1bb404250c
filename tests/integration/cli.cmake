# The quorumq CLI and the SDK against a real broker process (issue 14: consumer groups that
# never skip, producer batch splitting, the kcat/rpk-like CLI). Included from
# tests/integration/CMakeLists.txt (uses quorumq_integration_test).
if(TARGET quorumq_cli)
  quorumq_integration_test(cli_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.cc)
  set(_bench "")
  set(_group_bench "")
  if(TARGET quorumq-bench)
    set(_bench "$<TARGET_FILE:quorumq-bench>")
    set(_group_bench "$<TARGET_FILE:quorumq-group-bench>")
    add_dependencies(cli_test quorumq-bench quorumq-group-bench)
  endif()
  target_compile_definitions(cli_test PRIVATE
    QUORUMQ_CLI_BIN="$<TARGET_FILE:quorumq_cli>"
    QUORUMQ_BENCH_BIN="${_bench}"
    QUORUMQ_GROUP_BENCH_BIN="${_group_bench}")
  add_dependencies(cli_test quorumq_cli)
endif()
if(TARGET quorumq::client)
  quorumq_integration_test(sdk_positions_split_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sdk_positions_split_test.cc LIBS quorumq::client)
endif()

# quorumq-bench end to end: --spawn 3 with one kill-leader fault; asserts lost=0 duplicated=0
# from the JSON (parsed with nlohmann-json). Included from tests/integration/CMakeLists.txt (uses
# quorumq_integration_test).
if(TARGET quorumq-bench)
  quorumq_integration_test(bench_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_e2e_test.cc
                           LIBS nlohmann_json::nlohmann_json)
  target_compile_definitions(bench_e2e_test PRIVATE
    QUORUMQ_BENCH_BIN="$<TARGET_FILE:quorumq-bench>"
    QUORUMQ_BENCH_BROKER_BIN="$<TARGET_FILE:quorumq-broker>")
  add_dependencies(bench_e2e_test quorumq-bench quorumq-broker)
endif()

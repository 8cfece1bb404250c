# Hot/cold backup and restore with real brokers (issue 8). Links the CLI's admin commands
# (client/cli/admin_cmd.cc) directly, so it tests the same code `quorumq admin` runs.
# Included from tests/integration/CMakeLists.txt (uses quorumq_integration_test).
if(TARGET quorumq::client)
  quorumq_integration_test(backup_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/backup_test.cc ${PROJECT_SOURCE_DIR}/client/cli/admin_cmd.cc
    LIBS quorumq::client CLI11::CLI11)
  target_include_directories(backup_test PRIVATE ${PROJECT_SOURCE_DIR}/client/cli)
endif()

# Unit tests of the level service's core (tests/unit/level mirrors services/level).
add_executable(level_unit_tests
  level/level_test_env.cc
  level/ledger_test.cc
  level/warehouse_test.cc
  level/queries_test.cc
  level/ledger_property_test.cc
  level/common_test.cc
  level/reference_data_test.cc
  level/store_txn_test.cc
  level/stored_response_test.cc
  level/level_store_test.cc
  level/backup_test.cc
  level/group_commit_test.cc
  level/space_guard_test.cc)
target_compile_options(level_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_unit_tests PRIVATE stockpile_level_core stockpile_testutil GTest::gmock
                      GTest::gtest_main)
gtest_discover_tests(level_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# stockctl: pure logic (tables and CJK width, CSV parsing and row checks, the import runner's
# chunking / row-by-row fallback, exit-code mapping, argument parsing, rotation plans,
# plans for a transfer's shortfall, the plan table, the catalogue status table).
add_executable(stockctl_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_table_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_flag_checks_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_csv_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_import_runner_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_rotation_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_shortfall_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_transfer_render_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stockctl_cli_test.cc)
target_compile_options(stockctl_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockctl_unit_tests PRIVATE stockctl_lib stockpile_testutil GTest::gmock_main)
gtest_discover_tests(stockctl_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

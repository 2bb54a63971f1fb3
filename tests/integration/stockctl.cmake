# stockctl against a real stockpile-level process (label integration).
add_executable(stockctl_integration_tests ${CMAKE_CURRENT_LIST_DIR}/stockctl_cli_test.cc)
target_compile_options(stockctl_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockctl_integration_tests PRIVATE
  stockpile_testutil nlohmann_json::nlohmann_json GTest::gmock_main)
# The tests run both binaries; build them first when building the tests.
if(TARGET stockpile-level)
  add_dependencies(stockctl_integration_tests stockctl stockpile-level)
else()
  add_dependencies(stockctl_integration_tests stockctl)
endif()
gtest_discover_tests(stockctl_integration_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

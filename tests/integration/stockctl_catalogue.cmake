# stockctl's catalogue and transfer commands against a real stockpile-local (label integration).
add_executable(stockctl_catalogue_tests ${CMAKE_CURRENT_LIST_DIR}/stockctl_catalogue_test.cc)
target_compile_options(stockctl_catalogue_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockctl_catalogue_tests PRIVATE
  stockpile_testutil nlohmann_json::nlohmann_json GTest::gmock_main)
# The tests run both binaries; build them first when building the tests.
add_dependencies(stockctl_catalogue_tests stockctl stockpile-local)
gtest_discover_tests(stockctl_catalogue_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

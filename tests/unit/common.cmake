# Unit tests of what the services share (tests/unit/common mirrors services/common).
add_executable(common_unit_tests common/page_token_test.cc)
target_compile_options(common_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(common_unit_tests PRIVATE stockpile_common stockpile_testutil GTest::gmock
                      GTest::gtest_main)
gtest_discover_tests(common_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

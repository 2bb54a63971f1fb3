# Unit tests of the test helpers themselves (tests/testutil).
add_executable(testutil_tests testutil_test.cc)
target_compile_options(testutil_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(testutil_tests PRIVATE stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(testutil_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

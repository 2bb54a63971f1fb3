# Unit tests of services/common/auth: tokens and the authorizer's method x role x scope matrix.
add_executable(auth_unit_tests
  auth/token_test.cc
  auth/authorizer_test.cc)
target_compile_options(auth_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(auth_unit_tests PRIVATE stockpile_auth stockpile_testutil GTest::gmock
                      GTest::gtest_main)
gtest_discover_tests(auth_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

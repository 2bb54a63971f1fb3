# The access matrix of issue 7 against a real stockpile-level (mutual TLS, bearer tokens): every
# LevelService method x role x case, balances and change-stream head unchanged on every refusal.
add_executable(level_access_integration_tests level_access_matrix_test.cc)
target_compile_options(level_access_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_access_integration_tests PRIVATE
  stockpile_proto stockpile_testutil stockpile_auth GTest::gmock GTest::gtest_main)
add_dependencies(level_access_integration_tests stockpile-level)
gtest_discover_tests(level_access_integration_tests PROPERTIES LABELS integration
                     DISCOVERY_TIMEOUT 60)

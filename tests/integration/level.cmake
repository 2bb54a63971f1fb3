# Integration tests of stockpile-level as a real process (gRPC, restart, metrics, change stream).
add_executable(level_integration_tests level_service_test.cc level_bad_input_test.cc
               level_security_test.cc)
target_compile_options(level_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_integration_tests PRIVATE
  stockpile_proto stockpile_testutil stockpile_metrics stockpile_auth metrics_test_health_proto
  GTest::gmock GTest::gtest_main)
add_dependencies(level_integration_tests stockpile-level stockpile-bench)
gtest_discover_tests(level_integration_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

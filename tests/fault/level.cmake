# Fault tests: kill -9 stockpile-level under concurrent writers.
add_executable(level_fault_tests level_crash_test.cc)
target_compile_options(level_fault_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_fault_tests PRIVATE stockpile_proto stockpile_testutil
                      GTest::gmock GTest::gtest_main)
add_dependencies(level_fault_tests stockpile-level)
gtest_discover_tests(level_fault_tests PROPERTIES LABELS fault DISCOVERY_TIMEOUT 60)

# Fault tests: kill -9 stockpile-level under concurrent writers.
add_executable(level_fault_tests level_crash_test.cc)
target_compile_options(level_fault_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_fault_tests PRIVATE stockpile_proto stockpile_testutil
                      GTest::gmock GTest::gtest_main)
add_dependencies(level_fault_tests stockpile-level)
gtest_discover_tests(level_fault_tests PROPERTIES LABELS fault DISCOVERY_TIMEOUT 60)

# A disk that refuses a write (a file-size limit on the process): health, metrics, restart.
add_executable(level_disk_fault_test level_disk_test.cc)
target_compile_options(level_disk_fault_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_disk_fault_test PRIVATE stockpile_proto stockpile_testutil
                      stockpile_metrics metrics_test_health_proto GTest::gmock GTest::gtest_main)
add_dependencies(level_disk_fault_test stockpile-level)
gtest_discover_tests(level_disk_fault_test PROPERTIES LABELS fault TIMEOUT 120
                     DISCOVERY_TIMEOUT 60)

# Fault tests of the catalogue: kill -9, SIGSTOP of a source, etcd down (real processes).
add_executable(catalogue_fault_test ${CMAKE_CURRENT_LIST_DIR}/catalogue_fault_test.cc)
target_compile_options(catalogue_fault_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_fault_test PRIVATE
  stockpile_catalogue_proto stockpile_testutil_etcd GTest::gmock_main)
add_dependencies(catalogue_fault_test stockpile-catalogue stockpile-level)
gtest_discover_tests(catalogue_fault_test
  PROPERTIES LABELS fault TIMEOUT 120
  DISCOVERY_TIMEOUT 60)

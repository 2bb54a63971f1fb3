# The catalogue against real stockpile-level processes and a real etcd.
add_executable(catalogue_integration_test
  ${CMAKE_CURRENT_LIST_DIR}/catalogue_replication_test.cc)
target_compile_options(catalogue_integration_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_integration_test PRIVATE
  stockpile_catalogue_proto stockpile_etcd stockpile_testutil_etcd GTest::gmock_main)
add_dependencies(catalogue_integration_test stockpile-catalogue stockpile-level)
gtest_discover_tests(catalogue_integration_test
  PROPERTIES LABELS integration TIMEOUT 90
  DISCOVERY_TIMEOUT 60)

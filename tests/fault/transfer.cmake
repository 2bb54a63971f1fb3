# Transfers under faults (kill -9 of the leader, a source stopped, cancel): real etcd, level
# services and stockpile-catalogue hosting the TransferService.
add_executable(transfer_fault_test ${CMAKE_CURRENT_LIST_DIR}/transfer_fault_test.cc)
target_compile_options(transfer_fault_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(transfer_fault_test PRIVATE
  stockpile_allocation_proto stockpile_proto stockpile_testutil_etcd GTest::gmock_main
  absl::strings)
add_dependencies(transfer_fault_test stockpile-catalogue stockpile-level)
gtest_discover_tests(transfer_fault_test
  PROPERTIES LABELS fault TIMEOUT 90
  DISCOVERY_TIMEOUT 60)

# Fault tests of a level instance's etcd registration: a pause longer than its lease (SIGSTOP)
# while another instance takes its regions (real etcd and stockpile-level processes).
add_executable(level_etcd_fault_test ${CMAKE_CURRENT_LIST_DIR}/level_etcd_fault_test.cc)
target_compile_options(level_etcd_fault_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_etcd_fault_test PRIVATE
  stockpile_proto stockpile_etcd stockpile_metrics stockpile_testutil_etcd GTest::gmock_main)
add_dependencies(level_etcd_fault_test stockpile-level)
gtest_discover_tests(level_etcd_fault_test
  PROPERTIES LABELS fault TIMEOUT 120
  DISCOVERY_TIMEOUT 60)

# etcd client, watcher, registration and leader election against a real etcd (Debian etcd-server).
# Included from tests/integration/CMakeLists.txt.

# A real etcd started on free loopback ports by the test (tests/testutil/etcd_process.h).
add_library(stockpile_testutil_etcd STATIC ${CMAKE_SOURCE_DIR}/tests/testutil/etcd_process.cc)
target_compile_options(stockpile_testutil_etcd PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockpile_testutil_etcd PUBLIC stockpile_testutil)

add_executable(etcd_integration_test
  ${CMAKE_CURRENT_LIST_DIR}/etcd_client_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/etcd_watcher_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/etcd_registration_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/etcd_leader_election_test.cc)
target_compile_options(etcd_integration_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(etcd_integration_test PRIVATE
  stockpile_etcd stockpile_testutil_etcd GTest::gmock_main)
# The registration tests also start stockpile-level processes against that etcd.
add_dependencies(etcd_integration_test stockpile-level)
gtest_discover_tests(etcd_integration_test
  PROPERTIES LABELS integration TIMEOUT 90
  DISCOVERY_TIMEOUT 60)

# Our etcd client and stockpile-level against a real etcd serving TLS with --client-cert-auth.
# Included from tests/integration/CMakeLists.txt (after etcd.cmake: uses stockpile_testutil_etcd).
add_executable(etcd_tls_test ${CMAKE_CURRENT_LIST_DIR}/etcd_tls_test.cc)
target_compile_options(etcd_tls_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(etcd_tls_test PRIVATE
  stockpile_etcd stockpile_proto stockpile_testutil stockpile_testutil_etcd GTest::gmock_main)
add_dependencies(etcd_tls_test stockpile-level)
gtest_discover_tests(etcd_tls_test
  PROPERTIES LABELS integration TIMEOUT 60
  DISCOVERY_TIMEOUT 60)

# STOCKPILE_TLS=1 deploy/local/cluster.sh end to end: TLS, tokens, scopes and audit via stockctl.
add_executable(local_cluster_tls_tests local_cluster_tls_test.cc)
target_compile_options(local_cluster_tls_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(local_cluster_tls_tests PRIVATE stockpile_catalogue_proto stockpile_proto
                      stockpile_testutil GTest::gmock GTest::gtest_main)
add_dependencies(local_cluster_tls_tests stockpile-level stockpile-catalogue stockctl)
gtest_discover_tests(local_cluster_tls_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

# deploy/local/cluster.sh with a real etcd, seven processes and a real Prometheus.
add_executable(local_cluster_tests local_cluster_test.cc)
target_compile_options(local_cluster_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(local_cluster_tests PRIVATE stockpile_catalogue_proto stockpile_proto
                      stockpile_testutil GTest::gmock GTest::gtest_main)
add_dependencies(local_cluster_tests stockpile-level stockpile-catalogue)
gtest_discover_tests(local_cluster_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

# The catalogue's /metrics page scraped from real stockpile-catalogue and stockpile-level
# processes (static --source, no etcd) and checked with promtool.
add_executable(catalogue_metrics_integration_test
  ${CMAKE_CURRENT_LIST_DIR}/catalogue_metrics_test.cc)
target_compile_options(catalogue_metrics_integration_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_metrics_integration_test PRIVATE
  stockpile_catalogue_proto stockpile_proto stockpile_metrics stockpile_testutil GTest::gmock_main)
add_dependencies(catalogue_metrics_integration_test stockpile-catalogue stockpile-level)
gtest_discover_tests(catalogue_metrics_integration_test
  PROPERTIES LABELS integration TIMEOUT 90
  DISCOVERY_TIMEOUT 60)

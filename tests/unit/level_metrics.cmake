# LevelMetrics (services/level/level_metrics.cc) on a real core and metrics server: scanned
# figures before and after stock moves, holds expired, RocksDB gauges, failed scans.
add_executable(level_metrics_tests
  level/level_test_env.cc
  level/level_metrics_test.cc)
target_compile_options(level_metrics_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(level_metrics_tests PRIVATE stockpile_level_core stockpile_metrics
                      stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(level_metrics_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Unit tests and micro-benchmark of services/common/metrics.

add_executable(metrics_test
  metrics_server_test.cc
  metrics_grpc_test.cc)
target_compile_options(metrics_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(metrics_test PRIVATE
  stockpile_metrics stockpile_proto stockpile_health_proto stockpile_testutil
  GTest::gmock GTest::gtest_main)
gtest_discover_tests(metrics_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Micro-benchmark of the interceptor's per-RPC work (not a test: run <build>/bin/metrics_bench).
find_package(benchmark CONFIG REQUIRED)
add_executable(metrics_bench metrics_bench_test.cc)
target_compile_options(metrics_bench PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(metrics_bench PRIVATE
  stockpile_metrics stockpile_health_proto benchmark::benchmark benchmark::benchmark_main)

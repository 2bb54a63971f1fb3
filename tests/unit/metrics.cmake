# Unit tests and micro-benchmark of services/common/metrics.

# A client stub for grpc.health.v1 (the interceptor test calls the built-in health service).
set(METRICS_TEST_GEN ${CMAKE_CURRENT_BINARY_DIR}/metrics_gen)
set(METRICS_HEALTH_PROTO_DIR /usr/share/grpc-proto)
set(METRICS_HEALTH_OUT ${METRICS_TEST_GEN}/grpc/health/v1/health)
file(MAKE_DIRECTORY ${METRICS_TEST_GEN})
add_custom_command(
  OUTPUT ${METRICS_HEALTH_OUT}.pb.cc ${METRICS_HEALTH_OUT}.pb.h
         ${METRICS_HEALTH_OUT}.grpc.pb.cc ${METRICS_HEALTH_OUT}.grpc.pb.h
  COMMAND protobuf::protoc --proto_path=${METRICS_HEALTH_PROTO_DIR}
          --cpp_out=${METRICS_TEST_GEN} --grpc_out=${METRICS_TEST_GEN}
          --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
          ${METRICS_HEALTH_PROTO_DIR}/grpc/health/v1/health.proto
  DEPENDS ${METRICS_HEALTH_PROTO_DIR}/grpc/health/v1/health.proto protobuf::protoc
          gRPC::grpc_cpp_plugin
  COMMENT "protoc grpc/health/v1/health.proto (metrics tests)")
add_library(metrics_test_health_proto STATIC
  ${METRICS_HEALTH_OUT}.pb.cc ${METRICS_HEALTH_OUT}.grpc.pb.cc)
target_include_directories(metrics_test_health_proto SYSTEM PUBLIC ${METRICS_TEST_GEN})
target_link_libraries(metrics_test_health_proto PUBLIC gRPC::grpc++ protobuf::libprotobuf)

add_executable(metrics_test
  metrics_server_test.cc
  metrics_grpc_test.cc)
target_compile_options(metrics_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(metrics_test PRIVATE
  stockpile_metrics stockpile_proto metrics_test_health_proto stockpile_testutil
  GTest::gmock GTest::gtest_main)
gtest_discover_tests(metrics_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Micro-benchmark of the interceptor's per-RPC work (not a test: run <build>/bin/metrics_bench).
find_package(benchmark CONFIG REQUIRED)
add_executable(metrics_bench metrics_bench_test.cc)
target_compile_options(metrics_bench PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(metrics_bench PRIVATE
  stockpile_metrics metrics_test_health_proto benchmark::benchmark benchmark::benchmark_main)

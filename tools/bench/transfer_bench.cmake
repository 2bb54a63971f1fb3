# stockpile-transfer-bench: N concurrent transfers end to end against a running catalogue with
# the TransferService (docs/allocation.md). Included by tools/bench/CMakeLists.txt.
add_executable(stockpile-transfer-bench ${CMAKE_SOURCE_DIR}/tools/bench/transfer_bench.cc)
target_compile_options(stockpile-transfer-bench PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockpile-transfer-bench PRIVATE
  stockpile_allocation_proto stockpile_common stockpile_proto gRPC::grpc++ absl::strings
  absl::str_format Threads::Threads)

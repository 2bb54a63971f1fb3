# stockpile-index-bench: the catalogue's search index over the national dataset (docs/search.md).
# Included by tools/bench/CMakeLists.txt (or, until then, by tests/unit/stock_index.cmake).
add_executable(stockpile-index-bench ${CMAKE_SOURCE_DIR}/tools/bench/index_bench.cc)
target_compile_options(stockpile-index-bench PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockpile-index-bench PRIVATE
  stockpile_stock_index stockpile_common nlohmann_json::nlohmann_json absl::strings
  absl::str_format Threads::Threads)

# stockpile-catalogue-memory-bench: memory of the catalogue's view, index and planner snapshot
# with the national dataset (docs/bench.md).
add_executable(stockpile-catalogue-memory-bench ${CMAKE_SOURCE_DIR}/tools/bench/memory_bench.cc)
target_compile_options(stockpile-catalogue-memory-bench PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockpile-catalogue-memory-bench PRIVATE stockpile_catalogue_core)

# The catalogue's search index (services/catalogue/stock_index.*) and its unit tests.
# The library lives here until services/catalogue/CMakeLists.txt defines it; guarded so that
# moving it there later does not define it twice.
if(NOT TARGET stockpile_stock_index)
  add_library(stockpile_stock_index STATIC ${CMAKE_SOURCE_DIR}/services/catalogue/stock_index.cc)
  target_include_directories(stockpile_stock_index PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_options(stockpile_stock_index PRIVATE ${STOCKPILE_WARNINGS})
  target_link_libraries(stockpile_stock_index PUBLIC
    absl::flat_hash_map absl::strings absl::synchronization absl::core_headers)
endif()

add_executable(stock_index_test stock_index_test.cc)
target_compile_options(stock_index_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stock_index_test PRIVATE
  stockpile_stock_index stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(stock_index_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# The benchmark lives with tools/bench (tools/bench/index_bench.cmake); until that folder's
# CMakeLists.txt includes the fragment, define it from here.
if(NOT TARGET stockpile-index-bench)
  include(${CMAKE_SOURCE_DIR}/tools/bench/index_bench.cmake)
endif()

# Unit tests of allocation planning and the transfer saga (tests/unit/allocation mirrors
# services/catalogue/allocation). Until services/catalogue/CMakeLists.txt adds the folder with
# add_subdirectory(allocation), it is added from here.
if(NOT TARGET stockpile_allocation)
  add_subdirectory(${CMAKE_SOURCE_DIR}/services/catalogue/allocation
                   ${CMAKE_BINARY_DIR}/services/catalogue/allocation)
endif()

add_executable(allocation_unit_tests
  allocation/planner_test.cc
  allocation/saga_test.cc
  allocation/transfer_service_test.cc
  allocation/transfer_store_test.cc
  allocation/routing_test.cc
  allocation/transfer_metrics_test.cc
  allocation/stock_snapshot_test.cc)
target_compile_options(allocation_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(allocation_unit_tests PRIVATE stockpile_allocation stockpile_testutil
                      GTest::gmock GTest::gtest_main)
gtest_discover_tests(allocation_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Transfers end to end against a real stockpile-level process.
if(NOT TARGET stockpile_allocation)
  add_subdirectory(${CMAKE_SOURCE_DIR}/services/catalogue/allocation
                   ${CMAKE_BINARY_DIR}/services/catalogue/allocation)
endif()
add_executable(allocation_integration_tests allocation_transfer_test.cc)
target_compile_options(allocation_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(allocation_integration_tests PRIVATE
  stockpile_allocation stockpile_proto stockpile_testutil GTest::gmock GTest::gtest_main)
add_dependencies(allocation_integration_tests stockpile-level)
gtest_discover_tests(allocation_integration_tests PROPERTIES LABELS integration
                     DISCOVERY_TIMEOUT 60)

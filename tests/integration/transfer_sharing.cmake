# Transfers shared between catalogue replicas through a real etcd: fenced writes, the mirror,
# takeover by another replica (in-process replicas over the fake level gateway).
if(NOT TARGET stockpile_allocation)
  add_subdirectory(${CMAKE_SOURCE_DIR}/services/catalogue/allocation
                   ${CMAKE_BINARY_DIR}/services/catalogue/allocation)
endif()
add_executable(transfer_sharing_test ${CMAKE_CURRENT_LIST_DIR}/transfer_sharing_test.cc)
target_compile_options(transfer_sharing_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(transfer_sharing_test PRIVATE
  stockpile_allocation stockpile_etcd stockpile_testutil_etcd GTest::gmock GTest::gtest_main)
gtest_discover_tests(transfer_sharing_test
  PROPERTIES LABELS integration TIMEOUT 60
  DISCOVERY_TIMEOUT 60)

# The catalogue core feeding the transfer planner's StockSnapshot (apply and reload).
add_executable(transfer_integration_tests transfer_snapshot_feed_test.cc)
target_compile_options(transfer_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(transfer_integration_tests PRIVATE
  stockpile_catalogue_core stockpile_allocation stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(transfer_integration_tests PROPERTIES LABELS integration
                     DISCOVERY_TIMEOUT 60)

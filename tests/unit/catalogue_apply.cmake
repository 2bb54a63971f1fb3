# The catalogue's apply path with large, repetitive batches (latest state per key, memory
# updated on a second thread, restart from the store).
add_executable(catalogue_apply_tests ${CMAKE_CURRENT_LIST_DIR}/catalogue_apply_test.cc)
target_compile_options(catalogue_apply_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_apply_tests PRIVATE stockpile_catalogue_core stockpile_testutil
                      GTest::gtest_main)
gtest_discover_tests(catalogue_apply_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# stockctl audit: warehouse and transfer audit entries, table and JSON.
add_executable(stockctl_audit_tests ${CMAKE_CURRENT_LIST_DIR}/stockctl_audit_test.cc)
target_compile_options(stockctl_audit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(stockctl_audit_tests PRIVATE stockctl_lib nlohmann_json::nlohmann_json
                      GTest::gmock_main)
gtest_discover_tests(stockctl_audit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

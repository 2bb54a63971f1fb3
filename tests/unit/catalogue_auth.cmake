# Access control of stockpile-catalogue's CatalogueService and TransferService: the real
# handlers behind the auth interceptor and rules table, in process (level services faked).
add_executable(catalogue_access_tests auth/catalogue_access_test.cc)
target_compile_options(catalogue_access_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_access_tests PRIVATE stockpile_catalogue_core stockpile_auth
                      stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(catalogue_access_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

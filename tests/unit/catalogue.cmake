# Unit tests of the catalogue (tests/unit/catalogue mirrors services/catalogue).
add_executable(catalogue_unit_tests catalogue/catalogue_core_test.cc catalogue/catalogue_store_test.cc
               catalogue/config_test.cc catalogue/national_view_test.cc
               catalogue/replication_source_test.cc)
target_compile_options(catalogue_unit_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(catalogue_unit_tests PRIVATE stockpile_catalogue_core stockpile_testutil
                      GTest::gmock GTest::gtest_main)
gtest_discover_tests(catalogue_unit_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Tests of stockpile-bench and stockpile-demo (tools/bench, tools/demo).
add_executable(bench_tools_test bench_tools_test.cc)
target_compile_options(bench_tools_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(bench_tools_test PRIVATE stockpile_demo_lib stockpile_testutil GTest::gtest_main)
add_dependencies(bench_tools_test stockpile-wake-bench stockpile-bench)
gtest_discover_tests(bench_tools_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

foreach(t bench_level_test demo_level_test)
  add_executable(${t} ${t}.cc)
  target_compile_options(${t} PRIVATE ${STOCKPILE_WARNINGS})
  target_link_libraries(${t} PRIVATE stockpile_demo_lib stockpile_testutil
                        nlohmann_json::nlohmann_json GTest::gtest_main)
  # The tests run the built binaries: make sure they exist.
  add_dependencies(${t} stockpile-bench stockpile-demo)
  gtest_discover_tests(${t} PROPERTIES LABELS integration TIMEOUT 60 DISCOVERY_TIMEOUT 60)
endforeach()

# catalogue-lag against two real level services and a real catalogue.
add_executable(bench_catalogue_test bench_catalogue_test.cc)
target_compile_options(bench_catalogue_test PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(bench_catalogue_test PRIVATE stockpile_catalogue_proto stockpile_proto
                      stockpile_demo_lib stockpile_testutil nlohmann_json::nlohmann_json
                      GTest::gtest_main)
add_dependencies(bench_catalogue_test stockpile-bench stockpile-catalogue stockpile-level)
gtest_discover_tests(bench_catalogue_test PROPERTIES LABELS integration TIMEOUT 90
                     DISCOVERY_TIMEOUT 60)

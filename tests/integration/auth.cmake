# TLS and authorization over real gRPC (in-process server, certificates made with openssl).
add_executable(auth_integration_tests auth_tls_test.cc)
target_compile_options(auth_integration_tests PRIVATE ${STOCKPILE_WARNINGS})
target_link_libraries(auth_integration_tests PRIVATE stockpile_auth stockpile_proto
                      stockpile_testutil GTest::gmock GTest::gtest_main)
gtest_discover_tests(auth_integration_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

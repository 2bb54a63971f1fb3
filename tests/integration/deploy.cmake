# Offline validation of the deployment files: Prometheus rules and their unit tests, Grafana
# dashboard, Helm chart (schema, rendered templates, validateValues), plain manifests
# (kustomize), Kubernetes API schemas, Dockerfile packages. See tools/validate/validate_deploy.sh.
add_test(NAME DeployValidation COMMAND bash ${CMAKE_SOURCE_DIR}/tools/validate/validate_deploy.sh)
set_tests_properties(DeployValidation PROPERTIES LABELS integration TIMEOUT 300)

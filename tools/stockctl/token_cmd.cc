// stockctl token issue: bearer tokens for staff, dispatchers, dashboards and services.
#include <iostream>

#include "absl/time/time.h"
#include "services/common/auth/token.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

void AddTokenCommands(CLI::App& app, ActionMap& actions) {
  auto* token = app.add_subcommand("token", "Bearer tokens (needs the deployment's signing key)");
  auto* issue = token->add_subcommand("issue", "Print a signed token (JWT, HS256) on stdout");
  struct Args {
    std::string key, subject, role, scope, ttl = "8h";
  };
  auto args = std::make_shared<Args>();
  issue->add_option("--key", args->key, "signing key file (the services' --auth-key-file)")
      ->required();
  issue->add_option("--subject", args->subject, "who the token is for, e.g. wang.li")->required();
  issue->add_option("--role", args->role, "staff | dispatcher | viewer | service | admin")
      ->required();
  issue->add_option("--scope", args->scope, "region-code prefix it may act on (empty: national)");
  issue->add_option("--ttl", args->ttl, "lifetime, e.g. 8h, 30m, 720h")->capture_default_str();
  actions[issue] = [args]() {
    absl::Duration ttl;
    if (!absl::ParseDuration(args->ttl, &ttl)) {
      std::cerr << "stockctl: USAGE: --ttl \"" << args->ttl << "\" is not a duration like 8h\n";
      return kExitUsage;
    }
    auto token = auth::IssueToken(args->key, args->subject, args->role, args->scope, ttl);
    if (!token.ok()) {
      std::cerr << "stockctl: INVALID_ARGUMENT: " << token.status().message() << "\n";
      return kExitUsage;
    }
    std::cout << *token << "\n";
    return kExitOk;
  };
}

}  // namespace stockpile::stockctl

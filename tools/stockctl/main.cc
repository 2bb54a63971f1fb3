// stockctl: the warehouse staff's client of a level service. Wiring only: flags, commands, run.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "tools/stockctl/commands.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// A global flag given twice takes the last value, so scripts can append overrides.
constexpr CLI::MultiOptionPolicy kLastWins = CLI::MultiOptionPolicy::TakeLast;

void AddGlobalFlags(CLI::App& app, GlobalOptions& o) {
  o.server = EnvOr("STOCKPILE_SERVER", "127.0.0.1:7500");
  o.catalogue = EnvOr("STOCKPILE_CATALOGUE", "127.0.0.1:7510");
  o.actor = EnvOr("STOCKPILE_ACTOR", EnvOr("USER", "unknown"));
  app.add_option("--server", o.server, "Level service HOST:PORT (env STOCKPILE_SERVER)")
      ->capture_default_str()
      ->multi_option_policy(kLastWins);
  app.add_option("--catalogue", o.catalogue,
                 "Catalogue HOST:PORT for 'catalogue' and 'transfer' (env STOCKPILE_CATALOGUE)")
      ->capture_default_str()
      ->multi_option_policy(kLastWins);
  app.add_flag("--json", o.json, "Machine output: protobuf JSON (lists as arrays)");
  app.add_option("--actor", o.actor, "Who does this (env STOCKPILE_ACTOR, else $USER)")
      ->capture_default_str()
      ->multi_option_policy(kLastWins);
  app.add_option("--timeout", o.timeout_seconds, "Deadline of every call, seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->multi_option_policy(kLastWins);
  app.add_option("--tls-ca", o.tls_ca, "CA bundle of the server (use TLS; env STOCKPILE_TLS_CA)");
  app.add_option("--tls-cert", o.tls_cert,
                 "client certificate for mutual TLS (env STOCKPILE_TLS_CERT)");
  app.add_option("--tls-key", o.tls_key,
                 "client private key for mutual TLS (env STOCKPILE_TLS_KEY)");
  app.add_option("--token-file", o.token_file,
                 "file holding the bearer token (env STOCKPILE_TOKEN_FILE or STOCKPILE_TOKEN)");
  app.add_option("--request-id", o.request_id,
                 "Idempotency key of a mutation (default: generated and printed; reuse it to "
                 "retry safely)")
      ->multi_option_policy(kLastWins);
}

// The most deeply nested subcommand the user named.
const CLI::App* ChosenCommand(const CLI::App& app) {
  const CLI::App* current = &app;
  while (true) {
    auto chosen = current->get_subcommands();
    if (chosen.empty()) return current;
    current = chosen.front();
  }
}

// Edit distance of two short words (a command typed with a letter swapped, missing or extra).
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// CLI11 reports a mistyped command ("recieve") only as "A subcommand is required": the word it
// did not know stays among the unparsed arguments. Name it, with the nearest command.
std::optional<std::string> UnknownCommand(const CLI::App& app) {
  if (!app.get_subcommands().empty()) return std::nullopt;
  for (const std::string& word : app.remaining()) {
    if (word.empty() || word[0] == '-') continue;
    std::string message = "unknown command '" + word + "'";
    std::string nearest;
    size_t best = 3;  // more than two edits away is not a typo of it
    for (const CLI::App* command : app.get_subcommands({})) {
      const size_t d = Distance(word, command->get_name());
      if (d < best) best = d, nearest = command->get_name();
    }
    if (!nearest.empty()) message += " (did you mean '" + nearest + "'?)";
    return message;
  }
  return std::nullopt;
}

int Run(int argc, char** argv) {
  CLI::App app{"stockctl: warehouse staff's client of a Stockpile level service", "stockctl"};
  app.footer(ExitCodeHelp());
  app.fallthrough();  // global flags may come after the subcommand
  app.require_subcommand(1);
  Context ctx;
  AddGlobalFlags(app, ctx.options());
  ActionMap actions;
  AddWarehouseCommands(app, ctx, actions);
  AddMovementCommands(app, ctx, actions);
  AddQuotaCommands(app, ctx, actions);
  AddQueryCommands(app, ctx, actions);
  AddWatchCommand(app, ctx, actions);
  AddImportCommands(app, ctx, actions);
  AddCatalogueCommands(app, ctx, actions);
  AddTransferCommands(app, ctx, actions);
  AddAuditCommand(app, ctx, actions);
  AddTokenCommands(app, actions);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::optional<std::string> unknown = UnknownCommand(app);
    std::cerr << "stockctl: USAGE: " << (unknown.has_value() ? *unknown : std::string(e.what()))
              << "\nRun with --help for more information.\n";
    return kExitUsage;
  }
  const CLI::App* chosen = ChosenCommand(app);
  auto it = actions.find(chosen);
  if (it == actions.end()) {
    std::cerr << "stockctl: USAGE: '" << chosen->get_name() << "' needs a subcommand\n"
              << chosen->help();
    return kExitUsage;
  }
  return it->second();
}

}  // namespace
}  // namespace stockpile::stockctl

int main(int argc, char** argv) {
  try {
    return stockpile::stockctl::Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "stockctl: INTERNAL: " << e.what() << "\n";
    return stockpile::stockctl::kExitOther;
  }
}

#pragma once

#include <CLI/CLI.hpp>

#include "tools/stockctl/context.h"

namespace stockpile::stockctl {

// Each command group adds its subcommands to `app` and their actions to `actions`.
void AddWarehouseCommands(CLI::App& app, Context& ctx, ActionMap& actions);
void AddMovementCommands(CLI::App& app, Context& ctx, ActionMap& actions);
void AddQuotaCommands(CLI::App& app, Context& ctx, ActionMap& actions);
void AddQueryCommands(CLI::App& app, Context& ctx, ActionMap& actions);  // after movements
void AddWatchCommand(CLI::App& app, Context& ctx, ActionMap& actions);
void AddImportCommands(CLI::App& app, Context& ctx, ActionMap& actions);
// The catalogue's national view and the dispatchers' transfers (both on --catalogue).
void AddCatalogueCommands(CLI::App& app, Context& ctx, ActionMap& actions);
void AddTransferCommands(CLI::App& app, Context& ctx, ActionMap& actions);
// audit --warehouse (level service) | --transfer (catalogue): who did what, when.
void AddAuditCommand(CLI::App& app, Context& ctx, ActionMap& actions);

// Paging flags shared by list commands.
struct PageFlags {
  int32_t page_size = 0;
  std::string page_token;
  bool all = false;
};
void AddPageFlags(CLI::App* cmd, PageFlags& flags);

// Fetches one page (or every page with --all) and appends the items to `out`.
// `fetch(token, &next_token)` makes one call; returns the first failure.
grpc::Status FetchPages(const PageFlags& flags,
                        const std::function<grpc::Status(const std::string&, std::string*)>& fetch);

// Prints where the next page starts (stderr, so --json stays one document). `offer_all`: the
// command takes --all too (those with AddPageFlags); `catalogue search` does not.
void AnnounceNextPage(const std::string& next_page_token, bool offer_all);

// token issue: mint a bearer token with the deployment's key (operators only).
void AddTokenCommands(CLI::App& app, ActionMap& actions);

}  // namespace stockpile::stockctl

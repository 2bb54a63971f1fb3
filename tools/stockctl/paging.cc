#include <iostream>

#include "tools/stockctl/commands.h"

namespace stockpile::stockctl {

void AddPageFlags(CLI::App* cmd, PageFlags& flags) {
  cmd->add_option("--page-size", flags.page_size, "Entries per page (server default when 0)");
  cmd->add_option("--page-token", flags.page_token, "Continue from a previous listing");
  cmd->add_flag("--all", flags.all, "Fetch every page");
}

grpc::Status FetchPages(
    const PageFlags& flags,
    const std::function<grpc::Status(const std::string&, std::string*)>& fetch) {
  std::string token = flags.page_token;
  while (true) {
    std::string next;
    grpc::Status status = fetch(token, &next);
    if (!status.ok()) return status;
    if (!flags.all || next.empty()) {
      AnnounceNextPage(next, /*offer_all=*/true);  // its command has AddPageFlags' --all
      return status;
    }
    token = next;
  }
}

void AnnounceNextPage(const std::string& next_page_token, bool offer_all) {
  if (next_page_token.empty()) return;
  std::cerr << "more entries: --page-token=" << next_page_token << (offer_all ? " (or --all)" : "")
            << "\n";
}

}  // namespace stockpile::stockctl

#pragma once

// The one place the etcd code logs; swap it when the project picks a logging library.
#include <iostream>

#include "absl/strings/string_view.h"

namespace stockpile::etcd {

inline void EtcdLog(absl::string_view message) {
  std::cerr << "[stockpile etcd] " << message << std::endl;
}

}  // namespace stockpile::etcd

// A measured figure as a JSON number: rounded to 6 significant digits (what the figure is
// worth; keeps the files readable), and null when not finite (nothing was measured).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace quorumq::bench {

inline nlohmann::ordered_json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace quorumq::bench

#include "common.hpp"
namespace unmix::cli {
int cmd_srmd(const std::vector<std::string>&, const Comm&) { throw ConfigError("srmd: not built yet"); }
} // namespace unmix::cli

#include "common.hpp"
namespace unmix::cli {
int cmd_factorize(const std::vector<std::string>&, const Comm&) { throw ConfigError("factorize: not built yet"); }
} // namespace unmix::cli

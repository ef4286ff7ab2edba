#pragma once
// The error hierarchy. Every message says what went wrong and, where possible, how to fix it.
#include <stdexcept>
#include <string>

namespace unmix {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};
/// Bad options or contradictory settings: the user can fix the command line or config file.
class ConfigError : public Error {
public:
  using Error::Error;
};
/// The data is unusable (NaN, wrong shape, negative where it must not be, ...).
class DataError : public Error {
public:
  using Error::Error;
};
/// A file could not be read or written.
class IoError : public Error {
public:
  using Error::Error;
};
/// An MPI call failed; carries MPI's own message.
class MpiError : public Error {
public:
  using Error::Error;
};

} // namespace unmix

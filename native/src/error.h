// Engine-internal error: thrown inside C++, caught at the C API boundary (engine.cpp),
// which turns it into a status code and a message. Messages name the offending thing
// (file, key, tensor) so that a user can act on them.
#pragma once
#include <stdexcept>
#include <string>

namespace el {

enum class ErrorKind { InvalidArgument = 1, BadFile = 2, Unsupported = 3, OutOfMemory = 4, Internal = 5 };

struct Error : std::runtime_error {
  ErrorKind kind;
  Error(ErrorKind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

[[noreturn]] inline void fail(ErrorKind k, const std::string& msg) { throw Error(k, msg); }

}  // namespace el

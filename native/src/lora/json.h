// A small strict JSON reader (RFC 8259) for adapter_config.json and safetensors headers.
// Whole documents only; nesting is limited so hostile input cannot exhaust the stack.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace el::lora::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in document order

  const Value* find(const std::string& key) const;  // objects only; nullptr when absent
  bool is_null() const { return kind == Kind::Null; }
};

const char* kind_name(Value::Kind k);

// Throws el::Error(BadFile) "<what>: invalid JSON at byte N: <reason>".
Value parse(const char* data, size_t size, const std::string& what);

}  // namespace el::lora::json

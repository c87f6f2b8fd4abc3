// Recursive-descent JSON reader; see json.h.
#include "json.h"

#include <cstdlib>

#include "../error.h"

namespace el::lora::json {

const Value* Value::find(const std::string& key) const {
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "boolean";
    case Value::Kind::Number: return "number";
    case Value::Kind::String: return "string";
    case Value::Kind::Array: return "array";
    case Value::Kind::Object: return "object";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  Parser(const char* d, size_t n, const std::string& what) : d_(d), n_(n), what_(what) {}

  Value document() {
    Value v = value(0);
    skip_ws();
    if (i_ != n_) error("trailing characters after the document");
    return v;
  }

 private:
  const char* d_;
  size_t n_;
  size_t i_ = 0;
  const std::string& what_;

  [[noreturn]] void error(const std::string& why) {
    fail(ErrorKind::BadFile, what_ + ": invalid JSON at byte " + std::to_string(i_) + ": " + why);
  }
  void skip_ws() {
    while (i_ < n_ && (d_[i_] == ' ' || d_[i_] == '\t' || d_[i_] == '\n' || d_[i_] == '\r')) ++i_;
  }
  char peek() {
    skip_ws();
    if (i_ >= n_) error("unexpected end of input");
    return d_[i_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++i_;
  }
  void literal(const char* word) {
    for (const char* p = word; *p; ++p, ++i_)
      if (i_ >= n_ || d_[i_] != *p) error(std::string("expected '") + word + "'");
  }

  Value value(int depth) {
    if (depth > kMaxDepth) error("nesting too deep");
    Value v;
    switch (peek()) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.kind = Value::Kind::String; v.string = string(); break;
      case 't': literal("true"); v.kind = Value::Kind::Bool; v.boolean = true; break;
      case 'f': literal("false"); v.kind = Value::Kind::Bool; break;
      case 'n': literal("null"); break;
      default: v.kind = Value::Kind::Number; v.number = number(); break;
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.kind = Value::Kind::Object;
    expect('{');
    if (peek() == '}') { ++i_; return; }
    for (;;) {
      if (peek() != '"') error("expected a string key");
      std::string key = string();
      expect(':');
      v.object.emplace_back(std::move(key), value(depth + 1));
      if (peek() == ',') { ++i_; continue; }
      expect('}');
      return;
    }
  }

  void array(Value& v, int depth) {
    v.kind = Value::Kind::Array;
    expect('[');
    if (peek() == ']') { ++i_; return; }
    for (;;) {
      v.array.push_back(value(depth + 1));
      if (peek() == ',') { ++i_; continue; }
      expect(']');
      return;
    }
  }

  double number() {
    const size_t start = i_;
    if (i_ < n_ && d_[i_] == '-') ++i_;
    auto digits = [&] {
      const size_t s = i_;
      while (i_ < n_ && d_[i_] >= '0' && d_[i_] <= '9') ++i_;
      if (i_ == s) error("malformed number");
    };
    if (i_ < n_ && d_[i_] == '0') ++i_; else digits();
    if (i_ < n_ && d_[i_] == '.') { ++i_; digits(); }
    if (i_ < n_ && (d_[i_] == 'e' || d_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (d_[i_] == '+' || d_[i_] == '-')) ++i_;
      digits();
    }
    return std::strtod(std::string(d_ + start, i_ - start).c_str(), nullptr);
  }

  unsigned hex4() {
    unsigned u = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (i_ >= n_) error("unexpected end of input in \\u escape");
      const char c = d_[i_];
      u <<= 4;
      if (c >= '0' && c <= '9') u |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') u |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') u |= unsigned(c - 'A' + 10);
      else error("bad \\u escape");
    }
    return u;
  }

  static void put_utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += char(0xE0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    } else {
      s += char(0xF0 | (cp >> 18));
      s += char(0x80 | ((cp >> 12) & 0x3F));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++i_;  // opening quote (checked by the caller)
    std::string s;
    for (;;) {
      if (i_ >= n_) error("unterminated string");
      const char c = d_[i_++];
      if (c == '"') return s;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') { s += c; continue; }
      if (i_ >= n_) error("unterminated string");
      switch (d_[i_++]) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // surrogate pair
            if (i_ + 1 >= n_ || d_[i_] != '\\' || d_[i_ + 1] != 'u') error("lone surrogate in \\u escape");
            i_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) error("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("lone surrogate in \\u escape");
          }
          put_utf8(s, cp);
          break;
        }
        default: error("bad escape");
      }
    }
  }
};

}  // namespace

Value parse(const char* data, size_t size, const std::string& what) { return Parser(data, size, what).document(); }

}  // namespace el::lora::json

// Reading plain JS arguments (option objects, number arrays) with errors that name the field.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace addon {

inline Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

inline bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

inline double number_or(Napi::Env env, const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return dflt;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw Napi::TypeError::New(env, std::string(key) + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int32_t int_or(Napi::Env env, const Napi::Object& o, const char* key, int32_t dflt) {
  const double d = number_or(env, o, key, dflt);
  if (d != std::floor(d) || d < -2147483648.0 || d > 2147483647.0)
    throw Napi::TypeError::New(env, std::string(key) + " must be a 32-bit integer");
  return int32_t(d);
}

template <typename S, typename T>
void convert(const S* src, size_t n, T* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = T(src[i]);  // unaligned typed arrays cannot exist
}

// A number array given as a typed array or a plain array of numbers.
template <typename T>
std::vector<T> numbers(Napi::Env env, const Napi::Value& v, const char* name) {
  std::vector<T> out;
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    const size_t n = ta.ElementLength();
    const uint8_t* base = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    out.resize(n);
    switch (ta.TypedArrayType()) {
      case napi_int32_array: convert(reinterpret_cast<const int32_t*>(base), n, out.data()); break;
      case napi_uint8_array: convert(base, n, out.data()); break;
      case napi_int8_array: convert(reinterpret_cast<const int8_t*>(base), n, out.data()); break;
      case napi_float32_array: convert(reinterpret_cast<const float*>(base), n, out.data()); break;
      case napi_float64_array: convert(reinterpret_cast<const double*>(base), n, out.data()); break;
      default: throw Napi::TypeError::New(env, std::string(name) + ": unsupported typed array type");
    }
    return out;
  }
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array or a typed array");
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (x.IsBoolean()) {
      out.push_back(T(x.As<Napi::Boolean>().Value() ? 1 : 0));
    } else if (x.IsNumber()) {
      out.push_back(T(x.As<Napi::Number>().DoubleValue()));
    } else {
      throw Napi::TypeError::New(env, std::string(name) + "[" + std::to_string(i) + "] must be a number");
    }
  }
  return out;
}

}  // namespace addon

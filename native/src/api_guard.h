// The C API's boundary (edgelora.h): every entry runs its body through guarded(), which turns
// any exception into an el_status and a message, so none crosses into C.
#pragma once
#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "edgelora.h"
#include "error.h"

namespace el::api {

inline void copy_str(char* dst, size_t cap, const std::string& s) {
  if (cap == 0) return;
  const size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

inline void set_error(el_error* err, const std::string& msg) {
  if (err) copy_str(err->message, sizeof(err->message), msg);
}

template <class F>
el_status guarded(el_error* err, F&& f) {
  try {
    f();
    if (err) err->message[0] = '\0';
    return EL_OK;
  } catch (const el::Error& e) {
    set_error(err, e.what());
    return static_cast<el_status>(e.kind);
  } catch (const std::bad_alloc&) {
    set_error(err, "out of memory");
    return EL_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(err, std::string("internal error: ") + e.what());
    return EL_ERR_INTERNAL;
  } catch (...) {
    set_error(err, "internal error: unknown exception");
    return EL_ERR_INTERNAL;
  }
}

inline void require(bool ok, const char* what) {
  if (!ok) el::fail(el::ErrorKind::InvalidArgument, what);
}

}  // namespace el::api

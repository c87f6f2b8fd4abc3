// Rounding up to a multiple: data offsets to an alignment, sizes to a kernel's block or chunk.
#pragma once
#include <type_traits>

namespace el {

// The smallest multiple of m that is >= x (x >= 0, m > 0).
template <class T>
constexpr T round_up(T x, T m) {
  static_assert(std::is_integral_v<T>, "round_up is for integers");
  return (x + m - 1) / m * m;
}

}  // namespace el

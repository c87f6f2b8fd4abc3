// RMS norm as the forward pass computes it (shared by decode and the router's hidden states).
#pragma once
#include <cmath>

namespace el {

// y = x / rms(x) * w, accumulated in double like ggml's rms_norm.
inline void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += double(x[i] * x[i]);
  const float mean = float(sum / n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

}  // namespace el

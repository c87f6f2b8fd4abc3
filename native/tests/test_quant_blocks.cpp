// Hand-worked blocks of the types llama.cpp's presets add to Q8_0 / Q4_0 / Q4_K / Q6_K (layouts
// of ggml-common.h): each block's decoded values on every path this CPU runs.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"
#include "kernels/kernels.h"
#include "tensor_types.h"

using namespace el;
using namespace el::kernels;

namespace {

std::vector<float> decode(const KernelSet& ks, TensorType t, const void* data, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  ks.of(t).to_float(data, y.data(), n);
  return y;
}

// The activation type each pairs with (as ggml's CPU backend) and ggml's bytes per block.
void test_traits() {
  CHECK(type_traits(TensorType::Q4_1).vec_dot_type == TensorType::Q8_1);
  CHECK(type_traits(TensorType::Q5_1).vec_dot_type == TensorType::Q8_1);
  CHECK(type_traits(TensorType::Q5_0).vec_dot_type == TensorType::Q8_0);
  CHECK(type_traits(TensorType::IQ4_NL).vec_dot_type == TensorType::Q8_0);
  CHECK(type_traits(TensorType::Q2_K).vec_dot_type == TensorType::Q8_K);
  CHECK(type_traits(TensorType::Q3_K).vec_dot_type == TensorType::Q8_K);
  CHECK(type_traits(TensorType::Q5_K).vec_dot_type == TensorType::Q8_K);
  CHECK(row_size(TensorType::Q4_1, 64) == 40);
  CHECK(row_size(TensorType::Q5_0, 64) == 44);
  CHECK(row_size(TensorType::Q5_1, 64) == 48);
  CHECK(row_size(TensorType::Q8_1, 64) == 72);
  CHECK(row_size(TensorType::IQ4_NL, 64) == 36);
  CHECK(row_size(TensorType::Q2_K, 256) == 84);
  CHECK(row_size(TensorType::Q3_K, 256) == 110);
  CHECK(row_size(TensorType::Q5_K, 256) == 176);
}

void test_known_blocks(const KernelSet& ks) {
  {  // Q4_1: d = 0.5, m = 1; value = d * q + m
    block_q4_1 b{};
    b.d = 0x3800;
    b.m = 0x3C00;
    b.qs[0] = 0xF0;
    const auto y = decode(ks, TensorType::Q4_1, &b, 32);
    CHECK(y[0] == 1.f && y[16] == 8.5f && y[1] == 1.f);
  }
  {  // Q5_0: d = 0.5; bit j of qh is element j's bit 4; value = d * (q - 16)
    block_q5_0 b{};
    b.d = 0x3800;
    const uint32_t qh = (1u << 0) | (1u << 17);
    std::memcpy(b.qh, &qh, 4);
    b.qs[2] = 0xF3;
    const auto y = decode(ks, TensorType::Q5_0, &b, 32);
    CHECK(y[0] == 0.f && y[1] == -8.f && y[17] == 0.f && y[16] == -8.f);
    CHECK(y[2] == -6.5f && y[18] == -0.5f);
  }
  {  // Q5_1: d = 0.5, m = -1
    block_q5_1 b{};
    b.d = 0x3800;
    b.m = 0xBC00;
    const uint32_t qh = 1u << 16;
    std::memcpy(b.qh, &qh, 4);
    b.qs[0] = 0x21;
    const auto y = decode(ks, TensorType::Q5_1, &b, 32);
    CHECK(y[0] == -0.5f && y[16] == 8.f && y[1] == -1.f);
  }
  {  // IQ4_NL: d = 0.5; nibbles index the non-linear table
    block_iq4_nl b{};
    b.d = 0x3800;
    b.qs[0] = 0xF0;
    b.qs[3] = 0x78;
    const auto y = decode(ks, TensorType::IQ4_NL, &b, 32);
    CHECK(y[0] == -63.5f && y[16] == 56.5f && y[3] == 0.5f && y[19] == -5.f);
  }
  {  // Q2_K: d = 1, dmin = 0.5; scales[j]: scale low nibble, min high nibble (sub-blocks of 16)
    block_q2_K b{};
    b.d = 0x3C00;
    b.dmin = 0x3800;
    b.scales[0] = 0x32;  // scale 2, min 3
    b.scales[6] = 0x01;  // scale 1, min 0
    b.scales[9] = 0x15;  // scale 5, min 1
    b.qs[0] = 0xE4;      // element 0: 0, element 32: 1, element 64: 2, element 96: 3
    b.qs[48] = 0x03;     // element 128 + 16 (sub-block 9): 3
    const auto y = decode(ks, TensorType::Q2_K, &b, 256);
    CHECK(y[0] == -1.5f && y[96] == 3.f && y[144] == 14.5f && y[32] == 0.f && y[1] == -1.5f);
  }
  {  // Q3_K: d = 0.5; sub-block 0 scale 34 - 32 = 2, sub-block 13 scale 29 - 32 = -3
    block_q3_K b{};
    b.d = 0x3800;
    b.scales[0] = 2;
    b.scales[8] = 2;          // top bits of sub-block 0
    b.scales[5] = 13 << 4;    // low bits of sub-block 13
    b.scales[9] = 1 << 6;     // top bits of sub-block 13
    b.qs[0] = 0x01;
    b.hmask[0] = 0x01;        // element 0: 1, high bit set
    b.qs[48] = 0x30;          // element 128 + 64 + 16 = 208: bits 4-5 of qs[32 + 16]
    b.hmask[16] = 0x40;       // its high bit: bit 208 / 32 of hmask[208 % 32]
    const auto y = decode(ks, TensorType::Q3_K, &b, 256);
    CHECK(y[0] == 1.f && y[1] == -4.f && y[208] == -4.5f);
  }
  {  // Q5_K: d = 1, dmin = 0.5; sub-block 0 scale 2 min 4, sub-block 1 scale 1 min 0
    block_q5_K b{};
    b.d = 0x3C00;
    b.dmin = 0x3800;
    b.scales[0] = 2;
    b.scales[4] = 4;
    b.scales[1] = 1;
    b.qs[0] = 0x03;
    b.qh[0] = 0x01;  // element 0: 3 + 16
    b.qs[1] = 0x50;
    b.qh[1] = 0x02;  // element 33: 5 + 16
    const auto y = decode(ks, TensorType::Q5_K, &b, 256);
    CHECK(y[0] == 36.f && y[1] == -2.f && y[33] == 21.f && y[32] == 0.f);
  }
}

}  // namespace

int main() {
  test_traits();
  for (const KernelSet* ks : available()) {
    std::fprintf(stderr, "path %s\n", ks->name);
    test_known_blocks(*ks);
  }
  return el_test::test_exit_code();
}

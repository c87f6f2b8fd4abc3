// Names of GGUF tensor type ids (ggml.h's enum ggml_type), and the list of supported ones.
#include "type_names.h"

#include "kernels/kernels.h"
#include "tensor_types.h"

namespace el {

namespace {
// Index = type id. 4, 5 (q4_2, q4_3) and 31-33, 36-38 (repacked variants) are ids ggml has since
// removed; old files may still carry them, so they keep their names.
constexpr const char* kNames[] = {
    "f32",    "f16",    "q4_0",    "q4_1",  "q4_2",   "q4_3",  "q5_0",   "q5_1",   "q8_0",  "q8_1",  "q2_K",
    "q3_K",   "q4_K",   "q5_K",    "q6_K",  "q8_K",   "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
    "iq2_s",  "iq4_xs", "i8",      "i16",   "i32",    "i64",   "f64",    "iq1_m",  "bf16",  "q4_0_4_4", "q4_0_4_8",
    "q4_0_8_8", "tq1_0", "tq2_0",  "iq4_nl_4_4", "iq4_nl_4_8", "iq4_nl_8_8", "mxfp4", "nvfp4", "q1_0", "q2_0",
};
constexpr uint32_t kCount = sizeof(kNames) / sizeof(kNames[0]);
}  // namespace

const char* ggml_type_name(uint32_t id) { return id < kCount ? kNames[id] : nullptr; }

std::string supported_weight_types() {
  std::string out;
  for (uint32_t id = 0; id < uint32_t(kernels::kMaxTypeId); ++id) {
    if (!type_traits(id) || !kernels::scalar().of(TensorType(id)).vec_dot) continue;
    out += (out.empty() ? "" : ", ") + std::string(type_traits(id)->name);
  }
  return out;
}

std::string unreadable_types_message(const std::vector<std::pair<std::string, uint32_t>>& tensors) {
  std::vector<std::pair<uint32_t, std::pair<std::string, size_t>>> by_type;  // in order of first use
  for (const auto& [name, id] : tensors) {
    auto it = by_type.begin();
    while (it != by_type.end() && it->first != id) ++it;
    if (it == by_type.end()) by_type.push_back({id, {name, 0}});
    else ++it->second.second;
  }
  std::string out;
  for (const auto& [id, first] : by_type) {
    out += out.empty() ? "" : "; ";
    out += "tensor '" + first.first + "'";
    if (first.second > 0) out += " and " + std::to_string(first.second) + " more";
    out += (first.second > 0 ? " have " : " has ") + describe_type_id(id);
  }
  return out + ", which this engine cannot read (supported: " + supported_weight_types() + ")";
}

std::string describe_type_id(uint32_t id) {
  const char* name = ggml_type_name(id);
  return name ? "type " + std::string(name) + " (id " + std::to_string(id) + ")"
              : "type id " + std::to_string(id) + " (unknown)";
}

}  // namespace el

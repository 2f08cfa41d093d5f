// Left-padded batched decoding, the usual serving layout (docs/kernels.md): B sequences share
// one cache of L + 1 slots, each left-padded so that its tokens end at the same slot, and the
// new token of every sequence sits in slot L. One decode call serves the whole batch; each
// sequence must get the attention of its query over its own keys only, whatever the padded
// slots hold (here NaN, as an uninitialized cache might). Checked against each sequence alone,
// unpadded.
// ctest-pass: sequence 0: 6 earlier tokens, 7 keys
// ctest-pass: sequence 2: 0 earlier tokens, 1 keys
// ctest-pass: max \|batched left-padded - each sequence alone\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <iostream>
#include <limits>
#include <vector>

using emask::Index;

int main() {
  const Index B = 3, H = 4, Hkv = 2, D = 16, L = 9;
  const std::vector<Index> n = {6, 9, 0};  // earlier tokens of each sequence
  const Index slots = L + 1;
  // Cache [B, Hkv, L + 1, D]; padded slots hold NaN, which must never be read.
  std::vector<float> k(static_cast<std::size_t>(B * Hkv * slots * D),
                       std::numeric_limits<float>::quiet_NaN());
  std::vector<float> v(k.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> q(static_cast<std::size_t>(B * H * D)), out(q.size());
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < Hkv; ++h)
      for (Index s = L - n[static_cast<std::size_t>(b)]; s < slots; ++s)
        for (Index c = 0; c < D; ++c) {
          const std::size_t at = static_cast<std::size_t>(((b * Hkv + h) * slots + s) * D + c);
          k[at] = std::sin(0.11f * static_cast<float>(at));
          v[at] = std::cos(0.07f * static_cast<float>(at));
        }
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.3f * static_cast<float>(i) + 1.f);

  // Sequence b keeps slots [L - n_b, L + 1); the query is the last position (bottom-right).
  std::vector<Index> starts(static_cast<std::size_t>(B)), ends(static_cast<std::size_t>(B), slots);
  for (Index b = 0; b < B; ++b)
    starts[static_cast<std::size_t>(b)] = L - n[static_cast<std::size_t>(b)];
  const auto mask =
      emask::key_padding::from_ranges(starts, ends, slots) & emask::causal::bottom_right(1, slots);
  emask::masked_attention(emask::decode, emask::view_bhld<const float>(q.data(), B, H, 1, D),
                          emask::view_bhld<const float>(k.data(), B, Hkv, slots, D),
                          emask::view_bhld<const float>(v.data(), B, Hkv, slots, D), mask,
                          emask::view_bhld(out.data(), B, H, 1, D));

  // Each sequence alone: its query over its n_b + 1 keys, no padding, no mask needed.
  float worst = 0;
  for (Index b = 0; b < B; ++b) {
    const Index nb = n[static_cast<std::size_t>(b)], first = L - nb, keys = nb + 1;
    std::cout << "sequence " << b << ": " << nb << " earlier tokens, " << keys << " keys\n";
    for (Index h = 0; h < H; ++h) {
      const Index kvh = h / (H / Hkv);
      const float* kb = k.data() + ((b * Hkv + kvh) * slots + first) * D;
      const float* vb = v.data() + ((b * Hkv + kvh) * slots + first) * D;
      emask::row_matrix<float> alone(1, D);
      emask::masked_attention(
          Eigen::Map<const emask::row_matrix<float>>(q.data() + (b * H + h) * D, 1, D),
          Eigen::Map<const emask::row_matrix<float>>(kb, keys, D),
          Eigen::Map<const emask::row_matrix<float>>(vb, keys, D), emask::keep_all(), alone);
      const Eigen::Map<const emask::row_matrix<float>> batched(out.data() + (b * H + h) * D, 1, D);
      // std::max would skip a NaN: a non-finite output counts as a mismatch explicitly.
      const float diff = (batched - alone).cwiseAbs().maxCoeff();
      worst = std::isfinite(diff) ? std::max(worst, diff) : std::numeric_limits<float>::infinity();
    }
  }
  const bool ok = worst <= 1e-6f;  // NaN fails too
  std::cout << "max |batched left-padded - each sequence alone| = " << worst
            << (ok ? " (ok)" : " (MISMATCH)") << "\n";
  return ok ? 0 : 1;
}

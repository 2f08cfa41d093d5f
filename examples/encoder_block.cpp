// A transformer encoder block over a padded batch: fused QKV projection laid out [B, L, H, D]
// (no copy: interleaved views), query and key padding, output projection, residual, and masked
// mean pooling. Checks that padding changes nothing: each sequence alone, unpadded, gives the
// same outputs, and padded query rows come out exactly zero.
// ctest-pass: padded attention rows exactly zero: yes
// ctest-pass: max \|padded batch - each sequence alone\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/seq/pooling.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

namespace {
mat weights(Index rows, Index cols, float phase) {
  mat w(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j)
      w(i, j) = 0.3f * std::sin(phase + 0.7f * static_cast<float>(i * cols + j));
  return w;
}

// Attention of a batch laid out [B*L, H*Dh] (rows = tokens), with the given mask.
template <class Mask>
mat attend(const mat& q, const mat& k, const mat& v, Index B, Index L, Index H, Index Dh,
           const Mask& mask) {
  mat out = mat::Zero(B * L, H * Dh);
  emask::masked_attention(
      emask::view_blhd(q.data(), B, L, H, Dh), emask::view_blhd(k.data(), B, L, H, Dh),
      emask::view_blhd(v.data(), B, L, H, Dh), mask, emask::view_blhd(out.data(), B, L, H, Dh));
  return out;
}
}  // namespace

int main() {
  const Index B = 3, L = 12, H = 4, Dh = 8, Dm = H * Dh;
  const std::vector<Index> lengths = {12, 7, 4};
  const mat Wq = weights(Dm, Dm, 0.1f), Wk = weights(Dm, Dm, 0.2f), Wv = weights(Dm, Dm, 0.3f),
            Wo = weights(Dm, Dm, 0.4f);
  mat x(B * L, Dm);
  for (Index r = 0; r < B * L; ++r)
    for (Index c = 0; c < Dm; ++c)
      x(r, c) = std::cos(0.37f * static_cast<float>(r) + 0.11f * static_cast<float>(c));

  // Projections: row b*L + t of q is token t of sequence b, columns h*Dh.. are head h.
  const mat q = x * Wq, k = x * Wk, v = x * Wv;
  const auto mask =
      emask::query_padding::from_lengths(lengths, L) & emask::key_padding::from_lengths(lengths, L);
  const mat attn = attend(q, k, v, B, L, H, Dh, mask);
  const mat y = x + attn * Wo;
  const emask::bool_matrix valid = emask::sequence_mask(lengths, L);
  const mat pooled = emask::masked_mean(y, valid);

  bool zero_rows = true;
  for (Index b = 0; b < B; ++b)
    for (Index t = lengths[static_cast<std::size_t>(b)]; t < L; ++t)
      zero_rows = zero_rows && attn.row(b * L + t).isZero(0);

  // Each sequence alone, without padding and without a mask.
  double worst = 0;
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    const mat qb = q.middleRows(b * L, n), kb = k.middleRows(b * L, n), vb = v.middleRows(b * L, n);
    const mat alone = attend(qb, kb, vb, 1, n, H, Dh, emask::key_padding::from_lengths({n}, n));
    worst = std::max(
        worst, static_cast<double>((alone - attn.middleRows(b * L, n)).cwiseAbs().maxCoeff()));
  }
  std::cout << "encoder block: batch " << B << ", length " << L << ", lengths 12 7 4, " << H
            << " heads of " << Dh << "\n";
  std::cout << "pooled sequence means (first 4 features):\n" << pooled.leftCols(4) << "\n";
  std::cout << "padded attention rows exactly zero: " << (zero_rows ? "yes" : "NO") << "\n";
  std::cout << "max |padded batch - each sequence alone| = " << worst
            << (worst < 1e-5 ? " (ok)" : " (MISMATCH)") << "\n";
  return zero_rows && worst < 1e-5 ? 0 : 1;
}

// T5 relative-position bias as a score modifier: an encoder's bidirectional self-attention and
// a decoder's causal self-attention with a learned bias table (num_buckets x H), computed by
// the tiled kernel with the bias inside its tiles. Checks each head against a plain loop that
// adds table(bucket(k - q), h) to every score, and prints the buckets of a few distances.
// ctest-pass: buckets \(bidirectional, 32, 128\): -200:15 -20:10 -5:5 0:0 3:19 10:24 100:31
// ctest-pass: encoder: max \|tiled - plain loop\| = [0-9.e-]+ \(ok\)
// ctest-pass: decoder: max \|tiled - plain loop\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

namespace {

float wave(Index i, float phase) { return std::sin(phase + 0.37f * static_cast<float>(i)); }

// softmax(q k^T / sqrt(D) + bias) v of head h, the bias looked up for every pair.
mat plain_loop(const mat& q, const mat& k, const mat& v, const Eigen::MatrixXd& table, Index h,
               bool bidirectional, Index max_distance) {
  const Index L = q.rows();
  mat out = mat::Zero(L, v.cols());
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.cols()));
  for (Index i = 0; i < L; ++i) {
    // The decoder is causal: keys 0..i; the encoder sees every key. No infinities, so the loop
    // means the same under -ffast-math.
    const Index kept = bidirectional ? L : i + 1;
    std::vector<double> s(static_cast<std::size_t>(kept));
    double mx = 0;
    for (Index j = 0; j < kept; ++j) {
      const Index bucket =
          emask::t5_relative_bucket(j - i, bidirectional, table.rows(), max_distance);
      s[static_cast<std::size_t>(j)] =
          scale * q.row(i).cast<double>().dot(k.row(j).cast<double>()) + table(bucket, h);
      mx = j == 0 ? s[0] : std::max(mx, s[static_cast<std::size_t>(j)]);
    }
    double sum = 0;
    for (double x : s) sum += std::exp(x - mx);
    for (Index j = 0; j < kept; ++j)
      out.row(i) +=
          static_cast<float>(std::exp(s[static_cast<std::size_t>(j)] - mx) / sum) * v.row(j);
  }
  return out;
}

}  // namespace

int main() {
  std::cout << "buckets (bidirectional, 32, 128):";
  for (Index rel : {-200, -20, -5, 0, 3, 10, 100})
    std::cout << " " << rel << ":" << emask::t5_relative_bucket(rel, true, 32, 128);
  std::cout << "\n";

  const Index H = 4, L = 150, D = 32, buckets = 32, max_distance = 128;
  // The learned table, [num_buckets, H] as Hugging Face's relative_attention_bias.weight.
  Eigen::MatrixXd table(buckets, H);
  for (Index r = 0; r < buckets; ++r)
    for (Index h = 0; h < H; ++h)
      table(r, h) = 0.5 * std::cos(0.3 * static_cast<double>(r) + static_cast<double>(h));

  std::vector<float> q(static_cast<std::size_t>(H * L * D)), k(q.size()), v(q.size()),
      out(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    q[i] = wave(static_cast<Index>(i), 0.1f);
    k[i] = wave(static_cast<Index>(i), 1.3f);
    v[i] = wave(static_cast<Index>(i), 2.9f);
  }
  const auto qv = emask::view_bhld<const float>(q.data(), 1, H, L, D);
  const auto kv = emask::view_bhld<const float>(k.data(), 1, H, L, D);
  const auto vv = emask::view_bhld<const float>(v.data(), 1, H, L, D);

  bool ok = true;
  for (const bool encoder : {true, false}) {
    emask::attention_options opt;
    opt.score_mod = emask::t5_relative_bias(table, /*bidirectional=*/encoder, max_distance);
    if (encoder)
      emask::masked_attention(qv, kv, vv, emask::keep_all(),
                              emask::view_bhld(out.data(), 1, H, L, D), opt);
    else
      emask::masked_attention(qv, kv, vv, emask::causal(), emask::view_bhld(out.data(), 1, H, L, D),
                              opt);
    float worst = 0;
    for (Index h = 0; h < H; ++h) {
      const auto head = [&](const std::vector<float>& t) {
        return mat(Eigen::Map<const mat>(t.data() + h * L * D, L, D));
      };
      const mat ref = plain_loop(head(q), head(k), head(v), table, h, encoder, max_distance);
      worst = std::max(worst, (head(out) - ref).cwiseAbs().maxCoeff());
    }
    const bool good = worst <= 1e-5f;
    ok = ok && good;
    std::cout << (encoder ? "encoder" : "decoder") << ": max |tiled - plain loop| = " << worst
              << (good ? " (ok)" : " (TOO LARGE)") << "\n";
  }
  return ok ? 0 : 1;
}

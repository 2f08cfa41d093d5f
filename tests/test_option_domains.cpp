// Every numeric option of the public entry points outside the attention and softmax kernels, at
// its extremes (0, 1, the largest Index, emask::unbounded, NaN, +-inf, negative, finite in
// double but not in float): a correct result or an emask::error, never a crash, a hang, another
// exception or a NaN output. Each case is small, so the file runs in well under a second.
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <emask/emask.hpp>

#include "catch.hpp"

using namespace emask;

namespace {
const Index kMax = std::numeric_limits<Index>::max();
const double kInf = std::numeric_limits<double>::infinity();
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kBig = 1e300;  // finite in double, infinite in float
const std::vector<double> kReals = {0.0, 1.0, -1.0, 0.5, 1e-300, kBig, -kBig, kInf, -kInf, kNan};

/// Runs f: it returns normally (ok) or raises emask::error; anything else fails the test.
/// (std::bad_alloc is caught only by ok_or_failed_allocation, for sizes the machine cannot hold.)
template <class F>
bool ok_or_error(F&& f) {
  try {
    f();
    return true;
  } catch (const emask::error&) {
    return false;
  }
}

/// Same, where an allocation that fails (a size that could exist, but not here) counts as not ok.
template <class F>
bool ok_or_failed_allocation(F&& f) {
  try {
    f();
    return true;
  } catch (const emask::error&) {
    return false;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

bool is_probability(double p) { return p >= 0.0 && p <= 1.0; }

// AddressSanitizer's operator new reports a huge request as a fatal error instead of throwing
// std::bad_alloc (malloc returns null with allocator_may_return_null=1, new does not): there,
// the checks of sizes that could exist but do not fit are skipped.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif
/// Whether a std::vector of about \p n elements may be asked for in this build.
bool may_allocate(Index n) { return !kAsan || n < (Index(1) << 28); }

token_matrix tokens(Index rows, Index cols) {
  token_matrix ids(rows, cols);
  for (Index i = 0; i < ids.size(); ++i) ids.data()[i] = static_cast<token_id>(10 + i % 50);
  return ids;
}

template <class Options>
Options bert() {
  Options o;
  o.vocabulary = special_tokens(100, {0, 1, 2, 3});
  o.mask_id = 3;
  return o;
}
}  // namespace

TEST_CASE("option domains: MLM, whole-word and span probabilities and counts", "[domains]") {
  const token_matrix ids = tokens(3, 40);
  for (double p : kReals) {
    INFO("p = " << p);
    auto o = bert<mlm_options>();
    o.mlm_probability = p;
    for (auto sel : {mlm_selection::bernoulli, mlm_selection::exact_count}) {
      o.selection = sel;
      const bool ok = ok_or_error([&] { mlm_mask(ids, o, {1}); });
      CHECK(ok == is_probability(p));
    }
    o = bert<mlm_options>();
    o.mask_replace_prob = p;
    o.random_replace_prob = 0.0;
    CHECK(ok_or_error([&] { mlm_mask(ids, o, {1}); }) == is_probability(p));
    o = bert<mlm_options>();
    o.mask_replace_prob = 0.0;
    o.random_replace_prob = p;
    CHECK(ok_or_error([&] { mlm_mask(ids, o, {1}); }) == is_probability(p));
    auto s = bert<span_options>();
    s.geometric_p = p;
    CHECK(ok_or_error([&] { span_mask(ids, s, {1}); }) == (p > 0.0 && p <= 1.0));
  }
  for (token_id v : {std::numeric_limits<token_id>::min(), -1, 0, 99, 100,
                     std::numeric_limits<token_id>::max()}) {
    auto o = bert<mlm_options>();
    o.ignore_index = v;
    o.pad_id = v;
    CHECK(ok_or_error([&] { mlm_mask(ids, o, {1}); }));
    o.mask_id = v;
    CHECK(ok_or_error([&] { mlm_mask(ids, o, {1}); }) == (v >= 0 && v < 100));
  }
  for (std::int32_t n : {std::numeric_limits<std::int32_t>::min(), -1, 0, 1,
                         std::numeric_limits<std::int32_t>::max()}) {
    auto w = bert<whole_word_options>();
    w.max_predictions = n;
    w.mlm_probability = 1.0;
    const bool_matrix starts = bool_matrix::Constant(3, 40, true);
    const bool ok = ok_or_error([&] {
      const mlm_result r = whole_word_mask(ids, starts, w, {1});
      CHECK((r.labels != -100).count() <= 3 * static_cast<Index>(std::max(n, 0)));
    });
    CHECK(ok == (n >= 0));
    auto s = bert<span_options>();
    s.max_span_words = n;
    s.mlm_probability = 1.0;
    CHECK(ok_or_error([&] { span_mask(ids, s, {1}); }) == (n >= 1));
  }
  // The reference pmf of the span lengths: a probability distribution or an error, never NaN.
  for (double p : kReals)
    for (std::int32_t k : {-1, 0, 1, 10}) {
      INFO("p = " << p << ", max_span_words = " << k);
      const bool ok = ok_or_error([&] {
        const std::vector<double> pk = span_length_distribution(p, k);
        double total = 0;
        for (double x : pk) {
          CHECK(std::isfinite(x));
          total += x;
        }
        CHECK(std::abs(total - 1.0) < 1e-9);
      });
      CHECK(ok == (p > 0.0 && p <= 1.0 && k >= 1));
    }
}

TEST_CASE("option domains: T5 sizes, lengths and corruption", "[domains]") {
  for (double d : kReals)
    for (double m : kReals)
      for (Index len : {Index(-1), Index(0), Index(2), Index(40), kMax}) {
        INFO("density " << d << ", mean " << m << ", length " << len);
        const bool ok = ok_or_error([&] {
          const t5_sizes s = t5_corruption_sizes(len, d, m);
          CHECK(s.num_noise_tokens >= 1);
          CHECK(s.num_noise_tokens <= len - 1);
          CHECK(s.num_noise_spans >= 1);
        });
        if (!is_probability(d) || !(m >= 1.0) || len < 2) CHECK_FALSE(ok);
        if (len < 1) continue;
        const bool ok2 = ok_or_error([&] {
          const t5_lengths l = compute_input_and_target_lengths(len, d, m);
          CHECK(l.tokens_length >= len - 1);
        });
        if (!is_probability(d) || !(m > 0.0) || !std::isfinite(m)) CHECK_FALSE(ok2);
      }
  t5_options o;
  o.first_sentinel_id = 200;
  const token_matrix ids = tokens(2, 30);
  for (double d : {0.0, 1.0}) {
    o.noise_density = d;
    // density 1: 29 noise tokens in 10 spans but 1 kept token, an error; density 0: one noise
    // token per row.
    Index kept = -1;
    const bool ok = ok_or_error([&] { kept = t5_span_corruption(ids, o, {3}).kept.count(); });
    CHECK(ok == (d == 0.0));
    if (ok) CHECK(kept == 58);
    o.mean_noise_span_length = 100.0;  // one span: density 1 keeps one token per row
    CHECK(t5_span_corruption(ids, o, {3}).kept.count() == (d == 0.0 ? 58 : 2));
    o.mean_noise_span_length = 3.0;
  }
  o.noise_density = 0.15;
  for (token_id s : {std::numeric_limits<token_id>::min(), -1, 0, 1}) {
    o.first_sentinel_id = s;
    CHECK(ok_or_error([&] { t5_span_corruption(ids, o, {3}); }) == (s >= 0));  // one span
  }
}

TEST_CASE("option domains: MAE and MGD", "[domains]") {
  for (double r : kReals)
    for (Index n : {Index(-5), Index(0), Index(1), Index(10), Index(1) << 31, kMax}) {
      INFO("ratio " << r << ", patches " << n);
      const bool ok = ok_or_error([&] {
        const Index k = mae_keep_count(n, r);
        CHECK(k >= 0);
        CHECK(k <= n);
      });
      CHECK(ok == (r >= 0.0 && r < 1.0 && n >= 0 && n < (Index(1) << 31)));
    }
  CHECK(ok_or_error([&] { mae_random_masking(2, kMax, 0.5); }) == false);
  CHECK(ok_or_error([&] { mae_random_masking(-1, 10, 0.5); }) == false);
  CHECK(mae_random_masking(0, 10, 0.5).kept.rows() == 0);
  for (double l : kReals) {
    CHECK(ok_or_error([&] { mgd_channel_mask(2, 8, l); }) == is_probability(l));
    CHECK(ok_or_error([&] { mgd_spatial_mask(2, 3, 4, l); }) == is_probability(l));
  }
  // Sizes whose product or storage cannot exist are argument errors, not length errors.
  CHECK_FALSE(ok_or_error([&] { mgd_spatial_mask(1, kMax, kMax, 0.5); }));
  CHECK_FALSE(ok_or_error([&] { mgd_spatial_mask(1, Index(1) << 32, Index(1) << 32, 0.5); }));
  CHECK_FALSE(ok_or_error([&] { mgd_channel_mask(1, kMax, 0.5); }));
  CHECK_FALSE(ok_or_failed_allocation([&] { mgd_channel_mask(kMax, 1, 0.5); }));
  CHECK(mgd_channel_mask(0, 5, 0.5).rows() == 0);
}

TEST_CASE("option domains: diffusion, MaskGIT, image and speech masks (issue 19)", "[domains]") {
  const token_matrix ids = tokens(3, 8);
  for (double x : kReals) {
    INFO("value " << x);
    diffusion_options d;
    d.vocab_size = 100;
    d.mask_id = 3;
    d.eps = x;
    const bool eps_ok = ok_or_error([&] {
      const diffusion_result r = diffusion_mask(ids, d, {1});
      CHECK(r.weight.allFinite());
    });
    CHECK(eps_ok == (x > 0.0 && x <= 1.0));
    d.eps = 1e-3;
    d.random_length_prob = x;
    CHECK(ok_or_error([&] { diffusion_mask(ids, d, {1}); }) == is_probability(x));

    CHECK(ok_or_error([&] {
            const double g = maskgit_gamma(maskgit_schedule::cosine(), x);
            CHECK((g >= 0.0 && g <= 1.0));
          }) == is_probability(x));
    CHECK(ok_or_error([&] { maskgit_mask_count(10, x, maskgit_schedule::linear()); }) ==
          is_probability(x));

    beit_mask_options b;
    b.min_aspect = x;
    CHECK(ok_or_error([&] { beit_block_mask(2, b, {1}); }) == (x >= 1e-4 && x <= 1e4));
    simmim_mask_options sm;
    sm.mask_ratio = x;
    CHECK(ok_or_error([&] { simmim_mask(2, sm, {1}); }) == is_probability(x));
    data2vec_mask_options dv;
    dv.mask_prob = x;
    CHECK(ok_or_error([&] { data2vec_block_mask(2, dv, {1}); }) == is_probability(x));
    dv.mask_prob = 0.8;
    dv.mask_prob_adjust = x;
    CHECK(ok_or_error([&] { data2vec_block_mask(2, dv, {1}); }) == is_probability(x));
    audio_span_options a;
    a.mask_prob = x;
    CHECK(ok_or_error([&] { audio_span_mask(2, 50, a, {1}); }) == is_probability(x));
  }
  for (Index n : {Index(-1), Index(0), Index(1), Index(3), Index(1) << 31, kMax, unbounded}) {
    INFO("size " << n);
    beit_mask_options b;
    b.height = n;
    const bool beit_ok = ok_or_error([&] { beit_block_mask(1, b, {1}); });
    CHECK(beit_ok == (n >= 1 && n <= 16384));
    b = {};
    b.num_masking_patches = n;
    CHECK(ok_or_error([&] { beit_block_mask(1, b, {1}); }) == (n >= 0 && n < (Index(1) << 31)));
    data2vec_mask_options dv;
    dv.mask_length = n;
    CHECK(ok_or_error([&] { data2vec_block_mask(1, dv, {1}); }) == (n >= 2 && n <= 16384));
    simmim_mask_options sm;
    sm.model_patch_size = n;
    CHECK(ok_or_error([&] { simmim_mask(1, sm, {1}); }) == (n >= 1 && 32 % n == 0));
    audio_span_options a;
    a.mask_length = n;
    CHECK(ok_or_error([&] { audio_span_mask(1, 50, a, {1}); }) == (n >= 1 && n <= 50));
    a = {};
    a.min_masks = n;
    CHECK(ok_or_error([&] {
            const audio_span_result r = audio_span_mask(1, 50, a, {1});
            CHECK(r.masked.count() <= 50);
          }) == (n >= 0 && n < (Index(1) << 31)));
    CHECK_FALSE(ok_or_error([&] { audio_span_mask(1, kMax, {}, {1}); }));
    CHECK(ok_or_error([&] { maskgit_remask_count(10, 5, n, 8, maskgit_schedule::cosine()); }) ==
          (n >= 0 && n < 8));
    CHECK(ok_or_error([&] { maskgit_remask_count(10, 5, 0, n, maskgit_schedule::cosine()); }) ==
          (n >= 1));
    CHECK(ok_or_error([&] { maskgit_remask_count(n, 0, 0, 1, maskgit_schedule::cosine()); }) ==
          (n >= 0 && n < (Index(1) << 32)));
  }
  for (int k : {-1, 0, 1, 64, 65, std::numeric_limits<int>::max()})
    CHECK(ok_or_error([&] { maskgit_schedule::power(k); }) == (k >= 1 && k <= 64));
  // Conditional action heads: a joint space too large to enumerate is an argument error.
  const auto anything = [](Index, Index, action_prefix, Index) { return true; };
  CHECK_FALSE(ok_or_error([&] {
    const Index big = Index(1) << 40;
    conditional_to_joint(
        conditional_from_callback(action_space::multi_discrete({big, big}), anything), 1);
  }));
  CHECK_FALSE(ok_or_error(
      [&] { conditional_to_joint(conditional_table::shared(action_space::discrete(3)), -1); }));
}

TEST_CASE("option domains: RL spaces, masks and DQN scalars", "[domains]") {
  for (Index n : {Index(-1), Index(0), Index(1), kMax}) {
    CHECK(ok_or_error([&] { action_space::discrete(n); }) == (n >= 1));
    CHECK(ok_or_error([&] { action_space::multi_discrete({n, 2}); }) == (n >= 1 && n < kMax - 1));
  }
  CHECK_FALSE(ok_or_error([&] { action_space::multi_binary(kMax); }));
  CHECK_FALSE(ok_or_error([&] { action_mask::all_legal(action_space::discrete(3), -1); }));
  CHECK(action_mask::all_legal(action_space::discrete(3), 0).batch() == 0);
  const row_matrix<double> q = row_matrix<double>::Ones(2, 3);
  const bool_matrix legal = bool_matrix::Constant(2, 3, true);
  for (double e : kReals)
    CHECK(ok_or_error([&] { masked_epsilon_greedy(q, legal, e, {1}); }) == is_probability(e));
  const Eigen::VectorXd reward = Eigen::VectorXd::Ones(2), done = Eigen::VectorXd::Zero(2);
  for (double g : kReals) {
    INFO("gamma " << g);
    const bool ok = ok_or_error([&] {
      const Eigen::VectorXd t = masked_td_target(reward, done, q, legal, g);
      CHECK(t.allFinite());
    });
    CHECK(ok == is_probability(g));
  }
}

TEST_CASE("option domains: seq lengths and sizes", "[domains]") {
  for (Index maxlen : {Index(-1), Index(0), Index(3)})
    CHECK(ok_or_error([&] { sequence_mask({1, 3}, maxlen); }) == (maxlen >= 0));
  CHECK(sequence_mask({1, kMax}, 4).row(1).all());  // a length past maxlen keeps every step
  CHECK_FALSE(ok_or_error([&] { sequence_mask({-1}, 4); }));
  const row_matrix<double> x = row_matrix<double>::Ones(4, 2);
  for (Index b : {Index(-1), Index(0), Index(3), kMax})
    CHECK(ok_or_error([&] { masking(x, b); }) == false);
  CHECK(masking(x, 2).rows() == 2);
  CHECK_FALSE(ok_or_error([&] { reverse_padded(x, {kMax, 1}); }));
  CHECK_FALSE(ok_or_error([&] { reverse_padded(x, {-1, 1}); }));
}

TEST_CASE("option domains: mask builders at the extremes", "[domains]") {
  const std::vector<Index> extremes = {-kMax, -1, 0, 1, unbounded, kMax};
  for (Index a : extremes) {
    INFO("value " << a);
    CHECK(ok_or_error([&] { materialize(causal::with_diagonal(a), 3, 4); }));
    CHECK(ok_or_error([&] { causal::bottom_right(a, 4); }) == (a >= 0));
    CHECK(ok_or_error([&] { causal::bottom_right(3, a); }) == (a >= 0));
    CHECK(ok_or_error([&] { materialize(chunked(a), 3, 4); }) == (a >= 1));
    CHECK(ok_or_error([&] { materialize(prefix_lm(a), 3, 4); }) == (a >= 0));
    CHECK(ok_or_error([&] { materialize(sliding_window::from_hf(a), 3, 4); }) == (a >= 1));
    CHECK(ok_or_error([&] { materialize(sliding_window::from_llama_cpp(a), 3, 4); }) == (a >= 1));
    CHECK(ok_or_error([&] {
            materialize(sliding_window::from_llama_cpp(a, llama_swa_type::symmetric), 3, 4);
          }) == (a >= 1));
    for (Index b : extremes) {
      CHECK(ok_or_error([&] { materialize(sliding_window(a, b, a), 3, 4); }) == (a >= 0 && b >= 0));
      CHECK(ok_or_error([&] { materialize(sliding_window::from_flash_attn(a, b, 2, 4), 3, 4); }) ==
            (a >= -1 && b >= -1));
      CHECK(ok_or_error([&] { materialize(causal().offset(a, b), 2, 3); }) ==
            (a >= 0 && b >= 0 && a <= unbounded - 2 && b <= unbounded - 3));
      CHECK(ok_or_error([&] {
              materialize(key_padding::from_lengths({std::min<Index>(std::max<Index>(a, 0), 4)}, 4)
                              .offset(0, std::max<Index>(b, 0)),
                          2, 3);
            }) == (b <= 1));
    }
    CHECK(ok_or_error([&] { key_padding::from_lengths({a}, 4); }) == (a >= 0 && a <= 4));
    CHECK(ok_or_error([&] { key_padding::from_lengths({0}, a); }) == (a >= 0));
    CHECK(ok_or_error([&] { query_padding::from_lengths({a}, 4); }) == (a >= 0 && a <= 4));
    // Sizes: an error when the storage cannot exist (kMax), std::bad_alloc when it could but
    // does not fit here (unbounded).
    if (may_allocate(a)) {
      CHECK(ok_or_failed_allocation([&] {
              document::from_cu_seqlens({0, a});
            }) == (a >= 0 && a < unbounded));
      CHECK(ok_or_failed_allocation([&] { bit_mask(a, 3); }) == (a >= 0 && a < unbounded));
      CHECK(ok_or_failed_allocation([&] { bit_mask(3, a); }) == (a >= 0 && a < unbounded));
    }
    if (a == kMax) {
      CHECK_FALSE(ok_or_error([&] { document::from_cu_seqlens({0, a}); }));
      CHECK_FALSE(ok_or_error([&] { bit_mask(a, a); }));
    }
  }
}

TEST_CASE("option domains: materialize, render, images and alibi_slopes", "[domains]") {
  const auto m = causal() & sliding_window(2, 0);
  for (Index v : {Index(-1), Index(0), Index(3)}) {
    CHECK(ok_or_error([&] { materialize(m, v, 4); }) == (v >= 0));
    CHECK(ok_or_error([&] { materialize(m, 4, v); }) == (v >= 0));
    CHECK(ok_or_error([&] { materialize(m, 3, 4, v, 0); }) == (v >= 0));
    CHECK(ok_or_error([&] { materialize_additive<float>(m, 3, 4, 0, v); }) == (v >= 0));
    CHECK(ok_or_error([&] { materialize_block_mask(m, 8, 8, v, 2); }) == (v >= 1));
  }
  for (float fill : {0.0f, -1.0f, std::numeric_limits<float>::lowest(),
                     -std::numeric_limits<float>::infinity()}) {
    const additive_mask<float> a = materialize_additive<float>(m, 3, 4, 0, 0, fill);
    CHECK((to_keep(a) == materialize(m, 3, 4)).all() ==
          (fill <= std::numeric_limits<float>::lowest()));
  }
  for (Index cell : {Index(-1), Index(0), Index(1), Index(1) << 31, kMax}) {
    INFO("cell " << cell);
    image_options o;
    o.cell = cell;
    CHECK(ok_or_error([&] { to_svg(m, 3, 4, o); }) == (cell >= 1 && cell < kMax));
    CHECK(ok_or_error([&] { to_png(m, 3, 4, o); }) == (cell == 1));
    CHECK(ok_or_error([&] { write_pgm(m, 3, 4, "/dev/null", o); }) == (cell == 1));
  }
  for (Index t : {Index(-1), kMax}) {  // no tile line either way
    image_options o;
    o.tile_q = t;
    o.tile_k = t;
    CHECK(to_svg(m, 3, 4, o).find("<line") == std::string::npos);
  }
  for (double b : kReals)
    for (Index n : {Index(-1), Index(0), Index(1), Index(12), kMax}) {
      INFO("max_bias " << b << ", n_head " << n);
      const bool ok = ok_or_error([&] {
        for (double s : alibi_slopes(n, b)) {
          CHECK(std::isfinite(s));
          CHECK(std::isfinite(static_cast<float>(s)));
          CHECK(s >= 0.0);
        }
      });
      CHECK(ok == (std::isfinite(b) && b > 0 && n >= 1 && n < kMax));
    }
}

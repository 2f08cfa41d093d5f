// The bad-input contract: every public entry point, crossed with each bad-input class that
// applies to it (wrong shape, negative or oversized lengths, offsets out of range,
// probabilities outside [0, 1], negative window bounds, empty vocabulary, no legal action,
// nvec mismatch, NaN where a number is required), raises emask::error whose message names the
// function, the argument and what was expected. docs/errors.md lists the same table.
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/kernels/merge.hpp>
#include <emask/kernels/softmax.hpp>
#include <emask/random/feature.hpp>
#include <emask/random/mlm.hpp>
#include <emask/random/patch.hpp>
#include <emask/random/span.hpp>
#include <emask/random/t5.hpp>
#include <emask/random/whole_word.hpp>
#include <emask/rl/action_mask.hpp>
#include <emask/rl/dqn.hpp>
#include <emask/rl/dtqn.hpp>
#include <emask/rl/policy.hpp>
#include <emask/seq/loss.hpp>
#include <emask/seq/pooling.hpp>
#include <emask/seq/reverse.hpp>
#include <emask/seq/sequence_mask.hpp>
#include "kernel_variants.hpp"

#include "catch.hpp"

using Catch::Matchers::Contains;
using emask::Index;
using emask::row_matrix;
using fmat = row_matrix<float>;
using dmat = row_matrix<double>;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();
const double inf_d = std::numeric_limits<double>::infinity();
}  // namespace

namespace {
// What a call threw: whether it was an emask::error, and its message.
struct thrown {
  bool emask_error = false;
  std::string message;
};

template <class F>
thrown call_and_catch(F&& f) {
  try {
    f();
  } catch (const emask::error& e) {
    return {true, e.what()};
  } catch (const std::exception& e) {
    return {false, std::string("a std::exception that is not emask::error: ") + e.what()};
  } catch (...) {
    return {false, "an exception that is not a std::exception"};
  }
  return {false, "no exception"};
}

// One function holds the assertions, so the 200 checks below do not each expand Catch's
// macros twice each.
void require_bad(const thrown& t, const char* expr, const std::string& where,
                 const std::string& arg, const std::string& expected) {
  INFO(expr << "\n  threw: " << t.message);
  REQUIRE(t.emask_error);
  REQUIRE_THAT(t.message, Contains("emask::" + where + ":") && Contains("argument '" + arg) &&
                              Contains(expected));
}
}  // namespace

// Each check: the call throws emask::error, and the function, the argument and the expected
// value all appear in its message.
#define EMASK_BAD(expr, where, arg, expected) \
  require_bad(call_and_catch([&] { (void)(expr); }), #expr, where, arg, expected)

TEST_CASE("bad input: mask builders", "[bad_input][masks]") {
  // negative or inconsistent lengths
  EMASK_BAD(emask::causal::bottom_right(-1, 4), "causal::bottom_right", "q_len", ">= 0");
  EMASK_BAD(emask::causal::bottom_right(4, -2), "causal::bottom_right", "k_len", ">= 0");
  EMASK_BAD(emask::causal::bottom_right({1, 2}, {3}), "causal::bottom_right", "k_lens",
            "one per entry of q_lens");
  EMASK_BAD(emask::causal::bottom_right({1, -2}, {3, 3}), "causal::bottom_right", "q_lens[1]",
            ">= 0");
  // negative window bounds
  EMASK_BAD(emask::sliding_window(-1, 2), "sliding_window", "left", ">= 0");
  EMASK_BAD(emask::sliding_window(2, -3), "sliding_window", "right", ">= 0");
  EMASK_BAD(emask::sliding_window::from_flash_attn(-2, 0, 4, 4), "sliding_window::from_flash_attn",
            "window_left", ">= -1");
  EMASK_BAD(emask::sliding_window::from_flash_attn(0, -5, 4, 4), "sliding_window::from_flash_attn",
            "window_right", ">= -1");
  EMASK_BAD(emask::sliding_window::from_flash_attn(0, 0, -1, 4), "sliding_window::from_flash_attn",
            "q_len", ">= 0");
  EMASK_BAD(emask::sliding_window::from_hf(0), "sliding_window::from_hf", "sliding_window", ">= 1");
  EMASK_BAD(emask::sliding_window::from_llama_cpp(0), "sliding_window::from_llama_cpp", "n_swa",
            ">= 1");
  EMASK_BAD(emask::chunked(0), "chunked", "chunk_size", ">= 1");
  EMASK_BAD(emask::prefix_lm(-1), "prefix_lm", "prefix_length", ">= 0");
  EMASK_BAD(emask::prefix_lm(emask::index_list{2, -1}), "prefix_lm", "prefix_lengths[1]", ">= 0");
  // oversized lengths, ranges
  EMASK_BAD(emask::key_padding::from_lengths({3, 9}, 8), "key_padding::from_lengths", "lengths[1]",
            "a length in [0, 8]");
  EMASK_BAD(emask::key_padding::from_lengths({-1}, 8), "key_padding::from_lengths", "lengths[0]",
            "a length in [0, 8]");
  EMASK_BAD(emask::key_padding::from_lengths({2}, -8), "key_padding::from_lengths", "length",
            ">= 0");
  EMASK_BAD(emask::key_padding::from_lengths_left({9}, 8), "key_padding::from_lengths_left",
            "lengths[0]", "[0, 8]");
  EMASK_BAD(emask::key_padding::from_ranges({1, 2}, {3}, 8), "key_padding::from_ranges", "ends",
            "one per entry of starts");
  EMASK_BAD(emask::key_padding::from_ranges({5}, {3}, 8), "key_padding::from_ranges", "ends[0]",
            "starts[0] = 5");
  EMASK_BAD(emask::key_padding::from_ranges({9}, {9}, 8), "key_padding::from_ranges", "starts[0]",
            "[0, 8]");
  EMASK_BAD(emask::query_padding::from_lengths({10}, 8), "query_padding::from_lengths",
            "lengths[0]", "[0, 8]");
  EMASK_BAD(emask::query_padding::from_ranges({0}, {9}, 8), "query_padding::from_ranges", "ends[0]",
            "8]");
  EMASK_BAD(emask::document::from_cu_seqlens({0}), "document::from_cu_seqlens", "cu_seqlens",
            "at least 2 entries");
  EMASK_BAD(emask::document::from_cu_seqlens({1, 4}), "document::from_cu_seqlens", "cu_seqlens[0]",
            "0");
  EMASK_BAD(emask::document::from_cu_seqlens({0, 4, 2}), "document::from_cu_seqlens",
            "cu_seqlens[2]", "non-decreasing");
  EMASK_BAD(emask::document::from_segment_ids(emask::id_table{{0, 0}}, emask::id_table{{0}, {1}}),
            "document::from_segment_ids", "k_segment_ids", "one per row of q_segment_ids");
  EMASK_BAD((emask::id_table{{0, 1}, {2}}), "id_table", "rows", "rows of equal length");
  // offsets out of range
  EMASK_BAD(emask::causal().offset(-1, 0), "offset", "q_offset", ">= 0");
  EMASK_BAD(emask::causal().offset(0, -3), "offset", "k_offset", ">= 0");
  EMASK_BAD(emask::materialize_block_mask(emask::causal(), 8, 8, 0, 4), "materialize_block_mask",
            "tile_q", ">= 1");
}

TEST_CASE("bad input: materialize and masks asked outside what they were built for",
          "[bad_input][masks]") {
  EMASK_BAD(emask::materialize(emask::causal(), -1, 3), "materialize", "q_len", ">= 0");
  EMASK_BAD(emask::materialize(emask::causal(), 3, -1), "materialize", "k_len", ">= 0");
  EMASK_BAD(emask::materialize(emask::causal(), 3, 3, -1), "materialize", "b", ">= 0");
  EMASK_BAD(emask::materialize(emask::causal(), 3, 3, 0, -1), "materialize", "h", ">= 0");
  // key padding for 8 keys asked about 9; for 2 sequences asked about sequence 2
  const auto kp = emask::key_padding::from_lengths({3, 5}, 8);
  EMASK_BAD(emask::materialize(kp, 4, 9), "materialize", "key positions", "[0, 8)");
  EMASK_BAD(emask::materialize(kp, 4, 8, 2), "materialize", "key padding", "at least 3");
  // the same through an offset: positions [5, 5 + 4) of 8 keys
  EMASK_BAD(emask::materialize(kp.offset(0, 5), 4, 4), "materialize", "key positions", "[0, 8)");
  const auto qp = emask::query_padding::from_lengths({3}, 4);
  EMASK_BAD(emask::materialize(qp, 5, 4), "materialize", "query positions", "[0, 4)");
  const auto doc = emask::document::from_cu_seqlens({0, 3, 6});
  EMASK_BAD(emask::materialize(doc, 7, 6), "materialize", "query positions", "[0, 6)");
  EMASK_BAD(emask::materialize(emask::causal::bottom_right({1, 2}, {3, 3}), 2, 3, 2), "materialize",
            "causal diagonals", "");
  EMASK_BAD(emask::materialize(emask::prefix_lm(emask::index_list{1, 2}), 2, 3, 5), "materialize",
            "prefix_lengths", "");
  // composed masks check both sides
  EMASK_BAD(emask::materialize(emask::causal() & kp, 4, 9), "materialize", "key positions",
            "[0, 8)");
  EMASK_BAD(emask::materialize(!(emask::causal() | qp), 5, 4), "materialize", "query positions",
            "[0, 4)");
}

TEST_CASE("bad input: every error names the public function called, not a helper",
          "[bad_input][masks]") {
  const auto kp = emask::key_padding::from_lengths({3}, 8);
  // the materializations, each under its own name
  EMASK_BAD(emask::materialize_drop(emask::causal(), -1, 3), "materialize_drop", "q_len", ">= 0");
  EMASK_BAD(emask::materialize_drop(kp, 4, 9), "materialize_drop", "key positions", "[0, 8)");
  EMASK_BAD(emask::materialize_additive<float>(kp, 4, 9), "materialize_additive", "key positions",
            "[0, 8)");
  EMASK_BAD(emask::materialize_bits(kp, 4, 9), "materialize_bits", "key positions", "[0, 8)");
  EMASK_BAD(emask::materialize_block_mask(emask::causal(), 8, 8, 4, 0), "materialize_block_mask",
            "tile_k", ">= 1");
  EMASK_BAD(emask::materialize_block_mask(kp, 4, 9, 2, 2), "materialize_block_mask",
            "key positions", "[0, 8)");
  // text and pictures: to_png used to report write_png, the others materialize
  emask::render_options ro;
  EMASK_BAD(emask::render(emask::causal(), -1, 3), "render", "q_len", ">= 0");
  ro.h = -1;
  EMASK_BAD(emask::render(emask::causal(), 3, 3, ro), "render", "h", ">= 0");
  EMASK_BAD(emask::render(kp, 4, 9), "render", "key positions", "[0, 8)");
  emask::image_options io;
  io.cell = 0;
  EMASK_BAD(emask::to_png(emask::causal(), 2, 2, io), "to_png", "cell", ">= 1");
  EMASK_BAD(emask::write_png(emask::causal(), 2, 2, "unused.png", io), "write_png", "cell", ">= 1");
  EMASK_BAD(emask::write_pgm(emask::causal(), 2, 2, "unused.pgm", io), "write_pgm", "cell", ">= 1");
  EMASK_BAD(emask::to_svg(emask::causal(), 2, 2, io), "to_svg", "cell", ">= 1");
  io = {};
  EMASK_BAD(emask::to_png(kp, 4, 9), "to_png", "key positions", "[0, 8)");
  EMASK_BAD(emask::write_png(kp, 4, 9, "unused.png"), "write_png", "key positions", "[0, 8)");
  EMASK_BAD(emask::write_pgm(emask::causal(), 2, -2, "unused.pgm"), "write_pgm", "k_len", ">= 0");
  EMASK_BAD(emask::to_svg(emask::causal(), -2, 2), "to_svg", "q_len", ">= 0");
  io.b = -1;
  EMASK_BAD(emask::to_svg(emask::causal(), 2, 2, io), "to_svg", "b", ">= 0");
  EMASK_BAD(emask::to_svg(kp, 4, 9), "to_svg", "key positions", "[0, 8)");
  // per_head() and the per_head_mask constructor; offset() and the offset_mask constructor
  EMASK_BAD(emask::per_head(std::vector<emask::causal>{}), "per_head", "masks",
            "one mask per head");
  EMASK_BAD(emask::per_head_mask<emask::causal>(std::vector<emask::causal>{}), "per_head_mask",
            "masks", "one mask per head");
  EMASK_BAD(emask::causal().offset(2, 0).offset(-3, 0), "offset", "q_offset", ">= 0");
  EMASK_BAD(emask::offset_mask<emask::causal>(emask::causal(), 0, -1), "offset_mask", "k_offset",
            ">= 0");
  EMASK_BAD(emask::bit_mask(-1, 2), "bit_mask", "rows", ">= 0");
}

TEMPLATE_TEST_CASE("bad input: masked_softmax and masked_log_softmax", "[bad_input][softmax]",
                   float, double) {
  using S = TestType;
  const row_matrix<S> x = row_matrix<S>::Ones(4, 6);
  row_matrix<S> out(4, 6), wrong(4, 5);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(4), lse_bad(3);
  emask_test::softmax_options o;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), wrong), "masked_softmax", "out",
            "4 x 6");
  EMASK_BAD(emask_test::masked_log_softmax(x, emask::causal(), wrong), "masked_log_softmax", "out",
            "4 x 6");
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, lse_bad), "masked_softmax", "lse",
            "4 entries");
  o.scale = nan_d;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.scale", "a finite value");
  o.scale = inf_d;
  EMASK_BAD(emask_test::masked_log_softmax(x, emask::causal(), out, o), "masked_log_softmax",
            "options.scale", "a finite value");
  o = {};
  o.tile_q = o.tile_k = 0;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.tile_q", ">= 1");
  o = {};
  o.slice.b = -1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.slice.b", ">= 0");
  o = {};
  o.slice.h = -1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.slice.h", ">= 0");
  o = {};
  o.q_offset = -1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.q_offset", ">= 0");
  o = {};
  o.threads = -1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.threads", ">= 0");
  o = {};
  o.k_offset = 1;
  EMASK_BAD(
      emask_test::masked_softmax(x, emask::materialize_additive<S>(emask::causal(), 4, 6), out, o),
      "masked_softmax", "options.q_offset, options.k_offset", "0, 0 with an additive_mask");
  o = {};
  o.stream_bytes = -1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::causal(), out, o), "masked_softmax",
            "options.stream_bytes", ">= 0");
  // An unknown variant is a compile error now (tests/compile_fail/variant_*.cpp).
  // masks of the wrong shape or asked outside their range
  const emask::bool_matrix keep45 = emask::bool_matrix::Constant(4, 5, true);
  EMASK_BAD(emask_test::masked_softmax(x, keep45, out), "masked_softmax", "mask", "4 x 6");
  EMASK_BAD(
      emask_test::masked_softmax(x, emask::materialize_additive<S>(emask::causal(), 3, 6), out),
      "masked_softmax", "mask", "4 x 6");
  EMASK_BAD(emask_test::masked_softmax(x, emask::key_padding::from_lengths({2}, 5), out),
            "masked_softmax", "key positions", "[0, 5)");
  o = {};
  o.slice.b = 1;
  EMASK_BAD(emask_test::masked_softmax(x, emask::key_padding::from_lengths({2}, 6), out, o),
            "masked_softmax", "key padding", "at least 2");
  // a dense mask of 4 x 5 asked about 4 x 6
  REQUIRE_THROWS_AS(emask_test::masked_softmax(x, emask::as_mask(keep45), out), emask::error);
}

TEMPLATE_TEST_CASE("bad input: masked_attention (one head)", "[bad_input][attention]", float,
                   double) {
  using S = TestType;
  using M = row_matrix<S>;
  const M q = M::Ones(4, 8), k = M::Ones(6, 8), v = M::Ones(6, 3);
  M out(4, 3);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(4), lse_bad(5);
  const auto m = emask::causal();
  // wrong shapes
  EMASK_BAD(emask_test::masked_attention(q, M(M::Ones(6, 7)), v, m, out), "masked_attention", "k",
            "D = 8");
  EMASK_BAD(emask_test::masked_attention(q, k, M(M::Ones(5, 3)), m, out), "masked_attention", "v",
            "6 rows");
  M out_bad(4, 4);
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out_bad), "masked_attention", "out", "4x3");
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, lse_bad), "masked_attention", "lse", "4");
  // options
  emask_test::attention_options o;
  o.scale = nan_d;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.scale",
            "finite");
  o = {};
  o.softcap = -2;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.softcap",
            ">= 0");
  o = {};
  o.softcap = inf_d;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.softcap",
            "finite");
  o = {};
  o.tile_q = 0;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.tile_q",
            ">= 1");
  o = {};
  o.tile_k = -1;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.tile_k",
            ">= 1");
  o = {};
  o.decode_chunk = 0;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention",
            "options.decode_chunk", ">= 1");
  o = {};
  o.q_offset = -1;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention",
            "options.q_offset", ">= 0");
  o = {};
  o.k_offset = -4;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention",
            "options.k_offset", ">= 0");
  o = {};
  o.threads = -1;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.threads",
            ">= 0");
  o = {};
  o.slice.b = -1;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.slice.b",
            ">= 0");
  o = {};
  o.slice.h = -1;
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.slice.h",
            ">= 0");
  o = {};
  o.slice.h = 2;
  o.alibi = {0.5, 0.25};
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, o), "masked_attention", "options.alibi",
            "one slope per head");
  // offsets past what the mask was built for
  o = {};
  o.k_offset = 3;
  EMASK_BAD(emask_test::masked_attention(q, k, v, emask::key_padding::from_lengths({4}, 8), out, o),
            "masked_attention", "key positions", "[0, 8)");
  o = {};
  o.q_offset = 1;
  EMASK_BAD(
      emask_test::masked_attention(q, k, v, emask::query_padding::from_lengths({4}, 4), out, o),
      "masked_attention", "query positions", "[0, 4)");
  // alibi_slopes
  EMASK_BAD(emask::alibi_slopes(0), "alibi_slopes", "n_head", ">= 1");
  EMASK_BAD(emask::alibi_slopes(4, -1.0), "alibi_slopes", "max_bias", "> 0");
  EMASK_BAD(emask::alibi_slopes(4, nan_d), "alibi_slopes", "max_bias", "> 0");
}

TEMPLATE_TEST_CASE("bad input: masked_attention (batched views), tensor_view, merge",
                   "[bad_input][attention]", float, double) {
  using S = TestType;
  const Index B = 2, H = 4, L = 5, D = 8;
  std::vector<S> qb(static_cast<std::size_t>(B * H * L * D), S(1)), kb = qb, vb = qb, ob = qb;
  const auto q = emask::view_bhld<const S>(qb.data(), B, H, L, D);
  const auto k = emask::view_bhld<const S>(kb.data(), B, 2, L, D);
  const auto v = emask::view_bhld<const S>(vb.data(), B, 2, L, D);
  const auto out = emask::view_bhld<S>(ob.data(), B, H, L, D);
  const auto m = emask::causal();
  EMASK_BAD(
      emask_test::masked_attention(q, emask::view_bhld<const S>(kb.data(), 1, 2, L, D), v, m, out),
      "masked_attention", "k", "batch 2");
  EMASK_BAD(
      emask_test::masked_attention(q, emask::view_bhld<const S>(kb.data(), B, 3, L, D), v, m, out),
      "masked_attention", "k", "divides the 4 query heads");
  EMASK_BAD(
      emask_test::masked_attention(q, emask::view_bhld<const S>(kb.data(), B, 2, L, 4), v, m, out),
      "masked_attention", "k", "D = 8");
  EMASK_BAD(
      emask_test::masked_attention(q, k, emask::view_bhld<const S>(vb.data(), B, 2, 4, D), m, out),
      "masked_attention", "v", "L = 5");
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, emask::view_bhld<S>(ob.data(), B, H, 4, D)),
            "masked_attention", "out", "[B=2, H=4, L=5, D=8]");
  row_matrix<S> lse_bad(B * H, L + 1);
  EMASK_BAD(emask_test::masked_attention(q, k, v, m, out, lse_bad), "masked_attention", "lse",
            "B*H rows");
  // batch beyond the mask's sequences
  EMASK_BAD(emask_test::masked_attention(q, k, v, emask::key_padding::from_lengths({3}, L), out),
            "masked_attention", "key padding", "at least 2");
  // tensor_view
  EMASK_BAD(emask::tensor_view<S>(ob.data(), -1, 1, 1, 1, 1, 1, 1), "tensor_view", "batch", ">= 0");
  EMASK_BAD(emask::tensor_view<S>(ob.data(), 1, -1, 1, 1, 1, 1, 1), "tensor_view", "heads", ">= 0");
  EMASK_BAD(emask::tensor_view<S>(ob.data(), 1, 1, -1, 1, 1, 1, 1), "tensor_view", "length",
            ">= 0");
  EMASK_BAD(emask::tensor_view<S>(ob.data(), 1, 1, 1, -1, 1, 1, 1), "tensor_view", "dim", ">= 0");
  EMASK_BAD(emask::tensor_view<S>(ob.data(), 1, 1, 2, 4, 8, 8, -4), "tensor_view", "strides",
            "non-negative");
  EMASK_BAD(emask::tensor_view<S>(ob.data(), 1, 1, 2, 4, 8, 8, 2), "tensor_view", "stride_l",
            ">= dim = 4");
  EMASK_BAD(emask::tensor_view<S>(nullptr, 1, 1, 2, 4, 8, 8, 4), "tensor_view", "data", "a buffer");
  // merge_attention_into / merge_attention
  row_matrix<S> o1 = row_matrix<S>::Zero(3, 2), p1 = o1, p_bad = row_matrix<S>::Zero(3, 3);
  emask::lse_vector<S> l1 = emask::lse_vector<S>::Zero(3), l_bad = emask::lse_vector<S>::Zero(2);
  EMASK_BAD(emask::merge_attention_into(o1, l_bad, p1, l1), "merge_attention_into", "lse", "3");
  EMASK_BAD(emask::merge_attention_into(o1, l1, p_bad, l1), "merge_attention_into", "part_out",
            "3x2");
  EMASK_BAD(emask::merge_attention_into(o1, l1, p1, l_bad), "merge_attention_into", "part_lse",
            "3");
  std::vector<row_matrix<S>> parts;
  std::vector<emask::lse_vector<S>> lses;
  EMASK_BAD(emask::merge_attention(parts, lses, o1, l1), "merge_attention", "parts",
            "at least one shard");
  parts.push_back(o1);
  EMASK_BAD(emask::merge_attention(parts, lses, o1, l1), "merge_attention", "lses",
            "one per shard");
}

TEST_CASE("bad input: random masks", "[bad_input][random]") {
  emask::token_matrix ids = emask::token_matrix::Constant(2, 6, 5);
  emask::mlm_options o;
  o.vocabulary = emask::special_tokens(10, {0});
  o.mask_id = 3;
  // empty vocabulary, ids outside it
  emask::mlm_options empty = o;
  empty.vocabulary = emask::special_tokens();
  EMASK_BAD(emask::mlm_mask(ids, empty), "mlm_mask", "vocabulary", "vocab_size >= 1");
  EMASK_BAD(emask::special_tokens(0, {}), "special_tokens", "vocab_size", ">= 1");
  EMASK_BAD(emask::special_tokens(10, {3, 10}), "special_tokens", "ids[1]", "an id in [0, 10)");
  EMASK_BAD(emask::special_tokens::from_predicate(0, [](emask::token_id) { return false; }),
            "special_tokens::from_predicate", "vocab_size", ">= 1");
  emask::mlm_options bad = o;
  bad.mask_id = 10;
  EMASK_BAD(emask::mlm_mask(ids, bad), "mlm_mask", "mask_id", "[0, 10)");
  // probabilities outside [0, 1] (and NaN)
  for (double p : {-0.1, 1.5, nan_d}) {
    bad = o;
    bad.mlm_probability = p;
    EMASK_BAD(emask::mlm_mask(ids, bad), "mlm_mask", "mlm_probability", "a probability in [0, 1]");
    bad = o;
    bad.mask_replace_prob = p;
    EMASK_BAD(emask::mlm_mask(ids, bad), "mlm_mask", "mask_replace_prob",
              "a probability in [0, 1]");
  }
  bad = o;
  bad.mask_replace_prob = 0.8;
  bad.random_replace_prob = 0.3;
  EMASK_BAD(emask::mlm_mask(ids, bad), "mlm_mask", "random_replace_prob", "<= 1");
  // lengths
  EMASK_BAD(emask::mlm_mask(ids, {3}, o), "mlm_mask", "lengths", "2");
  EMASK_BAD(emask::mlm_mask(ids, {3, 7}, o), "mlm_mask", "lengths[1]", "a length in [0, 6]");
  emask::token_matrix labels(2, 5);
  EMASK_BAD(emask::mlm_mask_inplace(ids, labels, o), "mlm_mask_inplace", "labels", "2x6");
  EMASK_BAD(emask::mlm_mask_inplace(ids, labels, {3, 7}, o), "mlm_mask_inplace", "lengths[1]",
            "a length in [0, 6]");
  // whole words and spans: every overload names itself and the argument
  const emask::bool_matrix starts = emask::bool_matrix::Constant(2, 6, true);
  const emask::bool_matrix starts5 = emask::bool_matrix::Constant(2, 5, true);
  emask::whole_word_options w;
  w.vocabulary = o.vocabulary;
  w.mask_id = o.mask_id;
  EMASK_BAD(emask::whole_word_mask(ids, starts5, w), "whole_word_mask", "word_starts", "2x6");
  EMASK_BAD(emask::whole_word_mask(ids, starts, {3, 7}, w), "whole_word_mask", "lengths[1]",
            "[0, 6]");
  EMASK_BAD(emask::whole_word_mask_by_ids(ids, emask::token_matrix::Zero(1, 6), w),
            "whole_word_mask_by_ids", "word_ids", "2x6");
  EMASK_BAD(emask::whole_word_mask_by_ids(ids, emask::token_matrix::Zero(2, 6), {3}, w),
            "whole_word_mask_by_ids", "lengths", "2");
  w.max_predictions = -1;
  EMASK_BAD(emask::whole_word_mask_by_ids(ids, emask::token_matrix::Zero(2, 6), w),
            "whole_word_mask_by_ids", "max_predictions", ">= 0");
  emask::span_options sp;
  sp.vocabulary = o.vocabulary;
  sp.mask_id = o.mask_id;
  EMASK_BAD(emask::span_mask(ids, {3, 7}, sp), "span_mask", "lengths[1]", "[0, 6]");
  EMASK_BAD(emask::span_mask(ids, starts5, sp), "span_mask", "word_starts", "2x6");
  EMASK_BAD(emask::span_mask(ids, starts5, {3, 3}, sp), "span_mask", "word_starts", "2x6");
  sp.max_span_words = 0;
  EMASK_BAD(emask::span_mask(ids, {3, 3}, sp), "span_mask", "max_span_words", ">= 1");
  // MAE and MGD
  EMASK_BAD(emask::mae_random_masking(-1, 16), "mae_random_masking", "batch", ">= 0");
  EMASK_BAD(emask::mae_random_masking(2, 0), "mae_random_masking", "num_patches",
            "a count in [1, 2^31)");
  EMASK_BAD(emask::mae_random_masking(2, 16, 1.0), "mae_random_masking", "mask_ratio", "[0, 1)");
  EMASK_BAD(emask::mae_random_masking(2, 16, -0.25), "mae_random_masking", "mask_ratio", "[0, 1)");
  EMASK_BAD(emask::mae_random_masking(2, 16, nan_d), "mae_random_masking", "mask_ratio", "[0, 1)");
  EMASK_BAD(emask::mae_keep_count(16, 1.5), "mae_keep_count", "mask_ratio", "[0, 1)");
  EMASK_BAD(emask::mgd_spatial_mask(2, -1, 4, 0.5), "mgd_spatial_mask", "height", ">= 0");
  EMASK_BAD(emask::mgd_spatial_mask(2, 4, 4, 1.5), "mgd_spatial_mask", "lambda", "[0, 1]");
  EMASK_BAD(emask::mgd_spatial_mask(-2, 4, 4, 0.5), "mgd_spatial_mask", "n", ">= 0");
  EMASK_BAD(emask::mgd_channel_mask(2, -3, 0.5), "mgd_channel_mask", "channels", ">= 0");
  EMASK_BAD(emask::mgd_channel_mask(2, 3, nan_d), "mgd_channel_mask", "lambda", "[0, 1]");
  // T5
  emask::t5_options t5;
  t5.first_sentinel_id = 99;
  EMASK_BAD(emask::t5_corruption_sizes(1), "t5_corruption_sizes", "length", ">= 2");
  EMASK_BAD(emask::t5_corruption_sizes(20, 0.15, 0.5), "t5_corruption_sizes",
            "mean_noise_span_length", ">= 1");
  EMASK_BAD(emask::t5_corruption_sizes(20, 1.5), "t5_corruption_sizes", "noise_density", "");
  EMASK_BAD(emask::t5_corruption_sizes(20, nan_d), "t5_corruption_sizes", "noise_density", "");
  t5.first_sentinel_id = 0;
  const emask::token_matrix long_ids = emask::token_matrix::Constant(1, 100, 5);
  EMASK_BAD(emask::t5_span_corruption(long_ids, t5), "t5_span_corruption", "first_sentinel_id",
            ">= ");
  EMASK_BAD(emask::compute_input_and_target_lengths(0, 0.15, 3.0),
            "compute_input_and_target_lengths", "inputs_length", "a length in [1, 2^51)");
}

TEST_CASE("bad input: RL action masks, policies and DQN helpers", "[bad_input][rl]") {
  // action spaces: empty nvec, zero-sized sub-spaces
  EMASK_BAD(emask::action_space::discrete(0), "action_space::discrete", "n", ">= 1 action");
  EMASK_BAD(emask::action_space::multi_discrete(std::vector<Index>{}),
            "action_space::multi_discrete", "nvec", "at least one sub-space");
  EMASK_BAD(emask::action_space::multi_discrete({3, 0}), "action_space::multi_discrete", "nvec[1]",
            ">= 1 action");
  EMASK_BAD(emask::action_space::multi_binary(0), "action_space::multi_binary", "k", ">= 1 bit");
  // nvec mismatch: flags of the wrong width
  const emask::bool_matrix five = emask::bool_matrix::Constant(2, 5, true);
  REQUIRE_THROWS_AS(emask::action_mask::multi_discrete({3, 3}, five), emask::error);
  REQUIRE_THROWS_WITH(emask::action_mask::multi_discrete({3, 3}, five),
                      Contains("'legal'") && Contains("6"));
  EMASK_BAD(emask::action_mask::multi_binary(five), "action_mask::multi_binary", "legal",
            "an even number");
  EMASK_BAD(emask::action_mask::discrete(emask::bool_matrix(2, 0)), "action_mask::discrete",
            "legal", "at least one action column");
  EMASK_BAD(emask::action_mask::all_legal(emask::action_space::discrete(3), -1),
            "action_mask::all_legal", "batch", ">= 0");
  // no legal action in a row
  emask::bool_matrix legal = emask::bool_matrix::Constant(2, 4, true);
  legal.row(1).setConstant(false);
  const dmat q = dmat::Ones(2, 4);
  EMASK_BAD(emask::masked_q_argmax(q, legal), "masked_q_argmax", "legal",
            "at least one legal action");
  EMASK_BAD(emask::masked_epsilon_greedy(q, legal, 0.1, {1, 2}), "masked_epsilon_greedy", "legal",
            "at least one legal action");
  const emask::bool_matrix all = emask::bool_matrix::Constant(2, 4, true);
  EMASK_BAD(emask::masked_epsilon_greedy(q, all, 1.5, {1, 2}), "masked_epsilon_greedy", "epsilon",
            "a probability in [0, 1]");
  EMASK_BAD(emask::masked_q_argmax(dmat(dmat::Ones(2, 3)), all), "masked_q_argmax", "q", "2 x 4");
  // NaN at a legal action
  dmat qn = q;
  qn(0, 2) = nan_d;
  EMASK_BAD(emask::masked_q_argmax(qn, all), "masked_q_argmax", "q[0, 2]",
            "a number at a legal action");
  // policies: logits of the wrong shape
  const auto am = emask::action_mask::discrete(all);
  EMASK_BAD(emask::masked_probs(dmat(dmat::Ones(2, 5)), am), "masked_probs", "logits", "2 x 4");
  EMASK_BAD(emask::masked_log_probs(fmat(fmat::Ones(3, 4)), am), "masked_log_probs", "logits",
            "2 x 4");
  EMASK_BAD(emask::masked_logits(dmat(dmat::Ones(2, 5)), am), "masked_logits", "logits", "2 x 4");
  // each function names itself, not the function it shares its work with
  const Eigen::VectorXi acts = Eigen::VectorXi::Zero(2);
  EMASK_BAD(emask::masked_log_prob_per_space(dmat(dmat::Ones(2, 5)), am, acts),
            "masked_log_prob_per_space", "logits", "2 x 4");
  EMASK_BAD(emask::masked_log_prob(dmat(dmat::Ones(2, 5)), am, acts), "masked_log_prob", "logits",
            "2 x 4");
  EMASK_BAD(emask::masked_entropy_per_space(dmat(dmat::Ones(2, 5)), am), "masked_entropy_per_space",
            "logits", "2 x 4");
  EMASK_BAD(emask::masked_entropy(dmat(dmat::Ones(2, 5)), am), "masked_entropy", "logits", "2 x 4");
  EMASK_BAD(emask::masked_sample(dmat(dmat::Ones(2, 5)), am, {1, 2}), "masked_sample", "logits",
            "2 x 4");
  EMASK_BAD(emask::masked_epsilon_greedy(q, am, 1.5, {1, 2}), "masked_epsilon_greedy", "epsilon",
            "a probability in [0, 1]");
  // DTQN: the mask builders name themselves, not the id builders they call
  EMASK_BAD(emask::dtqn_mask_from_starts(emask::bool_matrix(0, 3)), "dtqn_mask_from_starts",
            "starts", "at least one row");
  EMASK_BAD(emask::dtqn_mask_from_dones(emask::bool_matrix(2, 0)), "dtqn_mask_from_dones", "dones",
            "at least one row");
  // an action mask with a row that has no legal action is refused when it is built
  EMASK_BAD(emask::action_mask::discrete(legal), "action_mask", "legal",
            "at least one legal action in every");
}

TEST_CASE("bad input: sequence utilities", "[bad_input][seq]") {
  EMASK_BAD(emask::sequence_mask({2, 3}, -1), "sequence_mask", "maxlen", ">= 0");
  EMASK_BAD(emask::sequence_mask({2, -3}, 4), "sequence_mask", "lengths[1]", ">= 0");
  const dmat x = dmat::Ones(6, 2);
  EMASK_BAD(emask::reverse_padded(x, {2, 4}), "reverse_padded", "lengths[1]", "a length in [0, 3]");
  EMASK_BAD(emask::reverse_padded(x, {1, 1, 1, 1}), "reverse_padded", "x.rows()",
            "a multiple of lengths.size() = 4");
  const emask::bool_matrix m = emask::bool_matrix::Constant(2, 4, true);
  EMASK_BAD(emask::masked_sum(x, m), "masked_sum", "mask.cols()", "3 (x.rows() / batch");
  EMASK_BAD(emask::masked_mean(x, emask::bool_matrix(0, 3)), "masked_mean", "mask.rows()", ">= 1");
  EMASK_BAD(emask::masked_max(x, m), "masked_max", "mask.cols()", "3 (x.rows() / batch");
  EMASK_BAD(emask::masked_pool(x, m, emask::pooling::mean), "masked_pool", "mask.cols()",
            "3 (x.rows() / batch");
  const dmat logits = dmat::Ones(6, 0);
  const Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> targets =
      Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(2, 3);
  EMASK_BAD(emask::masked_cross_entropy(logits, targets), "masked_cross_entropy", "logits.cols()",
            ">= 1");
  EMASK_BAD(emask::masked_cross_entropy(
                dmat(dmat::Ones(6, 4)),
                Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(2, 4)),
            "masked_cross_entropy", "targets.cols()", "");
  EMASK_BAD(
      emask::masked_cross_entropy(
          dmat(dmat::Ones(6, 4)),
          Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Constant(2, 3, 9)),
      "masked_cross_entropy", "targets(0, 0)", "");
  // the optional token mask is an overload: its shape is checked and named
  const dmat scores = dmat::Ones(6, 4);
  const Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> y =
      Eigen::Array<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(2, 3);
  const emask::bool_matrix m23 = emask::bool_matrix::Constant(2, 2, true);
  EMASK_BAD(emask::masked_cross_entropy(scores, y, m23), "masked_cross_entropy", "mask", "2x3");
  EMASK_BAD(emask::masked_nll(scores, y, m23), "masked_nll", "mask", "2x3");
}

// Built by tools/ci/no_exceptions_tests.sh with -fno-exceptions: the kernels, random masks and
// RL helpers compile and run without exceptions, and a bad argument to each of them ends in the
// default handler: the message on stderr, then abort().
//   no_exceptions_kernels            runs every entry point on good input, prints "ok"
//   no_exceptions_kernels CASE       makes call CASE with a bad argument (must abort)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/kernels/attention_backward.hpp>
#include <emask/kernels/kv_cache.hpp>
#include <emask/kernels/kv_prefill.hpp>
#include <emask/kernels/merge.hpp>
#include <emask/kernels/softmax.hpp>
#include <emask/kernels/softmax_backward.hpp>
#include <emask/random/mlm.hpp>
#include <emask/reference.hpp>
#include <emask/rl/action_mask.hpp>
#include <emask/rl/dqn.hpp>
#include <emask/rl/policy.hpp>

using emask::Index;
using fmat = emask::row_matrix<float>;

int main(int argc, char** argv) {
  const char* c = argc > 1 ? argv[1] : "";
  const fmat x = fmat::Random(6, 9), q = fmat::Random(6, 8), k = fmat::Random(9, 8),
             v = fmat::Random(9, 4);
  fmat out(6, 9), att(6, 4);
  Eigen::VectorXf lse(6);
  const auto mask = emask::causal::bottom_right(6, 9) & emask::key_padding::from_lengths({8}, 9);
  if (!std::strcmp(c, "softmax_out")) {
    fmat wrong(5, 9);
    emask::masked_softmax(x, mask, wrong);
  } else if (!std::strcmp(c, "softmax_scale")) {
    emask::softmax_options o;
    o.scale = std::numeric_limits<double>::quiet_NaN();
    emask::masked_softmax(x, mask, out, o);
  } else if (!std::strcmp(c, "attention_k")) {
    const fmat k_bad = fmat::Random(9, 7);
    emask::masked_attention(q, k_bad, v, mask, att);
  } else if (!std::strcmp(c, "attention_offset")) {
    emask::attention_options o;
    o.k_offset = 4;  // a mask built for 9 keys, asked about [4, 13)
    emask::masked_attention(q, k, v, mask, att, o);
  } else if (!std::strcmp(c, "attention_backward_dout")) {
    masked_attention(emask::tiled, q, k, v, mask, att, lse);
    fmat dq(6, 8), dk(9, 8), dv(9, 4);
    const fmat dout_bad = fmat::Random(5, 4);
    emask::masked_attention_backward(q, k, v, mask, emask::attention_options{}, att, lse, dout_bad,
                                     dq, dk, dv);
  } else if (!std::strcmp(c, "softmax_backward_dy")) {
    fmat dx(6, 9);
    emask::masked_softmax_backward(out, fmat(fmat::Random(6, 8)), mask, dx);
  } else if (!std::strcmp(c, "kv_block_table")) {
    std::vector<Eigen::bfloat16> pages(static_cast<std::size_t>(2 * 16 * 8));
    const std::int32_t table[2] = {0, 7}, len[1] = {20};
    const emask::paged_kv_view<Eigen::bfloat16> cache(pages.data(), pages.data(), 2, 16, 1, 8,
                                                      emask::kv_page_layout::hnd, table, 1, 2, len);
    std::vector<float> qq(8), oo(8);
    emask::masked_attention_decode(emask::view_bhld<const float>(qq.data(), 1, 1, 1, 8), cache,
                                   emask::causal(), emask::view_bhld(oo.data(), 1, 1, 1, 8));
  } else if (!std::strcmp(c, "merge")) {
    std::vector<fmat> parts;
    std::vector<emask::lse_vector<float>> lses;
    emask::merge_attention(parts, lses, att, lse);
  } else if (!std::strcmp(c, "mlm_vocabulary")) {
    emask::mlm_options o;  // no vocabulary
    emask::mlm_mask(emask::token_matrix::Constant(2, 5, 3), o);
  } else if (!std::strcmp(c, "rl_no_legal")) {
    const emask::bool_matrix legal = emask::bool_matrix::Constant(2, 3, false);
    emask::masked_q_argmax(fmat(fmat::Ones(2, 3)), legal);
  } else if (c[0] != '\0') {
    std::fprintf(stderr, "unknown case %s\n", c);
    return 2;
  } else {
    const auto softmaxes = [&](auto variant) {
      emask::masked_softmax(variant, x, mask, out, lse);
      emask::masked_log_softmax(variant, x, mask, out, lse);
    };
    softmaxes(emask::reference::naive);
    softmaxes(emask::fused);
    softmaxes(emask::tiled);
    emask::masked_attention(emask::reference::naive, q, k, v, mask, att, lse);
    emask::masked_attention(emask::tiled, q, k, v, mask, att, lse);
    emask::masked_attention(emask::decode, q, k, v, mask, att, lse);
    {
      fmat dq(6, 8), dk(9, 8), dv(9, 4), dx(6, 9);
      emask::masked_attention(emask::tiled, q, k, v, mask, att, lse);
      emask::masked_attention_backward(q, k, v, mask, emask::attention_options{}, att, lse,
                                       fmat(fmat::Ones(6, 4)), dq, dk, dv);
      emask::masked_softmax(x, mask, out);
      emask::masked_softmax_backward(out, fmat(fmat::Ones(6, 9)), mask, dx);
      std::vector<Eigen::bfloat16> pages(static_cast<std::size_t>(2 * 16 * 8));
      emask::kv_convert(k.data(), 8, pages.data());
      const std::int32_t table[2] = {1, 0}, len[1] = {20};
      const emask::paged_kv_view<Eigen::bfloat16> cache(
          pages.data(), pages.data(), 2, 16, 1, 8, emask::kv_page_layout::hnd, table, 1, 2, len);
      std::vector<float> qq(2 * 8, 0.5f), oo(2 * 8);
      emask::masked_attention_decode(emask::view_bhld<const float>(qq.data(), 1, 1, 2, 8), cache,
                                     emask::causal(), emask::view_bhld(oo.data(), 1, 1, 2, 8));
      emask::masked_attention_prefill(emask::view_bhld<const float>(qq.data(), 1, 1, 2, 8), cache,
                                      emask::causal(), emask::view_bhld(oo.data(), 1, 1, 2, 8));
    }
    emask::mlm_options o;
    o.vocabulary = emask::special_tokens(20, {0});
    o.mask_id = 1;
    const emask::mlm_result r = emask::mlm_mask(emask::token_matrix::Constant(2, 5, 3), o);
    const emask::bool_matrix legal = emask::bool_matrix::Constant(2, 3, true);
    const auto a = emask::masked_q_argmax(fmat(fmat::Ones(2, 3)), legal);
    std::printf("ok (%ld ids, action %ld, out %g)\n", static_cast<long>(r.input_ids.size()),
                static_cast<long>(a[0]), static_cast<double>(att.sum()));
    return 0;
  }
  std::printf("UNREACHABLE: case %s returned\n", c);
  return 0;
}

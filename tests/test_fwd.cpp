// emask/fwd.hpp declares what the headers define. This TU includes fwd.hpp before every
// public header, so a declaration that disagrees with its definition (class vs struct, template
// parameters, a default template argument given twice, another namespace) fails to compile
// here (-Wmismatched-tags is on for this target); tests/fwd/fwd_only.cpp, which sees fwd.hpp
// alone, calls the functions defined below, so a type named differently fails to link.
#include <emask/fwd.hpp>  // first, on purpose

#include <cstdint>
#include <limits>
#include <vector>

#include <emask/emask.hpp>
#include <emask/reference.hpp>

#include "catch.hpp"

namespace fwd_test {
using namespace emask;

int core_types(const key_span& a, const region& b, const index_list& c, const id_table& d,
               const drop_mask& e, const additive_mask<float>& f, const bit_row& g,
               const bit_mask& h, const block_mask& i, const render_options& j,
               const image_options& k, const error& l) {
  return static_cast<int>(a.size() + b.q_end + static_cast<Index>(c.size()) + d.cols() + e.cols() +
                          f.cols() + g.size() + h.cols() + i.q_len() + j.h + k.cell) +
         (l.what()[0] == 'x' ? 1 : 0);
}
int mask_types(const mask_base<causal>& a, const offset_mask<causal>& b,
               const and_mask<causal, chunked>& c, const or_mask<causal, prefix_lm>& d,
               const not_mask<sliding_window>& e, const per_head_mask<sliding_window>& f,
               const key_padding& g, const query_padding& h, const key_flags& i,
               const query_flags& j, const document& k, const dense_mask& l, llama_swa_type m,
               const keep_all& o) {
  int n = 0;
  n += a.derived().keep(0, 0, 1, 0) ? 1 : 0;
  n += b.keep(0, 0, 0, 0) ? 1 : 0;
  n += c.keep(0, 0, 1, 0) ? 1 : 0;
  n += d.keep(0, 0, 0, 0) ? 1 : 0;
  n += e.keep(0, 0, 0, 0) ? 1 : 0;
  n += f.keep(0, 0, 0, 0) ? 1 : 0;
  n += g.keep(0, 0, 0, 0) ? 1 : 0;
  n += h.keep(0, 0, 0, 0) ? 1 : 0;
  n += i.keep(0, 0, 0, 0) ? 1 : 0;
  n += j.keep(0, 0, 0, 0) ? 1 : 0;
  n += k.keep(0, 0, 0, 1) ? 1 : 0;
  n += l.keep(0, 0, 0, 0) ? 1 : 0;
  n += o.keep(0, 0, 0, 5) ? 1 : 0;
  return n + (m == llama_swa_type::symmetric ? 100 : 0);
}
int kernel_types(const slice& a, const kernel_options& b, const softmax_options& c,
                 const attention_options& d, const attention_workspace<float>& e,
                 const tensor_view<const float>& f, const tiled_t&, const fused_t&, const decode_t&,
                 const reference::naive_t&) {
  static_assert(is_kernel_variant<tiled_t>::value && is_kernel_variant<reference::naive_t>::value,
                "the tags are kernel variants");
  return static_cast<int>(a.b + b.q_offset + c.tile_q + d.tile_q + e.size() + f.dim());
}
int kv_types(const kv_cache_view<float>& a, const paged_kv_view<Eigen::half>& b, kv_page_layout c,
             const kv_decode_workspace& d) {
  return static_cast<int>(a.dim() + b.page_size() + d.size()) +
         (c == kv_page_layout::nhd ? 100 : 0);
}
int other_types(const special_tokens& a, const action_space& b, const action_mask& c,
                const maskgit_schedule& d, const conditional_table& e, const action_prefix& f) {
  return static_cast<int>(a.vocab_size() + b.width() + c.flat().cols() + e.heads() + f.size()) +
         (d.type() == maskgit_schedule::kind::linear ? 100 : 0);
}
int wave_types(const sink_window& a, const token_bitmask& b, const block_bidirectional& c,
               const layer_schedule& d, const tree_mask& e, const block_topk& f,
               const block_sparse_mask<keep_all>& g, const interval_union_mask& h,
               const column_interval_mask& i, const flex_block_mask& j, layer_kind k, bit_order l) {
  return static_cast<int>(a.n_sink() + b.vocab() + c.length() + d.layers() + e.draft_length() +
                          f.block_size() + g.shape().q_len + h.q_len() + i.k_len() +
                          j.shape.k_len) +
         (k == layer_kind::chunked ? 100 : 0) + (l == bit_order::little ? 1000 : 0);
}
Index vocabulary(const bool_matrix& a, const row_matrix<double>& b, const lse_vector<float>& c,
                 tile_state d) {
  return a.size() + b.size() + c.size() + (d == tile_state::full ? 1 : 0);
}

// Defined in tests/fwd/fwd_only.cpp, which sees only fwd.hpp.
int forward_core(const key_span&, const region&, const index_list&, const id_table&,
                 const drop_mask&, const additive_mask<float>&, const bit_row&, const bit_mask&,
                 const block_mask&, const render_options&, const image_options&, const error&);
int forward_masks(const mask_base<causal>&, const offset_mask<causal>&,
                  const and_mask<causal, chunked>&, const or_mask<causal, prefix_lm>&,
                  const not_mask<sliding_window>&, const per_head_mask<sliding_window>&,
                  const key_padding&, const query_padding&, const key_flags&, const query_flags&,
                  const document&, const dense_mask&, llama_swa_type, const keep_all&);
int forward_kernels(const slice&, const kernel_options&, const softmax_options&,
                    const attention_options&, const attention_workspace<float>&,
                    const tensor_view<const float>&, const tiled_t&, const fused_t&,
                    const decode_t&, const reference::naive_t&);
int forward_others(const special_tokens&, const action_space&, const action_mask&,
                   const maskgit_schedule&, const conditional_table&, const action_prefix&);
int forward_wave(const sink_window&, const token_bitmask&, const block_bidirectional&,
                 const layer_schedule&, const tree_mask&, const block_topk&,
                 const block_sparse_mask<keep_all>&, const interval_union_mask&,
                 const column_interval_mask&, const flex_block_mask&, layer_kind, bit_order);
int forward_kv(const kv_cache_view<float>&, const paged_kv_view<Eigen::half>&, kv_page_layout,
               const kv_decode_workspace&);
Index forward_vocabulary(const bool_matrix&, const row_matrix<double>&, const lse_vector<float>&,
                         tile_state);
}  // namespace fwd_test

TEST_CASE("fwd.hpp: a TU with only the declarations passes every type on", "[fwd]") {
  using namespace emask;
  const std::uint64_t words[1] = {0x5};
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fwd_test::forward_core(key_span{0, 2, true}, region{}, index_list{1, 2},
                               id_table{{1, 2, 3}}, drop_mask(bool_matrix::Constant(1, 4, false)),
                               additive_mask<float>(row_matrix<float>::Zero(1, 5), -inf),
                               bit_row(words, 6), bit_mask(2, 7), block_mask{}, render_options{},
                               image_options{},
                               error("x")) == 2 + 0 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 1);

  const bool_matrix keep = bool_matrix::Constant(2, 2, true);
  CHECK(fwd_test::forward_masks(
            causal(), causal().offset(1, 0), causal() & chunked(2), causal() | prefix_lm(1),
            !sliding_window(0, 0), per_head(std::vector<sliding_window>{sliding_window(1, 0)}),
            key_padding::from_lengths({1}, 2), query_padding::from_lengths({1}, 2),
            key_flags::from_tokens(id_table{{5, 0}}, 0),
            query_flags::from_tokens(id_table{{5, 0}}, 0), document::from_cu_seqlens({0, 2}),
            as_mask(keep), llama_swa_type::symmetric, keep_all()) == 100 + 12);

  softmax_options so;
  so.tile_q = 3;
  attention_options ao;
  ao.tile_q = 4;
  CHECK(fwd_test::forward_kernels(slice{}, kernel_options{}, so, ao, attention_workspace<float>{},
                                  tensor_view<const float>{}, tiled, fused, decode,
                                  reference::naive) == 7);
  const action_space space = action_space::discrete(3);
  const Index chosen[2] = {1, 0};
  CHECK(fwd_test::forward_others(special_tokens(10, {0}), space,
                                 action_mask(space, bool_matrix::Constant(1, 3, true)),
                                 maskgit_schedule::linear(),
                                 conditional_table::shared(action_space::multi_discrete({2, 3})),
                                 action_prefix(chosen, 2)) == 10 + 3 + 3 + 2 + 2 + 100);
  const std::int32_t len[1] = {0};
  const std::int32_t table[1] = {0};
  CHECK(fwd_test::forward_kv(kv_cache_view<float>(nullptr, nullptr, 1, 1, 0, 4, len),
                             paged_kv_view<Eigen::half>(nullptr, nullptr, 0, 16, 1, 0,
                                                        kv_page_layout::hnd, table, 1, 1, len),
                             kv_page_layout::nhd, kv_decode_workspace()) == 4 + 16 + 0 + 100);
  CHECK(fwd_test::forward_vocabulary(keep, row_matrix<double>::Zero(1, 2), lse_vector<float>(3),
                                     tile_state::full) == 4 + 2 + 3 + 1);
  const std::int32_t bits[1] = {1};
  CHECK(fwd_test::forward_wave(sink_window(1, 2), token_bitmask(bits, 1, 1, 3),
                               block_bidirectional(id_table{{0, 0}}), layer_schedule::gemma2(4),
                               tree_mask({-1}, 0), block_topk(),
                               from_flex_block_mask(to_flex_block_mask(causal(), 5, 5)),
                               interval_union_mask({0}, {1}, 1, 6), column_interval_mask(),
                               to_flex_block_mask(causal(), 2, 7), layer_kind::chunked,
                               bit_order::little) == 1 + 3 + 2 + 4 + 1 + 1 + 5 + 1 + 0 + 7 + 1100);
}

// A TU that sees only <emask/fwd.hpp>: every forward-declared type can be named, taken and
// passed on by reference without its header. The functions declared here are defined in
// tests/test_fwd.cpp, which sees the full definitions: the program links only when both TUs
// name the same types (namespace, inline namespace, class or struct).
#include <emask/fwd.hpp>

namespace fwd_test {
// Defined in test_fwd.cpp, with the complete types.
int core_types(const emask::key_span&, const emask::region&, const emask::index_list&,
               const emask::id_table&, const emask::drop_mask&, const emask::additive_mask<float>&,
               const emask::bit_row&, const emask::bit_mask&, const emask::block_mask&,
               const emask::render_options&, const emask::image_options&, const emask::error&);
int mask_types(const emask::mask_base<emask::causal>&, const emask::offset_mask<emask::causal>&,
               const emask::and_mask<emask::causal, emask::chunked>&,
               const emask::or_mask<emask::causal, emask::prefix_lm>&,
               const emask::not_mask<emask::sliding_window>&,
               const emask::per_head_mask<emask::sliding_window>&, const emask::key_padding&,
               const emask::query_padding&, const emask::key_flags&, const emask::query_flags&,
               const emask::document&, const emask::dense_mask&, emask::llama_swa_type,
               const emask::keep_all&);
int kernel_types(const emask::slice&, const emask::kernel_options&, const emask::softmax_options&,
                 const emask::attention_options&, const emask::attention_workspace<float>&,
                 const emask::tensor_view<const float>&, const emask::tiled_t&,
                 const emask::fused_t&, const emask::decode_t&, const emask::reference::naive_t&);
int other_types(const emask::special_tokens&, const emask::action_space&, const emask::action_mask&,
                const emask::maskgit_schedule&, const emask::conditional_table&,
                const emask::action_prefix&);
int wave_types(const emask::sink_window&, const emask::token_bitmask&,
               const emask::block_bidirectional&, const emask::layer_schedule&,
               const emask::tree_mask&, const emask::block_topk&,
               const emask::block_sparse_mask<emask::keep_all>&, const emask::interval_union_mask&,
               const emask::column_interval_mask&, const emask::flex_block_mask&, emask::layer_kind,
               emask::bit_order);
int kv_types(const emask::kv_cache_view<float>&, const emask::paged_kv_view<Eigen::half>&,
             emask::kv_page_layout, const emask::kv_decode_workspace&);
// The vocabulary of core/types.hpp comes with fwd.hpp.
emask::Index vocabulary(const emask::bool_matrix&, const emask::row_matrix<double>&,
                        const emask::lse_vector<float>&, emask::tile_state);

// Defined here, without any definition of the types: passes the references on.
int forward_core(const emask::key_span& a, const emask::region& b, const emask::index_list& c,
                 const emask::id_table& d, const emask::drop_mask& e,
                 const emask::additive_mask<float>& f, const emask::bit_row& g,
                 const emask::bit_mask& h, const emask::block_mask& i,
                 const emask::render_options& j, const emask::image_options& k,
                 const emask::error& l) {
  return core_types(a, b, c, d, e, f, g, h, i, j, k, l);
}
int forward_masks(const emask::mask_base<emask::causal>& a,
                  const emask::offset_mask<emask::causal>& b,
                  const emask::and_mask<emask::causal, emask::chunked>& c,
                  const emask::or_mask<emask::causal, emask::prefix_lm>& d,
                  const emask::not_mask<emask::sliding_window>& e,
                  const emask::per_head_mask<emask::sliding_window>& f, const emask::key_padding& g,
                  const emask::query_padding& h, const emask::key_flags& i,
                  const emask::query_flags& j, const emask::document& k, const emask::dense_mask& l,
                  emask::llama_swa_type m, const emask::keep_all& n) {
  return mask_types(a, b, c, d, e, f, g, h, i, j, k, l, m, n);
}
int forward_kernels(const emask::slice& a, const emask::kernel_options& b,
                    const emask::softmax_options& c, const emask::attention_options& d,
                    const emask::attention_workspace<float>& e,
                    const emask::tensor_view<const float>& f, const emask::tiled_t& g,
                    const emask::fused_t& h, const emask::decode_t& i,
                    const emask::reference::naive_t& j) {
  return kernel_types(a, b, c, d, e, f, g, h, i, j);
}
int forward_others(const emask::special_tokens& a, const emask::action_space& b,
                   const emask::action_mask& c, const emask::maskgit_schedule& d,
                   const emask::conditional_table& e, const emask::action_prefix& f) {
  return other_types(a, b, c, d, e, f);
}
int forward_wave(const emask::sink_window& a, const emask::token_bitmask& b,
                 const emask::block_bidirectional& c, const emask::layer_schedule& d,
                 const emask::tree_mask& e, const emask::block_topk& f,
                 const emask::block_sparse_mask<emask::keep_all>& g,
                 const emask::interval_union_mask& h, const emask::column_interval_mask& i,
                 const emask::flex_block_mask& j, emask::layer_kind k, emask::bit_order l) {
  return wave_types(a, b, c, d, e, f, g, h, i, j, k, l);
}
emask::Index forward_vocabulary(const emask::bool_matrix& a, const emask::row_matrix<double>& b,
                                const emask::lse_vector<float>& c, emask::tile_state d) {
  return vocabulary(a, b, c, d);
}
int forward_kv(const emask::kv_cache_view<float>& a, const emask::paged_kv_view<Eigen::half>& b,
               emask::kv_page_layout c, const emask::kv_decode_workspace& d) {
  return kv_types(a, b, c, d);
}
}  // namespace fwd_test

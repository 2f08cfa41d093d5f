/// \file
/// \brief Forward declarations of emask's types, for headers and interfaces that only name them
/// (as nlohmann/json's json_fwd.hpp): the core and mask types, the kernels' option structs,
/// variant tags and tensor views, and the stable types of random/ and rl/. It includes only
/// config.hpp and core/types.hpp (Index, bool_matrix, row_matrix, lse_vector, tile_state).
///
/// Each declaration matches its definition exactly (class or struct, template parameters);
/// default template arguments, if any, are written at the definition only, never here.
/// tests/test_fwd.cpp checks both: a TU that sees only this header, and one that sees it next
/// to every definition.
#pragma once

#include "emask/config.hpp"
#include "emask/core/types.hpp"

EMASK_NAMESPACE_BEGIN
// error.hpp
class error;

// core/
struct key_span;
struct region;
template <class Derived>
class mask_base;
template <class T>
struct is_mask;
template <class Mask>
class offset_mask;
template <class A, class B>
class and_mask;
template <class A, class B>
class or_mask;
template <class A>
class not_mask;
template <class Mask>
class per_head_mask;
class index_list;
class id_table;
class drop_mask;
template <class Scalar>
class additive_mask;
class bit_row;
class bit_mask;
class block_mask;
struct block_sparse_shape;
struct flex_block_mask;
struct fa4_block_sparse;
struct bsr_block_sparse;
struct block_string_options;
struct slice_extents;
class tile_grid;
class score_mod;
enum class alibi_form;
struct render_options;
struct image_options;

// masks/
class causal;
class keep_all;
class sink_window;
class token_bitmask;
enum class vocab_tail;
class block_bidirectional;
class layer_schedule;
struct layer_attention;
enum class layer_kind;
class tree_mask;
enum class bit_order;
enum class tail_bits;
struct packed_segments;
template <class Mod>
class block_sparse_mask;
class block_topk;
class interval_union_mask;
class column_interval_mask;
struct block_topk_options;
class sliding_window;
enum class llama_swa_type;
class chunked;
class prefix_lm;
class key_padding;
class query_padding;
class key_flags;
class query_flags;
class document;
class dense_mask;

// kernels/
struct slice;
struct kernel_options;
struct softmax_options;
struct attention_options;
template <class Scalar>
class attention_workspace;
template <class Scalar>
class tensor_view;
struct tiled_t;
struct fused_t;
struct decode_t;
namespace reference {
struct naive_t;
}  // namespace reference
template <class T>
struct is_kernel_variant;
template <class T>
class kv_cache_view;
template <class T>
class paged_kv_view;
enum class kv_page_layout;
class kv_decode_workspace;

// random/, rl/: the stable types only (not the option and result structs)
class special_tokens;
class maskgit_schedule;
class action_space;
class action_mask;
class action_prefix;
class conditional_table;
EMASK_NAMESPACE_END

/// \file
/// \brief Forward declarations of emask's types, for headers that only name them.
#pragma once

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN
enum class tile_state : unsigned char;
struct key_span;
struct region;
template <class Derived>
class mask_base;
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
class causal;
class sliding_window;
class chunked;
class prefix_lm;
class key_padding;
class query_padding;
class key_flags;
class query_flags;
class document;
class dense_mask;
class bit_mask;
class block_mask;
class drop_mask;
template <class Scalar>
class additive_mask;
class error;
EMASK_NAMESPACE_END

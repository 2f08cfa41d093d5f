/// \file
/// \brief The reference variants (reference::naive) of every kernel, for tests and checks.
#pragma once

#include "emask/reference/attention.hpp"
#include "emask/reference/attention_backward.hpp"
#include "emask/reference/softmax.hpp"

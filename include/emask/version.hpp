/// \file
/// \brief Version macros of emask; a test checks they match the CMake project version.
#pragma once

#define EMASK_VERSION_MAJOR 0
#define EMASK_VERSION_MINOR 1
#define EMASK_VERSION_PATCH 0
/// Version as one integer, e.g. 10203 for 1.2.3.
#define EMASK_VERSION (EMASK_VERSION_MAJOR * 10000 + EMASK_VERSION_MINOR * 100 + EMASK_VERSION_PATCH)

/// \file
/// \brief Version macros of emask; a test checks they match the CMake project version.
#pragma once

#define EMASK_VERSION_MAJOR 0  ///< major version: incompatible API changes
#define EMASK_VERSION_MINOR 1  ///< minor version: compatible additions
#define EMASK_VERSION_PATCH 0  ///< patch version: fixes
/// Version as one integer, e.g. 10203 for 1.2.3.
#define EMASK_VERSION \
  (EMASK_VERSION_MAJOR * 10000 + EMASK_VERSION_MINOR * 100 + EMASK_VERSION_PATCH)

#pragma once
// The scalar reference kernels: encode, decode, dot, axpy for every codec (docs/formats.md).

#include <strata/reference/axpy.hpp>
#include <strata/reference/dot.hpp>
#include <strata/reference/encode.hpp>

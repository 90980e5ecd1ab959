#pragma once
// strata's version, for users and for the tools' banners.
namespace strata {
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
inline constexpr const char* version_string = "0.1.0";
}  // namespace strata

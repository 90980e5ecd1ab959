#pragma once
// strata::kv_cache<Policy, Rotation, Codecs>: the compressed KV cache with its layer policy,
// rotation and codec set fixed at compile time.
//
//   using cache = strata::kv_cache<strata::boundary_v<>>;          // Boundary V, K q8_0
//   cache c(strata::layer_map::dense(40, 8, 128, 32), {.n_ctx = 8192});
//   c.append(layer, pos, k, v, n_tokens);
//   c.attend(layer, q, n_q, first_pos, out);
//
// Everything at run time (layouts, positions, threads, save/load) is runtime_kv_cache's
// (strata/cache/runtime_kv_cache.hpp), which this class is. What the types add:
// - the policy is checked at compile time: a codec it names must be in `Codecs`
//   (default: the standard codecs), two of its codec types may not share a codec id, its rule
//   list may not be empty, ...;
// - each layer's kernels are those of the policy's own codec types (e.g. a turbo<3> with a
//   custom codebook), looked up once per layer when the cache is built;
// - the rotation is a type (hadamard<Seed> by default; identity for none).

#include <cstddef>
#include <type_traits>

#include <boost/hana/length.hpp>
#include <boost/hana/transform.hpp>
#include <boost/hana/unpack.hpp>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/codec/codecs.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/policy/policy.hpp>
#include <strata/policy/presets.hpp>  // boundary_v<>, la1<>, ...: what the example above names

namespace strata {

namespace detail {
template <class P, class Set> struct policy_in_set;
template <class P, class... C>
struct policy_in_set<P, codec_set<C...>> : std::bool_constant<policy_uses_only<P, C...>()> {};

template <class P> constexpr bool policy_ids_unique() {
  constexpr auto ids = hana::unpack(policy_codecs<P>(), [](auto... t) {
    return std::array<codec_id, sizeof...(t)>{decltype(t)::type::id...};
  });
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t j = i + 1; j < ids.size(); ++j)
      if (ids[i] == ids[j]) return false;
  return true;
}

template <class P> constexpr kernel_resolver policy_kernel_resolver() {
  return hana::unpack(policy_codecs<P>(), [](auto... t) {
    kernel_resolver r = &strata::kernels_from<codec_set<typename decltype(t)::type...>>;
    return r;
  });
}

template <class R>
concept rotation = std::is_empty_v<R> && requires(float* x, std::size_t n) {
  R::forward(x, n);
  R::inverse(x, n);
};
}  // namespace detail

template <class Policy, class Rotation = default_rotation, class Codecs = standard_codecs>
class kv_cache : public runtime_kv_cache {
  static_assert(layer_policy<Policy>,
                "strata::kv_cache<Policy>: Policy must be a layer policy such as uniform<K, V>, "
                "layered<uniform<K, V>, Rules...> or a preset (boundary_v<>, la1<>, ...)");
  static_assert(detail::policy_in_set<Policy, Codecs>::value,
                "strata::kv_cache<Policy, Rotation, Codecs>: the policy names a codec that is "
                "not in the cache's codec set");
  static_assert(detail::policy_ids_unique<Policy>(),
                "strata::kv_cache<Policy>: two codec types of the policy share a codec id");
  static_assert(detail::rotation<Rotation>,
                "strata::kv_cache<Policy, Rotation>: Rotation must be an empty type with static "
                "forward(float*, size_t) and inverse(float*, size_t), e.g. hadamard<Seed>");

 public:
  using policy_type = Policy;
  using rotation_type = Rotation;

  // opt.rotation and opt.kernels are set from the types.
  kv_cache(const layer_map& map, cache_options opt)
      : runtime_kv_cache(map, to_spec<Policy>(), with_types(opt)) {}

 private:
  static cache_options with_types(cache_options opt) {
    opt.rotation = rotation_ops::of<Rotation>();
    opt.kernels = detail::policy_kernel_resolver<Policy>();
    opt.layouts = &layout_of<Codecs>;
    return opt;
  }
};

}  // namespace strata

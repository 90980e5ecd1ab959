#include "io/quant.hpp"

#include <string>

namespace engine {

void q3_k_scales(const uint8_t* packed12, int8_t out[16]) {
  constexpr uint32_t kmask1 = 0x03030303u, kmask2 = 0x0f0f0f0fu;
  uint32_t aux[4];
  std::memcpy(aux, packed12, 12);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  std::memcpy(out, aux, 16);
  for (int k = 0; k < 16; ++k) out[k] = static_cast<int8_t>(out[k] - 32);
}

namespace {

// One function per type of io/ggml_types.hpp, deq_<NAME>: dequantize `nb` consecutive blocks.
void deq_F32(const void* src, float* y, int64_t nb) {
  std::memcpy(y, src, static_cast<size_t>(nb) * 4);
}

void deq_F16(const void* src, float* y, int64_t nb) {
  const auto* h = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    uint16_t v;
    std::memcpy(&v, h + 2 * i, 2);
    y[i] = half_to_float(v);
  }
}

void deq_BF16(const void* src, float* y, int64_t nb) {
  const auto* h = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    uint16_t v;
    std::memcpy(&v, h + 2 * i, 2);
    y[i] = bf16_to_float(v);
  }
}

void deq_Q4_0(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q4_0*>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void deq_Q4_1(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q4_1*>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d), m = half_to_float(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(b[i].qs[j] & 0xF) + m;
      y[j + 16] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

// The 5-bit values of a Q5_0 / Q5_1 block, unsigned in [0, 32).
inline void q5_values(const uint8_t* qh4, const uint8_t* qs, int q[32]) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
  }
}

void deq_Q5_0(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q5_0*>(src);
  int q[32];
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d);
    q5_values(b[i].qh, b[i].qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q[j] - 16);
  }
}

void deq_Q5_1(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q5_1*>(src);
  int q[32];
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d), m = half_to_float(b[i].m);
    q5_values(b[i].qh, b[i].qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q[j]) + m;
  }
}

void deq_Q8_0(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void deq_Q8_1(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q8_1*>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = half_to_float(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void deq_Q2_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q2_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    const uint8_t* q = b[i].qs;
    int is = 0;
    for (int n = 0; n < kQK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = b[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF),
                      ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l)
            *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void deq_Q3_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q3_K*>(src);
  int8_t scales[16];
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    q3_k_scales(b[i].scales, scales);
    const uint8_t* q = b[i].qs;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < kQK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d * static_cast<float>(scales[is++]);
          for (int l = 16 * half; l < 16 * half + 16; ++l)
            *y++ = dl * static_cast<float>(((q[l] >> shift) & 3) - ((b[i].hmask[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

void deq_Q4_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q4_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      k_scale_min(j, b[i].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(j + 1, b[i].scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void deq_Q5_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q5_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    const uint8_t* ql = b[i].qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 8; j += 2, ql += 32) {
      uint8_t sc, m;
      k_scale_min(j, b[i].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(j + 1, b[i].scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((b[i].qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((b[i].qh[l] & u2) ? 16 : 0)) - m2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void deq_Q6_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q6_K*>(src);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int n = 0; n < kQK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is] * q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2] * q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4] * q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6] * q4);
      }
    }
  }
}

void deq_Q8_K(const void* src, float* y, int64_t nb) {
  const auto* b = static_cast<const block_q8_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += kQK_K)
    for (int j = 0; j < kQK_K; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

using dequantizer = void (*)(const void*, float*, int64_t);

dequantizer dequantizer_of(ggml_type t) {
  switch (t) {
#define ENGINE_QUANT_DEQ(name, value, values, bytes, path) \
  case ggml_type::name: return deq_##name;
    ENGINE_GGML_TYPES(ENGINE_QUANT_DEQ)
#undef ENGINE_QUANT_DEQ
  }
  return nullptr;
}

const ggml_type_info& info_of(ggml_type t) {
  if (const ggml_type_info* info = find_ggml_type(t)) return *info;
  throw make_error("unsupported tensor type " + std::to_string(static_cast<uint32_t>(t)), "quant");
}

}  // namespace

int64_t block_values(ggml_type t) { return info_of(t).block_values; }
int64_t block_bytes(ggml_type t) { return info_of(t).block_bytes; }

void dequantize(ggml_type type, const void* src, float* dst, int64_t n) {
  const ggml_type_info& f = info_of(type);
  if (n < 0 || n % f.block_values != 0)
    throw make_error(std::to_string(n) + " values is not a multiple of the " +
                         std::string(type_name(type)) + " block of " +
                         std::to_string(f.block_values),
                     "dequantize");
  dequantizer_of(type)(src, dst, n / f.block_values);
}

}  // namespace engine

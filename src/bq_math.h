/* bq_math.h - per-element math shared by the CPU reference and the CUDA kernels, so both compute
 * exactly the same formula (compiled as host code by the C compiler, host+device by nvcc). */
#ifndef BQ_MATH_H
#define BQ_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define BQ_HD __host__ __device__ __forceinline__
#else
#define BQ_HD static inline
#endif

/* GELU, the exact erf form BERT uses (never the tanh approximation). */
BQ_HD float bq_gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

/* 2^x with results below 2^-126 flushed to 0: the special function unit's ex2 alone on the
 * device (exp2f adds a denormal fix-up around it); exp2f on the host. */
BQ_HD float bq_exp2_ftz(float x) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

/* The same erf GELU with erfc(|x| / sqrt 2) from Abramowitz & Stegun 7.1.26 (a degree-5
 * polynomial in t = 1 / (1 + p z) times exp(-z^2); |error| <= 1.5e-7 in erf, the size of erff's
 * own rounding): no branch and no coefficient selects, one reciprocal and one exp2 on the special
 * function unit and ~12 FP32 operations where erff takes ~25 with a divergent branch. The CUTLASS
 * GEMM's epilogue uses it (cutlass_fused_gemm.cuh), where the erf took over a quarter of the FFN-in
 * GEMM's time on the H200 and the epilogue's instructions are the cost (ncu: issue slots 33% busy,
 * nothing overlaps them in the cooperative kernel); so the constants are folded: 1 / sqrt 2 into p
 * and into the exponent, and erfc's 1/2 into the coefficients (halving is exact).
 * tests/test_forward_cpu.c bounds it against the double-precision erf. */
BQ_HD float bq_gelu_erf_fast(float x) {
    const float a = fabsf(x);
    const float d = 1.0f + 0.2316418883f * a; /* 1 + p z, p = 0.3275911, z = |x| / sqrt 2 */
#if defined(__CUDA_ARCH__)
    const float t = __fdividef(1.0f, d);
#else
    const float t = 1.0f / d;
#endif
    /* exp(-z^2) = 2^(-x^2 log2(e) / 2) */
    const float e = bq_exp2_ftz((a * -0.72134752044448170f) * a);
    const float half_q = /* erfc(z) / 2 = Phi(-|x|) */
        t * (0.127414796f +
             t * (-0.142248368f + t * (0.7107068705f + t * (-0.7265760135f + t * 0.5307027145f)))) *
        e;
    /* Phi(x) = 1 - half_q for x >= 0, half_q below; x * Phi(x) keeps +Inf -> +Inf as erff does */
    return x * (x >= 0.0f ? 1.0f - half_q : half_q);
}

/* Additive attention bias for a key position: 0 for real tokens, -10000 for padding (as the
 * original BERT and the model card define it). */
BQ_HD float bq_mask_bias(int mask_value) { return mask_value ? 0.0f : -10000.0f; }

/* x rounded to the nearest TF32 value (10 explicit mantissa bits, ties to even; Inf and NaN kept).
 * The tf32 engine stores its GEMM weights this way, so the tensor cores read them exactly whether
 * they round their fp32 inputs or drop the low 13 bits. */
BQ_HD float bq_round_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) {
        u += 0xfffu + ((u >> 13) & 1u);
        u &= ~0x1fffu;
    }
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Running (Welford) mean / M2 for LayerNorm row statistics, mergeable across threads. */
typedef struct {
    float mean, m2, count;
} bq_welford;

BQ_HD bq_welford bq_welford_add(bq_welford s, float x) {
    s.count += 1.0f;
    float d = x - s.mean;
    s.mean += d / s.count;
    s.m2 += d * (x - s.mean);
    return s;
}

BQ_HD bq_welford bq_welford_merge(bq_welford a, bq_welford b) {
    if (b.count == 0.0f) return a;
    if (a.count == 0.0f) return b;
    float n = a.count + b.count;
    float d = b.mean - a.mean;
    bq_welford r;
    r.count = n;
    r.mean = a.mean + d * (b.count / n);
    r.m2 = a.m2 + b.m2 + d * d * (a.count * b.count / n);
    return r;
}

/* LayerNorm of one value given row statistics: (x - mean) * rstd * gamma + beta. */
BQ_HD float bq_layernorm_apply(float x, float mean, float rstd, float gamma, float beta) {
    return (x - mean) * rstd * gamma + beta;
}

/* 1/sqrt(variance + eps) with the biased (population) variance, as PyTorch's LayerNorm. */
BQ_HD float bq_layernorm_rstd(bq_welford s, float eps) {
    return 1.0f / sqrtf(s.m2 / s.count + eps);
}

#endif

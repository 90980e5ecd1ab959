#!/usr/bin/env python3
"""Lloyd-Max quantizers for N(0, 1), 1..6 bits, printed as the constexpr tables of
include/strata/codec/lloyd_max.hpp.  Standard library only (math.erf/erfc are accurate to
about 1 ulp), so the tables are reproducible anywhere:

    python3 tools/lloyd_max.py > /tmp/tables.txt

Lloyd's iteration on a symmetric quantizer: thresholds are the midpoints of neighbouring
centroids, centroids are the conditional means of N(0,1) between their thresholds
(E[X | a < X < b] = (phi(a) - phi(b)) / (Phi(b) - Phi(a))).  Iterate until nothing moves by
more than 1e-16; the MSE is 1 - sum_i p_i c_i^2 (valid because every c_i is a conditional
mean), computed in the same way by tests/codec/lloyd_max_test.cpp.
"""
import math


def phi(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) if math.isfinite(x) else 0.0


def upper(x):
    # P(X > x) for X ~ N(0,1); erfc keeps the far tail accurate.
    if x == math.inf:
        return 0.0
    if x == -math.inf:
        return 1.0
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def mass(a, b):
    # P(a < X < b), computed on the side of zero where no cancellation happens.
    if a >= 0:
        return upper(a) - upper(b)
    if b <= 0:
        return upper(-b) - upper(-a)
    return 1.0 - upper(b) - upper(-a)


def lloyd_max(bits):
    n = 1 << bits
    # Start from equally spaced centroids over [-3, 3].
    c = [-3.0 + 6.0 * (i + 0.5) / n for i in range(n)]
    for _ in range(200000):
        t = [-math.inf] + [0.5 * (c[i] + c[i + 1]) for i in range(n - 1)] + [math.inf]
        new = [(phi(t[i]) - phi(t[i + 1])) / mass(t[i], t[i + 1]) for i in range(n)]
        # Enforce exact symmetry.
        new = [0.5 * (new[i] - new[n - 1 - i]) for i in range(n)]
        moved = max(abs(a - b) for a, b in zip(new, c))
        c = new
        if moved < 1e-16:
            break
    t = [0.5 * (c[i] + c[i + 1]) for i in range(n - 1)]
    edges = [-math.inf] + t + [math.inf]
    mse = 1.0 - sum(mass(edges[i], edges[i + 1]) * c[i] * c[i] for i in range(n))
    return c, t, mse


def main():
    # Emits the body of the tables in include/strata/codec/lloyd_max.hpp.
    for bits in range(1, 7):
        c, t, mse = lloyd_max(bits)
        print(f"// {bits} bit(s)")
        print(f"inline constexpr double lloyd_max_mse_{bits} = {mse:.17g};")
        print(f"inline constexpr std::array<double, {len(c)}> lloyd_max_centroids_{bits}{{")
        for i in range(0, len(c), 4):
            print("    " + ", ".join(f"{x:.17g}" for x in c[i:i + 4]) + ",")
        print("};")


if __name__ == "__main__":
    main()

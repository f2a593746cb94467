#!/usr/bin/env python3
"""Dev-only: the polynomial of FastExp.exp (Sources/DistilKernels/FastExp.swift).

Fits e^r ~ 1 + r + r^2 * (c2 + c3 r + ... + c_degree r^(degree-2)) on |r| <= ln2/2 for minimal relative error
(Lawson's iteration on a weighted least-squares fit at Chebyshev points, in float64), rounds the
coefficients to float32, and evaluates the whole kernel in float32 exactly as the Swift code does
(Cody-Waite reduction, Horner, 2^n in the exponent bits) against float64 exp on a grid of
[-87, 80]: prints the coefficients, the maximum and the mean relative error.

    /opt/distil-venv/bin/python Benchmarks/bench-kl/fit_exp.py [degree]   # numpy only; degree 6 (FastExp's)
"""
import sys

import numpy as np

deg = int(sys.argv[1]) if len(sys.argv) > 1 else 6
h = np.log(2) / 2
x = np.cos(np.linspace(0, np.pi, 4001)) * h
f = np.exp(x)
A = np.stack([x ** k for k in range(2, deg + 1)], 1)
b = f - 1 - x
w = np.ones_like(x)
for _ in range(300):
    W = w / f
    c, *_ = np.linalg.lstsq(A * W[:, None], b * W, rcond=None)
    e = np.abs((A @ c - b) / f)
    w = w * e
    w /= w.sum()
cf = [np.float32(v) for v in c]
print("degree", deg, "fit max relative error (float64)", e.max())
print("coefficients c2.. (float32):", [repr(float(v)) for v in cf])

xs = np.linspace(-87, 80, 2_000_001).astype(np.float32)
log2e, magic = np.float32(1.44269504088896341), np.float32(12582912.0)
t = (xs * log2e).astype(np.float32) + magic
n = t - magic
r = (xs - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
q = cf[-1]
for cc in reversed(cf[:-1]):
    q = q * r + cc
y = (q * r) * r + r + np.float32(1)
scale = (((t.view(np.int32) - 0x4B400000) + 127) << 23).view(np.float32)
got = (y * scale).astype(np.float64)
want = np.exp(xs.astype(np.float64))
rel = (got - want) / want
print("float32 kernel on [-87, 80]: max relative error %.3g, mean %.3g" % (np.abs(rel).max(), rel.mean()))

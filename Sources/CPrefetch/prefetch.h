// A software prefetch for the KL kernels (Swift has no prefetch intrinsic). Header only and always
// inlined: the instruction-set modules that use it emit no symbol of it (see KernelBuildTests).
#pragma once
static inline __attribute__((always_inline)) void distil_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

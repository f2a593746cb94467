"""torch's log_softmax + kl_div throughput by batch size (dev-only; needs /opt/distil-venv).

    /opt/distil-venv/bin/python Benchmarks/bench-kl/torch_batches.py 16 128
    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=100000000000 \
        /opt/distil-venv/bin/python Benchmarks/bench-kl/torch_batches.py 128

Random rows of 248,320 (teacher log-probs, student logits), the same three torch calls bench-kl times,
3 s per batch size, G elements/s on torch's default threads. Shows how much of torch's rate at large
batches goes to allocating fresh row-sized tensors (glibc serves >= 32 MB with mmap, whose pages fault
in on every step unless told otherwise).
"""
import sys, time
import torch
import torch.nn.functional as F

vocab = 248320
for rows in [int(a) for a in sys.argv[1:]] or [16, 128]:
    g = torch.Generator().manual_seed(0)
    teacher = torch.log_softmax(torch.randn(rows, vocab, generator=g) * 2, -1)
    student = torch.randn(rows, vocab, generator=g) * 2 + 3

    def step():
        ls = torch.log_softmax(student, dim=-1)
        return F.kl_div(ls, teacher, log_target=True, reduction='none').sum(-1, dtype=torch.float64)

    for _ in range(2):
        step()
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 3:
        step()
        n += rows
    print(f"{rows} rows: {n * vocab / (time.perf_counter() - t0) / 1e9:.3f} G elements/s on {torch.get_num_threads()} threads")

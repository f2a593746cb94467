#!/usr/bin/env python3
"""Dev-only: an independent implementation of docs/FORMATS.md "Prompt sampling" and "Seeds", used to
pin the rows the Swift sampler must draw (Tests/DistilCorpusTests/SamplerTests.swift).

  python3 scripts/dev/sampler_reference.py CORPUS.jsonl BLOCK_HASH BLOCK COUNT MIN MAX
"""
import hashlib, json, struct, sys


class RNG:
    def __init__(self, domain, seed):
        self.key = hashlib.sha256(f"distil/rng/v1\n{domain}\n{seed}".encode()).digest()
        self.counter, self.buf = 0, b""

    def u64(self):
        if not self.buf:
            self.buf = hashlib.sha256(self.key + struct.pack("<Q", self.counter)).digest()
            self.counter += 1
        v, self.buf = struct.unpack("<Q", self.buf[:8])[0], self.buf[8:]
        return v

    def below(self, n):
        limit = 2**64 - 1 - ((2**64 - 1) % n)
        while True:
            v = self.u64()
            if v < limit:
                return v % n


def clean(t, lo, hi):
    kept = [c for c in t if not ((ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 or ord(c) == 0xFFFD)]
    dropped = len(t) - len(kept)
    if dropped * 10 > len(t):
        return None
    if len(kept) > hi:
        cut = hi
        while cut > 0 and not kept[cut].isspace():
            cut -= 1
        kept = kept[:cut or hi]
    while kept and kept[-1].isspace():
        kept.pop()
    return "".join(kept) if len(kept) >= lo else None


def main():
    path, h, block, count, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    rows = [json.loads(l).get("text") for l in open(path, encoding="utf-8") if l.strip()]
    h = h.lower().removeprefix("0x")
    rng, seen, out = RNG("prompts", f"{h}/{block}"), set(), []
    while len(out) < count:
        s = rng.below(1)
        r = rng.below(len(rows))
        if (s, r) in seen:
            continue
        seen.add((s, r))
        if rows[r] is not None and clean(rows[r], lo, hi) is not None:
            out.append(r)
    print(out)


if __name__ == "__main__":
    main()

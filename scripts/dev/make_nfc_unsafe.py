# Dev-only: writes nfc-unsafe.txt, the code points (as hex ranges) whose presence means a text may
# not be in NFC or may change when normalized with a neighbour: canonical combining class != 0,
# NFC_Quick_Check=No (the scalar alone is not NFC), and NFC_Quick_Check=Maybe (the second scalar
# of a canonical composition). TokenizerInternalsTests checks that the tokenizer's NFC quick check
# treats none of them as safe. Python's unicodedata (here Unicode 14) is the independent source.
#
#   /opt/distil-venv/bin/python scripts/dev/make_nfc_unsafe.py      (from the repository root)
import os, sys, unicodedata

unsafe = set()
for v in range(0x110000):
    if 0xD800 <= v < 0xE000:
        continue
    c = chr(v)
    if unicodedata.combining(c) != 0:
        unsafe.add(v)
    if unicodedata.normalize("NFC", c) != c:
        unsafe.add(v)
    d = unicodedata.decomposition(c)
    if d and not d.startswith("<"):
        parts = [int(x, 16) for x in d.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == c:
            unsafe.add(parts[1])
# Hangul: medial vowels and final consonants compose onto a preceding jamo or syllable.
unsafe.update(range(0x1161, 0x1176))
unsafe.update(range(0x11A8, 0x11C3))

ranges, start, prev = [], None, None
for v in sorted(unsafe):
    if start is None:
        start = prev = v
    elif v == prev + 1:
        prev = v
    else:
        ranges.append((start, prev)); start = prev = v
ranges.append((start, prev))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DistilTokenizerTests", "Fixtures", "nfc-unsafe.txt")
with open(out, "w") as f:
    f.write(f"# NFC-unsafe code points from Python {sys.version.split()[0]} unicodedata {unicodedata.unidata_version}; make_nfc_unsafe.py\n")
    for a, b in ranges:
        f.write(f"{a:04X}..{b:04X}\n" if a != b else f"{a:04X}\n")
print(len(unsafe), "code points in", len(ranges), "ranges ->", out)

#!/usr/bin/env python3
"""Parquet conformance fixtures for DistilCorpus (dev-only; CI never runs this).

Run from the repository root:
    /opt/distil-venv/bin/python scripts/dev/make_parquet_fixtures.py [--crc-only]
It (re)writes Tests/DistilCorpusTests/Fixtures/parquet/: small shards written by pyarrow covering
every codec the reader accepts (none, snappy, zstd), data pages v1 and v2, dictionary on and off,
dictionary fallback to PLAIN inside a chunk, small pages, many row groups, nulls, empty and
~100 KB texts, multi-byte UTF-8, INT32/INT64/DOUBLE columns; refusal cases (gzip, lz4, brotli,
DELTA_BYTE_ARRAY, nested columns); and damaged files (lying sizes and offsets, made by
re-encoding the Thrift footer or a page header with a small compact-protocol codec below).
For each readable shard NAME.parquet it writes NAME.expected.jsonl.zst: one JSON object per row
holding every column's value as pyarrow reads it (sorted keys, ensure_ascii=False).

The benchmark's large FineWeb-shaped shard is made by the same script:
    /opt/distil-venv/bin/python scripts/dev/make_parquet_fixtures.py --bench-shard /tmp/distil-bench/fineweb-like-300mb.parquet --mb 300
and the 2 GB-shaped shard for the sampling measurement (20 distinct row groups, repeated):
    /opt/distil-venv/bin/python scripts/dev/make_parquet_fixtures.py --bench-shard /tmp/distil-bench/fineweb-like-2000mb.parquet --mb 2000 --cycle 20
(bench-parquet runs these itself when the files are missing.)
"""
import argparse
import glob
import io
import json
import os
import random
import struct
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "DistilCorpusTests", "Fixtures", "parquet")

# ----------------------------------------------------------------------------------------------
# Text: a word-level Markov chain over real English prose on every Debian machine (the license
# texts), sprinkled with multi-byte scripts, so compression ratios look like FineWeb's.

def training_words():
    words = []
    for p in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                words += f.read().split()
    return words


class TextMaker:
    EXTRA = ["中文文本", "日本語の文章", "한국어", "😀", "👍🏽", "👨‍👩‍👧", "e\u0301", "n\u0303o", "Ελληνικά", "русский",
             "العربية", "עברית", "हिन्दी", "ไทย", "Ṱ̺̺̕o͞", "\u2028", "\u00a0", "ﬁ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\t"]

    def __init__(self, seed):
        self.rng = random.Random(seed)
        w = training_words()
        self.words = w
        self.next = {}
        for a, b, c in zip(w, w[1:], w[2:]):
            self.next.setdefault((a, b), []).append(c)
        self.keys = list(self.next.keys())

    def text(self, chars, multibyte=0.02):
        rng = self.rng
        a, b = rng.choice(self.keys)
        out, n = [a, b], len(a) + len(b) + 1
        while n < chars:
            cands = self.next.get((a, b))
            c = rng.choice(cands) if cands and rng.random() > 0.05 else rng.choice(self.words)
            if rng.random() < multibyte:
                c = rng.choice(self.EXTRA)
            out.append(c)
            n += len(c) + 1
            a, b = b, c
            if rng.random() < 0.02:
                out.append("\n\n")
        return " ".join(out)[:chars]


# ----------------------------------------------------------------------------------------------
# Thrift compact protocol, just enough to decode a struct to a generic tree and encode it back
# byte for byte (used to make files whose footer or page headers lie).

class TReader:
    def __init__(self, b, pos=0):
        self.b, self.pos = b, pos

    def byte(self):
        v = self.b[self.pos]; self.pos += 1; return v

    def varint(self):
        v = shift = 0
        while True:
            x = self.byte(); v |= (x & 0x7F) << shift
            if not x & 0x80: return v
            shift += 7

    def zz(self):
        u = self.varint(); return (u >> 1) ^ -(u & 1)

    def value(self, t):
        if t in (1, 2): return t == 1
        if t == 3: return struct.unpack("b", bytes([self.byte()]))[0]
        if t in (4, 5, 6): return self.zz()
        if t == 7: v = self.b[self.pos:self.pos + 8]; self.pos += 8; return v
        if t == 8: n = self.varint(); v = self.b[self.pos:self.pos + n]; self.pos += n; return v
        if t in (9, 10):
            h = self.byte(); n = h >> 4; et = h & 15
            if n == 15: n = self.varint()
            items = [(self.byte() == 1) if et in (1, 2) else self.value(et) for _ in range(n)]
            return (et, items)
        if t == 11:
            n = self.varint()
            if n == 0: return (0, 0, [])
            kv = self.byte(); kt, vt = kv >> 4, kv & 15
            return (kt, vt, [(self.value(kt), self.value(vt)) for _ in range(n)])
        if t == 12: return self.struct()
        raise ValueError("type %d" % t)

    def struct(self):
        fields, last = [], 0
        while True:
            h = self.byte()
            if h == 0: return fields
            t, d = h & 15, h >> 4
            fid = last + d if d else self.zz()
            last = fid
            fields.append([fid, t, self.value(t)])


class TWriter:
    def __init__(self): self.out = bytearray()

    def varint(self, v):
        while True:
            if v < 0x80: self.out.append(v); return
            self.out.append((v & 0x7F) | 0x80); v >>= 7

    def zz(self, v): self.varint((v << 1) ^ (v >> 63))

    def value(self, t, v):
        if t in (1, 2): return
        if t == 3: self.out += struct.pack("b", v)
        elif t in (4, 5, 6): self.zz(v)
        elif t == 7: self.out += v
        elif t == 8: self.varint(len(v)); self.out += v
        elif t in (9, 10):
            et, items = v
            if len(items) < 15: self.out.append(len(items) << 4 | et)
            else: self.out.append(0xF0 | et); self.varint(len(items))
            for x in items:
                if et in (1, 2): self.out.append(1 if x else 2)
                else: self.value(et, x)
        elif t == 11:
            kt, vt, items = v
            self.varint(len(items))
            if items:
                self.out.append(kt << 4 | vt)
                for k, x in items: self.value(kt, k); self.value(vt, x)
        elif t == 12: self.struct(v)

    def struct(self, fields):
        last = 0
        for fid, t, v in fields:
            wt = (1 if v else 2) if t in (1, 2) else t
            if 0 < fid - last <= 15: self.out.append((fid - last) << 4 | wt)
            else: self.out.append(wt); self.zz(fid)
            last = fid
            self.value(t, v)
        self.out.append(0)


def field(fields, fid):
    for f in fields:
        if f[0] == fid: return f
    raise KeyError(fid)


def read_footer(data):
    n = struct.unpack("<I", data[-8:-4])[0]
    start = len(data) - 8 - n
    r = TReader(data, start)
    meta = r.struct()
    assert r.pos == len(data) - 8
    w = TWriter(); w.struct(meta)
    assert bytes(w.out) == data[start:-8], "thrift codec does not round-trip"
    return meta, start


def with_footer(data, meta, start):
    w = TWriter(); w.struct(meta)
    return data[:start] + bytes(w.out) + struct.pack("<I", len(w.out)) + b"PAR1"


def column_meta(meta, rg=0, col=0):
    groups = field(meta, 4)[2][1]
    chunk = field(groups[rg], 1)[2][1][col]
    return field(chunk, 3)[2]


# ----------------------------------------------------------------------------------------------

def write_expected(path, table):
    rows = table.to_pylist()
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    z = subprocess.run(["zstd", "-19", "-q", "-c"], input=body, stdout=subprocess.PIPE, check=True).stdout
    with open(path, "wb") as f: f.write(z)


def texts(tm, n, lo, hi, nulls=0.0, empties=0.0, multibyte=0.02):
    out = []
    for _ in range(n):
        r = tm.rng.random()
        if r < nulls: out.append(None)
        elif r < nulls + empties: out.append("")
        else: out.append(tm.text(tm.rng.randint(lo, hi), multibyte))
    return out


def fineweb_table(tm, n, lo=200, hi=1500, nulls=0.0):
    rng = tm.rng
    t = texts(tm, n, lo, hi, nulls=nulls, empties=0.02)
    return pa.table({
        "text": pa.array(t, pa.string()),
        "id": pa.array(["<urn:uuid:%08x-%04x>" % (rng.getrandbits(32), i) for i in range(n)], pa.string()),
        "dump": pa.array([rng.choice(["CC-MAIN-2013-20", "CC-MAIN-2024-10"]) for _ in range(n)], pa.string()),
        "url": pa.array(["https://example%d.com/page/%d" % (rng.randint(0, 50), i) for i in range(n)], pa.string()),
        "date": pa.array(["2013-05-%02dT%02d:00:00Z" % (rng.randint(1, 28), rng.randint(0, 23)) for _ in range(n)], pa.string()),
        "file_path": pa.array(["s3://commoncrawl/crawl-data/seg-%d.warc.gz" % rng.randint(0, 9) for _ in range(n)], pa.string()),
        "language": pa.array(["en"] * n, pa.string()),
        "language_score": pa.array([rng.random() for _ in range(n)], pa.float64()),
        "token_count": pa.array([None if x is None else len(x) // 4 for x in t], pa.int64()),
    })


def write(name, table, expected=True, **kw):
    path = os.path.join(OUT, name + ".parquet")
    pq.write_table(table, path, **kw)
    if expected:
        write_expected(os.path.join(OUT, name + ".expected.jsonl.zst"), pq.read_table(path))
    return path


def encodings_of(path, col=0):
    md = pq.ParquetFile(path).metadata
    return [set(md.row_group(g).column(col).encodings) for g in range(md.num_row_groups)]


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*")): os.remove(f)
    tm = TextMaker(7)
    rng = tm.rng

    # 1. Uncompressed, v1, no dictionary, nulls, INT32 and INT64 columns, several row groups.
    n = 120
    t = texts(tm, n, 0, 400, nulls=0.1, empties=0.05, multibyte=0.1)
    basic = pa.table({"text": pa.array(t, pa.string()),
                      "n32": pa.array([None if i % 7 == 0 else rng.randint(-2**31, 2**31 - 1) for i in range(n)], pa.int32()),
                      "n64": pa.array([rng.randint(-2**63, 2**63 - 1) for i in range(n)], pa.int64()),
                      "score": pa.array([rng.random() * 100 for _ in range(n)], pa.float64())})
    write("none_v1_plain", basic, compression="none", use_dictionary=False, data_page_version="1.0", row_group_size=40)
    write("none_v2_plain", basic, compression="none", use_dictionary=False, data_page_version="2.0", row_group_size=50)

    # 2. Dictionary encoded (few distinct texts) with each codec and page version.
    pool = texts(tm, 12, 50, 300, multibyte=0.1) + [""]
    t = [None if rng.random() < 0.1 else rng.choice(pool) for _ in range(300)]
    dict_table = pa.table({"text": pa.array(t, pa.string()), "k": pa.array([rng.randint(0, 5) for _ in range(300)], pa.int64())})
    for codec in ("none", "snappy", "zstd"):
        for v in ("1.0", "2.0"):
            p = write("%s_v%s_dict" % (codec, v[0]), dict_table, compression=codec, use_dictionary=True, data_page_version=v, row_group_size=128)
            assert all(e & {"RLE_DICTIONARY", "PLAIN_DICTIONARY"} for e in encodings_of(p)), encodings_of(p)

    # 3. No dictionary with small pages (many pages per chunk), snappy and zstd, v1 and v2.
    t = texts(tm, 200, 0, 600, nulls=0.08, empties=0.05)
    small = pa.table({"text": pa.array(t, pa.string())})
    for codec in ("snappy", "zstd"):
        for v in ("1.0", "2.0"):
            write("%s_v%s_smallpages" % (codec, v[0]), small, compression=codec, use_dictionary=False, data_page_version=v,
                  data_page_size=512, write_batch_size=4, row_group_size=100)

    # 4. Dictionary fallback: a tiny dictionary page limit makes the writer switch to PLAIN mid-chunk.
    t = [rng.choice(pool) if rng.random() < 0.5 else tm.text(rng.randint(20, 200)) for _ in range(400)]
    t = [None if rng.random() < 0.05 else x for x in t]
    fb = pa.table({"text": pa.array(t, pa.string())})
    for codec, v in (("snappy", "1.0"), ("zstd", "2.0"), ("none", "1.0")):
        p = write("%s_v%s_fallback" % (codec, v[0]), fb, compression=codec, use_dictionary=True, data_page_version=v,
                  dictionary_pagesize_limit=2048, data_page_size=1024, write_batch_size=8, row_group_size=400)
        e = encodings_of(p)[0]
        assert "PLAIN" in e and (e & {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}), e

    # 5. Many row groups (also the range-read test's shard): 32 groups of 20 rows; no statistics,
    #    so the footer is small next to the data, as in a real 2 GB shard.
    write("zstd_v1_manygroups", fineweb_table(tm, 640, 300, 900), compression="zstd", row_group_size=20, write_statistics=False)

    # 6. Long (~100 KB), empty and null texts, multi-byte heavy.
    t = [tm.text(100_000, multibyte=0.05), "", None, tm.text(99_000, multibyte=0.3), "x", None, "", "中" * 30_000, "😀e\u0301" * 5000]
    long_t = pa.table({"text": pa.array(t, pa.string())})
    write("snappy_v2_long", long_t, compression="snappy", use_dictionary=False, data_page_version="2.0", row_group_size=4)
    write("zstd_v1_long", long_t, compression="zstd", use_dictionary=True, data_page_version="1.0")

    # 7. The FineWeb schema (text, id, dump, url, date, file_path, language, language_score, token_count).
    write("snappy_v1_fineweb", fineweb_table(tm, 100, 100, 800, nulls=0.02), compression="snappy", row_group_size=30)

    # 8. REQUIRED (non-nullable) text; all-null column; an empty table.
    req = pa.table({"text": pa.array(texts(tm, 60, 0, 300), pa.string())},
                   schema=pa.schema([pa.field("text", pa.string(), nullable=False)]))
    write("snappy_v1_required", req, compression="snappy", row_group_size=25)
    write("snappy_v2_required", req, compression="snappy", data_page_version="2.0", row_group_size=25)
    write("zstd_v1_allnull", pa.table({"text": pa.array([None] * 50, pa.string())}), compression="zstd")
    write("snappy_v1_empty", pa.table({"text": pa.array([], pa.string())}), compression="snappy")

    # 9. Nested columns beside a flat text column.
    nested = pa.table({"text": pa.array(["a", "b", None], pa.string()),
                       "tags": pa.array([["x"], [], None], pa.list_(pa.string())),
                       "meta": pa.array([{"a": 1}, {"a": 2}, None], pa.struct([("a", pa.int64())]))})
    write("snappy_v1_nested", nested, compression="snappy")

    # 10. Refused codecs and encodings (tiny).
    tiny = pa.table({"text": pa.array(["hello", "world", None], pa.string())})
    for codec in ("gzip", "lz4", "brotli"):
        write("refuse_" + codec, tiny, expected=False, compression=codec)
    write("refuse_delta", tiny, expected=False, compression="none", use_dictionary=False, column_encoding={"text": "DELTA_BYTE_ARRAY"})

    # 11. Damaged files made from a valid one by re-encoding its footer or a page header.
    base = open(write("snappy_v1_damagebase", fineweb_table(tm, 40, 50, 300), compression="snappy", row_group_size=10), "rb").read()
    meta, start = read_footer(base)

    def damaged(name, edit):
        m, _ = read_footer(base)
        edit(m)
        with open(os.path.join(OUT, name + ".parquet"), "wb") as f: f.write(with_footer(base, m, start))

    def set_field(fid, value):
        def edit(m):
            field(column_meta(m, 1, 0), fid)[2] = value
        return edit
    size = len(base)
    damaged("bad_offset_past_end", set_field(9, size + 1000))          # data_page_offset beyond the file
    damaged("bad_chunk_length", set_field(7, size * 4))                 # total_compressed_size past the footer
    damaged("bad_offset_negative", set_field(9, -5))
    damaged("bad_offset_into_footer", set_field(9, start - 10))
    def rows_lie(m): field(field(m, 4)[2][1][0], 3)[2] += 1             # row group 0 num_rows + 1
    damaged("bad_rowgroup_rows", rows_lie)
    def total_lie(m): field(m, 3)[2] += 5                               # FileMetaData.num_rows
    damaged("bad_total_rows", total_lie)
    def both_lie(m): rows_lie(m); total_lie(m); field(m, 3)[2] -= 4      # row group 0 and the total agree on one row too many
    damaged("bad_rows_both", both_lie)
    def codec_lie(m): field(column_meta(m, 0, 0), 4)[2] = 2             # claims GZIP
    damaged("bad_codec_gzip", codec_lie)
    def schema_lie(m): field(field(m, 2)[2][1][0], 5)[2] = 50           # root claims 50 children
    damaged("bad_schema_children", schema_lie)

    # A page whose header declares a different uncompressed size (same varint length, so
    # nothing else moves): snappy, zstd and uncompressed variants.
    for codec, name, delta in (("snappy", "bad_page_size_snappy", -2), ("zstd", "bad_page_size_zstd", -2),
                               ("zstd", "bad_page_size_zstd_larger", 2), ("none", "bad_page_size_none", -2)):
        p = os.path.join(OUT, name + ".parquet")
        pq.write_table(fineweb_table(tm, 30, 50, 300), p, compression=codec, use_dictionary=False, row_group_size=30)
        data = bytearray(open(p, "rb").read())
        m, _ = read_footer(bytes(data))
        off = field(column_meta(m, 0, 0), 9)[2]
        r = TReader(bytes(data), off)
        hdr = r.struct()
        old = len(bytes(data[off:r.pos]))
        f2 = field(hdr, 2)
        f2[2] += delta
        w = TWriter(); w.struct(hdr)
        assert len(w.out) == old, "varint length changed"
        data[off:r.pos] = w.out
        open(p, "wb").write(bytes(data))

    make_crc_fixtures()

    total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(OUT, "*")))
    print("fixtures: %d files, %d bytes in %s" % (len(os.listdir(OUT)), total, os.path.normpath(OUT)))
    assert total < 2_000_000


def make_crc_fixtures():
    """Page checksums (PageHeader.crc, pyarrow's write_page_checksum): shards that carry them and
    must read, and copies with one stored byte changed inside a page, uncompressed so that nothing
    but the checksum can tell. pyarrow itself refuses the damaged ones when asked to verify
    (page_checksum_verification=True), and reads them silently wrong when not: asserted here."""
    tm = TextMaker(15)
    t = texts(tm, 60, 20, 300, nulls=0.05)
    table = pa.table({"text": pa.array(t, pa.string())})
    kw = dict(write_page_checksum=True, row_group_size=30)
    write("none_v1_crc", table, compression="none", use_dictionary=False, data_page_version="1.0", **kw)
    write("snappy_v2_crc", table, compression="snappy", use_dictionary=False, data_page_version="2.0", **kw)
    pool = texts(tm, 6, 20, 100)
    dict_table = pa.table({"text": pa.array([tm.rng.choice(pool) for _ in range(60)], pa.string())})
    write("none_v1_dict_crc", dict_table, compression="none", use_dictionary=True, data_page_version="1.0", **kw)

    def damage(src, name, page_field):
        data = bytearray(open(os.path.join(OUT, src + ".parquet"), "rb").read())
        m, _ = read_footer(bytes(data))
        off = field(column_meta(m, 0, 0), page_field)[2]
        r = TReader(bytes(data), off)
        hdr = r.struct()
        assert field(hdr, 4)[2] is not None, "no crc in the page header"
        body, size = r.pos, field(hdr, 3)[2]
        k = body + size - 3                        # a byte of the last value's text
        data[k] = data[k] ^ 0x01 if 0x20 < (data[k] ^ 0x01) < 0x7F else data[k] ^ 0x02
        path = os.path.join(OUT, name + ".parquet")
        open(path, "wb").write(bytes(data))
        pq.read_table(path)                        # reads, wrong, without verification
        try:
            pq.read_table(path, page_checksum_verification=True)
        except OSError as e:
            print("pyarrow refuses %s: %s" % (name, e))
        else:
            raise AssertionError("pyarrow accepted " + name)
    damage("none_v1_crc", "bad_page_crc_data", 9)          # data_page_offset
    damage("none_v1_dict_crc", "bad_page_crc_dict", 11)    # dictionary_page_offset
    for good in ("none_v1_crc", "snappy_v2_crc", "none_v1_dict_crc"):
        pq.read_table(os.path.join(OUT, good + ".parquet"), page_checksum_verification=True)


def make_bench_shard(path, mb, rows_per_group, cycle):
    """A FineWeb-shaped shard of about `mb` MB: snappy, FineWeb's schema, `rows_per_group` rows
    per row group. With `cycle` > 0 only that many distinct row groups are generated and then
    written over and over (a quick way to a 2 GB-shaped file: same page sizes, same footer shape)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tm = TextMaker(2024)
    schema = fineweb_table(tm, 1).schema
    tmp = path + ".tmp"
    w = pq.ParquetWriter(tmp, schema, compression="snappy")
    written, groups, made = 0, 0, []
    while True:
        if cycle and len(made) == cycle:
            t = made[groups % cycle]
        else:
            # FineWeb's documents: mostly 300...6000 characters.
            t = fineweb_table(tm, rows_per_group, 300, 6000)
            if cycle: made.append(t)
        w.write_table(t, row_group_size=rows_per_group)
        written += rows_per_group
        groups += 1
        if os.path.getsize(tmp) >= mb * 1_000_000:
            break
    w.close()
    os.replace(tmp, path)
    print("bench shard: %s, %d rows in %d row groups, %d bytes" % (path, written, groups, os.path.getsize(path)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-shard")
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--rows-per-group", type=int, default=2000)
    ap.add_argument("--cycle", type=int, default=0, help="generate only this many distinct row groups, then repeat them")
    ap.add_argument("--crc-only", action="store_true", help="(re)write only the page-checksum fixtures")
    a = ap.parse_args()
    if a.crc_only:
        make_crc_fixtures()
    elif a.bench_shard:
        make_bench_shard(a.bench_shard, a.mb, a.rows_per_group, a.cycle)
    else:
        make_fixtures()

"""Convert the raw data sets (default ../shared/data beside the repo) into the files shipped in
src/unrolled/datasets/. Usage: python scripts/convert_datasets.py [RAW_DATA_DIR]
"""
import csv, gzip, io, shutil
import numpy as np

import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data")
DST = os.path.join(HERE, "..", "src", "unrolled", "datasets")

shutil.copyfile(f"{SRC}/sunspots_yearly.csv", f"{DST}/sunspots_yearly.csv")
shutil.copyfile(f"{SRC}/kjv_verses.tsv.gz", f"{DST}/kjv_verses.tsv.gz")
shutil.copyfile(f"{SRC}/spoken_digits_mfcc.npz", f"{DST}/spoken_digits_mfcc.npz")

# Monthly sunspots: the fixed-width table (a row a year, 12 months) one month a line,
# values copied verbatim as text, 1749-2008 (the preliminary months of 2009 left out).
with open(f"{SRC}/sunspots_monthly.dat", encoding="ascii") as f:
    months = [f"{c[0]}-{m:02d},{v}" for c in (line.split() for line in f)
              if len(c) == 13 and c[0].isdigit() and 1749 <= int(c[0]) <= 2008
              for m, v in enumerate(c[1:], start=1)]
with open(f"{DST}/sunspots_monthly.csv", "w", encoding="ascii") as f:
    f.write("MONTH,SUNSPOTS\n" + "\n".join(months) + "\n")

# Stocks: keep Ticker, Date, Close, Adj Close, values copied verbatim as text.
with open(f"{SRC}/stocks_daily.csv", newline="") as f:
    rows = list(csv.reader(f))
hdr = rows[0]
ix = [hdr.index(c) for c in ("Ticker", "Date", "Close", "Adj Close")]
buf = io.StringIO()
w = csv.writer(buf, lineterminator="\n")
for r in rows:
    w.writerow([r[i] for i in ix])
with open(f"{DST}/stocks_daily.csv.gz", "wb") as raw:
    # mtime=0 and no file name: the output is byte-reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(buf.getvalue().encode("ascii"))

# Japanese vowels: .ts text -> one compressed .npz.
def parse_ts(path):
    frames, lengths, labels = [], [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#@":
                continue
            *dims, label = line.split(":")
            cols = [np.array([float(v) for v in d.split(",")]) for d in dims]
            x = np.stack(cols, axis=1)  # (T_i, 12)
            frames.append(x); lengths.append(len(x)); labels.append(int(label) - 1)
    return np.concatenate(frames), np.array(lengths, np.int64), np.array(labels, np.int64)

out = {}
for part in ("train", "test"):
    X, L, y = parse_ts(f"{SRC}/japanese_vowels/JapaneseVowels_{part.upper()}.ts")
    print(part, X.shape, L.shape, L.min(), L.max(), np.bincount(y))
    out[f"X_{part}"], out[f"lengths_{part}"], out[f"y_{part}"] = X, L, y
np.savez_compressed(f"{DST}/japanese_vowels.npz", **out)

"""``python -m isu.sample_data OUT_DIR``: write the demo exports and manifest into OUT_DIR.

``--benchmark ROWS`` writes one large ``generic_sv`` file instead and prints how fast, with the
time to copy the same bytes as the baseline (the disk's floor) measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from . import DEFAULT_SEED, generate, write_benchmark_csv

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m isu.sample_data", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--benchmark", type=int, metavar="ROWS", help="write benchmark_<ROWS>.csv of ROWS rows instead")
    ap.add_argument("--encoding", default="cp1252", help="benchmark file encoding (default cp1252)")
    ap.add_argument("--pseudonymised", action="store_true", help="benchmark file with pseudonyms, not person ids")
    args = ap.parse_args(argv)
    if args.benchmark is None:
        for path in generate(args.out_dir, seed=args.seed):
            print(path)
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"benchmark_{args.benchmark}.csv"
    wall, cpu = time.perf_counter(), time.process_time()
    made = write_benchmark_csv(path, args.benchmark, seed=args.seed, encoding=args.encoding,
                               pseudonymised=args.pseudonymised)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    copy = time.perf_counter()
    shutil.copyfile(path, path.with_suffix(".copy"))
    copy = time.perf_counter() - copy
    path.with_suffix(".copy").unlink()
    mb = made.bytes / 1e6
    print(f"{path}: {made.rows:,} rows, {mb:,.1f} MB, rows to reject {made.rejected}")
    print(f"generate+write: {wall:.2f} s wall, {cpu:.2f} s CPU (all threads), {made.rows / wall:,.0f} rows/s, {mb / wall:,.0f} MB/s")
    print(f"baseline copy of the same bytes: {copy:.2f} s; ratio {wall / max(copy, 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

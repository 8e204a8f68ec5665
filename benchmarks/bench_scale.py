"""Time and peak memory vs data size: loading, one pre-training epoch, one fine-tuning epoch, full ranking.

For each number of users (default 10k and 100k; add 1M with --users 10000,100000,1000000) a synthetic
data set with --items items (default 100k for every size) and ~--avg-len interactions per user is
written as Parquet (`s3rec data synth`), then, in a fresh process per size:
  load      load_data of the Parquet tables (min_count 1: at 10k users most items have < 5 interactions)
            + the leave-one-out split
  pretrain  one S3-Rec pre-training epoch (d=64, batch 100, 4 micro-batches, all four objectives) with
            the authors' every-prefix samples, or one random prefix per user with --random-prefix-from
            (default 1M users and up); timed on at most --max-batches batches and extrapolated to the
            epoch (the CSV says how many batches ran)
  finetune  one SASRec fine-tuning epoch (BCE, batch 256) through s3rec.training.finetune, without
            the per-epoch validation
  evaluate  full ranking of every user's test item against all items (s3rec.evaluation.full_ranking)
Peak memory is the process's peak resident set size during the stage (VmHWM, reset before each
stage), so it includes the data already loaded. Writes bench_scale.csv and bench_scale.png.

    OMP_NUM_THREADS=1 S3REC_BENCH_OUT=benchmarks/results .venv/bin/python benchmarks/bench_scale.py --users 10000,100000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_mb, reset_peak  # benchmarks/, the script's own folder

STAGES = ("load", "pretrain", "finetune", "evaluate")
FIELDS = ["users", "items", "interactions", "stage", "seconds", "peak_rss_mb", "batches_timed", "batches_epoch",
          "samples", "threads", "load_avg", "note"]


def child(n_users: int, args: argparse.Namespace, data_path: Path) -> list[dict]:
    """Run every stage for one data size in this process; returns the CSV rows."""
    import torch

    from s3rec.data.loading import DataConfig, load_data
    from s3rec.data.splits import LeaveOneOut
    from s3rec.evaluation.ranking import full_ranking
    from s3rec.models.encoder import EncoderConfig
    from s3rec.models.s3rec import S3RecPretrainer
    from s3rec.models.sasrec import SASRec
    from s3rec.training.batches import TrainingSequences, batch_order, micro_batches, pretrain_batch
    from s3rec.training.finetune import FinetuneConfig, finetune
    from s3rec.training.optim import adam

    rows: list[dict] = []
    threads = torch.get_num_threads()

    def row(stage: str, seconds: float, **extra) -> None:
        rows.append({"users": n_users, "items": args.items, "stage": stage, "seconds": round(seconds, 3),
                     "peak_rss_mb": round(peak_mb(), 1), "threads": threads,
                     "load_avg": round(os.getloadavg()[0], 1), **extra})  # other work on the machine skews times
        print(f"  {n_users:>9,} users  {stage:<9} {seconds:9.1f} s  peak RSS {rows[-1]['peak_rss_mb']:8.0f} MB  "
              f"load {rows[-1]['load_avg']}  {extra.get('note', '')}", file=sys.stderr, flush=True)

    reset_peak()
    t0 = time.perf_counter()
    side = data_path.with_name(f"{data_path.stem}_items{data_path.suffix}")
    data = load_data(DataConfig(path=str(data_path), item_table=str(side), min_count=1), progress=False)
    split = LeaveOneOut.from_data(data)
    row("load", time.perf_counter() - t0, note="Parquet tables, min_count 1")
    n_inter = len(data.items)
    for r in rows:
        r["interactions"] = n_inter
    enc = EncoderConfig()

    # one pre-training epoch: the inner loop of s3rec.training.pretrain, bounded to --max-batches
    reset_peak()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                            torch.from_numpy(data.attr_values), enc)
    opt = adam(model.parameters(), 1e-3)
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    random_prefix = n_users >= args.random_prefix_from
    user, start, end = seqs.random_prefix_samples(enc.max_len, gen) if random_prefix else seqs.prefix_samples(enc.max_len)
    batches = batch_order(end - start, 100, gen, bucket=False)
    setup = time.perf_counter() - t0
    model.train()
    t1 = time.perf_counter()
    timed = batches[: args.max_batches]
    for idx in timed:
        batch = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, gen)
        opt.zero_grad(set_to_none=True)
        for part in micro_batches(batch, 4):
            (model(part)["loss"] * (len(part["items"]) / 100)).backward()
        opt.step()
    seconds = setup + (time.perf_counter() - t1) * len(batches) / len(timed)
    how = "random-prefix" if random_prefix else "every prefix"
    row("pretrain", seconds, interactions=n_inter, batches_timed=len(timed), batches_epoch=len(batches), samples=len(user),
        note=f"{how}; " + ("whole epoch" if len(timed) == len(batches) else f"extrapolated from {len(timed)} batches"))
    del model, opt, batch

    # one fine-tuning epoch through the real loop; validation is timed separately below
    reset_peak()
    torch.manual_seed(0)
    sasrec = SASRec(data.n_items, enc)
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune(sasrec, split, FinetuneConfig(epochs=1), enc.max_len, 0, lambda m: {"NDCG@10": 0.0}, tmp,
                          progress=False, log=lambda *a, **k: None)
    n_batches = -(-data.n_users // 256)
    row("finetune", result.seconds_train, interactions=n_inter, batches_timed=n_batches, batches_epoch=n_batches,
        samples=data.n_users, note="BCE, batch 256, whole epoch")

    reset_peak()
    t0 = time.perf_counter()
    res = full_ranking(sasrec.eval().score_all, split, "test", enc.max_len)
    row("evaluate", time.perf_counter() - t0, interactions=n_inter, samples=data.n_users,
        note=f"full ranking of all users x {data.n_items:,} items; NDCG@10 {res.metrics['NDCG@10']:.4f}")
    return rows


def write_outputs(rows: list[dict], out: Path) -> None:
    """bench_scale.csv and bench_scale.png (time and peak memory vs interactions, one line per stage)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from s3rec.io import atomic_path

    with atomic_path(out / "bench_scale.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(sorted(rows, key=lambda r: (int(r["users"]), STAGES.index(r["stage"]))))
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    def series(r: dict) -> str:  # an every-prefix and a random-prefix epoch are different amounts of work
        return r["stage"] + (" (random prefix)" if r["note"].startswith("random-prefix") else "")

    for name in sorted({series(r) for r in rows}, key=lambda n: (STAGES.index(n.split()[0]), n)):
        pts = sorted((int(r["interactions"]), float(r["seconds"]), float(r["peak_rss_mb"])) for r in rows if series(r) == name)
        x, t, m = zip(*pts)
        ax_t.plot(x, t, "o-" if len(pts) > 1 else "s", label=name)
        ax_m.plot(x, m, "o-" if len(pts) > 1 else "s", label=name)
    for ax, label in ((ax_t, "seconds (one epoch / one pass)"), (ax_m, "peak RSS during the stage (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("interactions")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    threads = sorted({str(r["threads"]) for r in rows})  # rows read back from the CSV (--append) hold strings
    fig.suptitle(f"s3rec at scale: synthetic data, {int(rows[0]['items']):,} items, d=64, CPU threads {','.join(threads)}")
    fig.tight_layout()
    with atomic_path(out / "bench_scale.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="10000,100000", help="comma-separated numbers of users (default 10000,100000)")
    p.add_argument("--items", type=int, default=100_000, help="items for every size (default 100000)")
    p.add_argument("--avg-len", type=float, default=20.0, help="mean interactions per user (default 20)")
    p.add_argument("--attributes", type=int, default=1000, help="attributes (default 1000)")
    p.add_argument("--max-batches", type=int, default=300, help="pre-training batches timed per size (default 300)")
    p.add_argument("--random-prefix-from", type=int, default=1_000_000,
                   help="pre-train on one random prefix per user from this many users on (default 1000000)")
    p.add_argument("--out", default=os.environ.get("S3REC_BENCH_OUT", "benchmarks/results"), help="output folder")
    p.add_argument("--data-dir", default=None, help="where the synthetic Parquet files go (default a temporary folder)")
    p.add_argument("--append", action="store_true", help="keep the rows of other sizes already in OUT/bench_scale.csv")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args, Path(args.data))))
        return

    out = Path(args.out)
    sizes = [int(x) for x in args.users.split(",") if x.strip()]
    rows: list[dict] = []
    if args.append and (out / "bench_scale.csv").is_file():
        with open(out / "bench_scale.csv") as f:
            rows = [r for r in csv.DictReader(f) if int(r["users"]) not in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(args.data_dir or tmp)
        for n in sizes:
            path = data_dir / f"synth-{n}u-{args.items}i.parquet"
            if not path.is_file():
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "s3rec", "data", "synth", "--users", str(n), "--items", str(args.items),
                                "--avg-len", str(args.avg_len), "--attributes", str(args.attributes), "--seed", "1",
                                "--out", str(path), "--quiet"], check=True)
                print(f"synthetic data, {n:,} users: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            cmd = [sys.executable, __file__, "--child", str(n), "--data", str(path), "--items", str(args.items),
                   "--max-batches", str(args.max_batches), "--random-prefix-from", str(args.random_prefix_from)]
            done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
            rows += json.loads(done.stdout.strip().splitlines()[-1])
            write_outputs(rows, out)  # after every size, so a long run keeps what it has
    print(f"wrote {out / 'bench_scale.csv'} and {out / 'bench_scale.png'}")


if __name__ == "__main__":
    main()

"""s3rec against RecBole 1.2.1's S3Rec, in one run: seconds per pre-training epoch, per fine-tuning epoch,
per full-ranking evaluation of all users, peak memory, and achieved FLOP rates vs this machine's matmul rate.

s3rec: one whole epoch of `s3rec.training.pretrain` (every prefix, batch 100), one epoch of
`s3rec.training.finetune` from those weights (BCE, one row per user, batch 256, without validation),
and `full_ranking` of every user's test item. RecBole: its own Trainer on the first --batches batches
of each epoch (extrapolated by its batch count; its epochs are long), then Trainer.evaluate on the test
set; pre-training is timed with PyTorch's anomaly detection off (fair) and on (as shipped: importing
RecBole's models switches it on). RecBole runs in its own virtual environment, made here on first use
(benchmarks/.venv-recbole: RecBole 1.2.1 with numpy 1.26.4, pandas 2.2.3, setuptools 80.9.0 and the
same torch 2.13.0 CPU wheel); its data are atomic files written by s3rec.data.writers from s3rec's loader.

Protocols differ (see docs/speed.md): RecBole fine-tunes on every prefix with cross-entropy over all
items (many more samples per epoch) and does not exclude seen items in full ranking, so ratios are
given per epoch and per sample. FLOPs are those of the encoder's matmuls on real (non-padding) tokens
(~0.2 MFLOP per token forward, x3 with backward; 4 encodings per pre-training sample), plus the
all-item logits of cross-entropy and of ranking: the useful work, the same for both.

    OMP_NUM_THREADS=1 S3REC_DATA_DIR=../shared/data/s3rec .venv/bin/python benchmarks/bench_recbole.py [--beauty]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_mb, reset_peak  # benchmarks/, the script's own folder

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-recbole"
RECBOLE_PINS = ["recbole==1.2.1", "numpy==1.26.4", "pandas==2.2.3", "setuptools==80.9.0"]


def ensure_recbole(venv: Path) -> Path:
    """The venv's python, creating the venv and installing RecBole 1.2.1 on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} (RecBole 1.2.1, torch 2.13.0 CPU)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # first, so RecBole's requirement is already met
        subprocess.run([*pip, *RECBOLE_PINS], check=True)
    return python


def token_flops(w: float, d: int = 64, layers: int = 2) -> float:
    """Forward matmul FLOPs of the encoder per real token at sequence width w (QKV, W_O, FFN, attention)."""
    return layers * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * 4 * d + 2 * 2 * w * d)


def matmul_rates(n_items: int) -> dict[str, float]:
    """GFLOP/s of torch.matmul (float32) at the shapes these models use, best of 5."""
    import torch

    shapes = {"5000x64x64": (5000, 64, 64), "5000x64x256": (5000, 64, 256), "5000x256x64": (5000, 256, 64),
              f"1024x64x{n_items + 1} (ranking)": (1024, 64, n_items + 1), "2048x2048x2048": (2048, 2048, 2048)}
    rates = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        reps = max(1, int(2e9 / (2 * m * k * n)))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            best = min(best, (time.perf_counter() - t0) / reps)
        rates[name] = 2 * m * k * n / best / 1e9
    return rates


def bench_s3rec(dataset: str) -> dict:
    """Seconds, samples, tokens and peak MB of one s3rec epoch of each stage."""
    import torch

    from s3rec.data.loading import DataConfig, load_data
    from s3rec.data.splits import LeaveOneOut
    from s3rec.evaluation.ranking import full_ranking
    from s3rec.models.encoder import EncoderConfig
    from s3rec.transfer import load_transferred
    from s3rec.models.sasrec import SASRec
    from s3rec.training.batches import TrainingSequences
    from s3rec.training.finetune import FinetuneConfig, finetune
    from s3rec.training.pretrain import PretrainConfig, pretrain

    data = load_data(DataConfig(dataset=dataset), progress=False)
    split = LeaveOneOut.from_data(data)
    enc = EncoderConfig()
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    _, start, end = seqs.prefix_samples(enc.max_len)
    fin_tokens = int((seqs.ends - seqs.starts - 1).clamp(min=0, max=enc.max_len).sum())
    out = {"users": data.n_users, "items": data.n_items, "threads": torch.get_num_threads(),
           "pretrain_samples": len(start), "pretrain_tokens": int((end - start).sum()),
           "finetune_samples": fin_tokens, "finetune_tokens": fin_tokens}  # fine-tuning samples = target positions
    quiet = lambda *a, **k: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        reset_peak()
        ckpt = pretrain(split, PretrainConfig(epochs=1), enc, Path(tmp) / "pt", seed=0, progress=False, log=quiet,
                        device="cpu")
        log = json.loads((Path(tmp) / "pt" / "pretrain_log.jsonl").read_text().splitlines()[-1])
        out.update(pretrain_seconds_epoch=log["seconds"], pretrain_peak_mb=peak_mb())
        torch.manual_seed(0)
        model = SASRec(data.n_items, enc)
        load_transferred(model, ckpt, data)
        reset_peak()
        res = finetune(model, split, FinetuneConfig(epochs=1), enc.max_len, 0, lambda m: {"NDCG@10": 0.0},
                       Path(tmp) / "ft", progress=False, log=quiet)
        out.update(finetune_seconds_epoch=res.seconds_train, finetune_peak_mb=peak_mb())
    reset_peak()
    t0 = time.perf_counter()
    full_ranking(model.eval().score_all, split, "test", enc.max_len)
    out.update(evaluate_seconds=time.perf_counter() - t0, evaluate_peak_mb=peak_mb())
    return out


def bench_recbole(python: Path, dataset: str, batches: int, anomaly: str, pretrain_only: bool) -> dict:
    """Run recbole_driver.py in RecBole's venv on atomic files of `dataset`; {"error": ...} if it fails."""
    from s3rec.data.loading import DataConfig, load_data
    from s3rec.data.writers import write_data

    with tempfile.TemporaryDirectory() as tmp:
        name = dataset.lower()
        write_data(load_data(DataConfig(dataset=dataset), progress=False), Path(tmp) / name / f"{name}.inter", "recbole")
        cmd = [str(python), str(HERE / "recbole_driver.py"), "--data-path", tmp, "--dataset", name,
               "--batches", str(batches), "--anomaly", anomaly] + (["--skip-finetune"] if pretrain_only else [])
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1] if lines else f"exit {done.returncode}", "stderr_tail": lines[-15:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(dataset: str, ours: dict, rb: dict, rb_on: dict, rates: dict) -> str:
    """The comparison table as text."""
    n = ours["items"]
    w_pt = ours["pretrain_tokens"] / ours["pretrain_samples"]
    flops = {  # useful FLOPs per epoch / pass, the same formula for both systems
        "pretrain": lambda tokens, w: 4 * 3 * token_flops(w) * tokens,
        "finetune_bce": lambda tokens, w: 3 * token_flops(w) * tokens,
        "finetune_ce": lambda tokens, samples, w: 3 * token_flops(w) * tokens + 3 * 2 * 64 * (n + 1) * samples,
        "evaluate": lambda users: 2 * 64 * (n + 1) * users,
    }
    peak_rate = max(v for k, v in rates.items() if k.startswith("5000"))
    lines = [f"{dataset}: {ours['users']:,} users, {n:,} items; torch threads {ours['threads']}; "
             f"matmul {', '.join(f'{k} {v:.0f}' for k, v in rates.items())} GFLOP/s"]
    ours_f = {"pretrain": flops["pretrain"](ours["pretrain_tokens"], w_pt),
              "finetune": flops["finetune_bce"](ours["finetune_tokens"], ours["finetune_tokens"] / ours["users"]),
              "evaluate": flops["evaluate"](ours["users"])}
    head = (f"  {'stage':<10} {'s3rec s':>9} {'RecBole s':>10} {'ratio':>6}   {'s3rec ms/1k':>11} {'RecBole ms/1k':>13}   "
            f"{'peak MB s3rec / RecBole':>24}   GFLOP/s s3rec / RecBole (matmul {peak_rate:.0f})")
    lines.append(head)
    for stage in ("pretrain", "finetune", "evaluate"):
        mine = ours[f"{stage}_seconds_epoch" if stage != "evaluate" else "evaluate_seconds"]
        smp = ours[f"{stage}_samples"] if stage != "evaluate" else ours["users"]
        row = f"  {stage:<10} {mine:9.1f}"
        if "error" in rb or f"{stage}_seconds_epoch" not in rb and stage != "evaluate":
            lines.append(row + "   RecBole: " + rb.get("error", "not run"))
            continue
        theirs = rb[f"{stage}_seconds_epoch"] if stage != "evaluate" else rb["evaluate_seconds"]
        rsmp = rb.get(f"{stage}_samples", rb["users"]) if stage != "evaluate" else rb["users"]
        if stage == "pretrain":
            tok = rb["pretrain_tokens_timed"] * rb["pretrain_batches"] / rb["pretrain_batches_timed"]
            theirs_f = flops["pretrain"](tok, tok / rsmp)
        elif stage == "finetune":
            tok = rb["finetune_tokens_timed"] * rb["finetune_batches"] / rb["finetune_batches_timed"]
            theirs_f = flops["finetune_ce"](tok, rsmp, tok / rsmp)
        else:
            theirs_f = flops["evaluate"](rb["users"])
        row += (f" {theirs:10.1f} {theirs / mine:6.1f}   {1e6 * mine / smp:11.1f} {1e6 * theirs / rsmp:13.1f}   "
                f"{ours[f'{stage}_peak_mb']:12.0f} / {rb[f'{stage}_peak_mb']:<9.0f}   "
                f"{ours_f[stage] / mine / 1e9:6.1f} / {theirs_f / theirs / 1e9:.1f}")
        lines.append(row)
    if "pretrain_seconds_epoch" in rb_on:
        lines.append(f"  RecBole pre-training as shipped (anomaly detection on): {rb_on['pretrain_seconds_epoch']:.1f} s/epoch "
                     f"({rb_on['pretrain_seconds_epoch'] / ours['pretrain_seconds_epoch']:.1f}x s3rec; "
                     f"{rb_on['pretrain_batches_timed']} of {rb_on['pretrain_batches']} batches timed)")
    if "pretrain_batches" in rb:
        lines.append(f"  ms/1k: per 1,000 samples (pre-training: prefixes; fine-tuning: target positions; evaluation: users). "
                     f"Per epoch: pre-training {ours['pretrain_samples']:,} samples (s3rec) vs {rb['pretrain_samples']:,} "
                     f"(RecBole, {rb['pretrain_batches']} batches); fine-tuning {ours['finetune_samples']:,} targets in "
                     f"{ours['users']:,} rows vs {rb.get('finetune_samples', 0):,} prefixes with one target each. "
                     f"RecBole: {rb['pretrain_batches_timed']} batches per stage timed, extrapolated")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="lastfm", help="registry data set (default lastfm)")
    p.add_argument("--beauty", action="store_true", help="also Beauty (s3rec's pre-training epoch alone takes minutes)")
    p.add_argument("--batches", type=int, default=30, help="RecBole batches timed per stage (default 30)")
    p.add_argument("--skip-recbole", action="store_true", help="only s3rec and the matmul rates")
    p.add_argument("--skip-anomaly-on", action="store_true", help="do not time RecBole as shipped (anomaly detection on)")
    p.add_argument("--venv", default=str(VENV), help=f"RecBole's virtual environment (default {VENV})")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for bench_recbole-<dataset>.json")
    p.add_argument("--from-json", help="print the report of a saved bench_recbole-<dataset>.json and exit")
    args = p.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(report(Path(args.from_json).stem.removeprefix("bench_recbole-"), saved["s3rec"], saved["recbole"],
                     saved["recbole_anomaly_on"], saved["matmul_gflops"]))
        return

    from s3rec.io import write_json

    python = None if args.skip_recbole else ensure_recbole(Path(args.venv))
    for dataset in [args.dataset] + (["beauty"] if args.beauty and args.dataset != "beauty" else []):
        print(f"{dataset}: s3rec ...", file=sys.stderr, flush=True)
        ours = bench_s3rec(dataset)
        rates = matmul_rates(ours["items"])
        rb, rb_on = {"error": "skipped (--skip-recbole)"}, {}
        if python is not None:
            print(f"{dataset}: RecBole, anomaly detection off ...", file=sys.stderr, flush=True)
            rb = bench_recbole(python, dataset, args.batches, "off", pretrain_only=False)
            if not args.skip_anomaly_on and "error" not in rb:
                print(f"{dataset}: RecBole pre-training as shipped ...", file=sys.stderr, flush=True)
                rb_on = bench_recbole(python, dataset, args.batches, "on", pretrain_only=True)
        text = report(dataset, ours, rb, rb_on, rates)
        print(text)
        write_json(Path(args.out) / f"bench_recbole-{dataset}.json",
                   {"s3rec": ours, "recbole": rb, "recbole_anomaly_on": rb_on, "matmul_gflops": rates, "report": text,
                    "load_avg": os.getloadavg()})


if __name__ == "__main__":
    main()

"""RecBole 1.2.1 S3Rec timings, run by bench_recbole.py with the Python of benchmarks/.venv-recbole.

Pre-training and fine-tuning run RecBole's own Trainer._train_epoch on the first --batches batches of
its epoch (extrapolated to the epoch by its batch count); evaluation is Trainer.evaluate on the
whole test set (full ranking of every user). Prints one JSON object on its last line.

    python recbole_driver.py --data-path DIR --dataset lastfm --batches 30 --anomaly off
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch >= 2.6 refuses RecBole's checkpoints otherwise

import torch  # noqa: E402
from peak_memory import peak_mb, reset_peak  # noqa: E402  (benchmarks/, the script's own folder)


class FirstBatches:
    """The first n batches of a RecBole DataLoader, looking like the loader to its Trainer."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n
        self.shuffle = loader.shuffle
        self.tokens = 0  # real (non-padding) items in the batches served

    def __iter__(self):
        for inter in itertools.islice(iter(self.loader), self.n):
            self.tokens += int(inter["item_length"].sum())
            yield inter

    def __len__(self) -> int:
        return min(self.n, len(self.loader))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-path", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--anomaly", choices=["on", "off"], default="off")
    p.add_argument("--skip-finetune", action="store_true")
    args = p.parse_args()

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    import recbole.model.sequential_recommender  # noqa: F401  (importing it switches anomaly detection on)

    torch.autograd.set_detect_anomaly(args.anomaly == "on")
    tmp = tempfile.mkdtemp(prefix="recbole-bench-")
    base = {
        "data_path": args.data_path, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "categories"]},
        "item_attribute": "categories", "MAX_ITEM_LIST_LENGTH": 50, "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10", "eval_batch_size": 4096,
        "use_gpu": False, "checkpoint_dir": tmp, "show_progress": False, "seed": 0, "reproducibility": True,
        "pretrain_epochs": 1, "save_step": 1, "log_wandb": False,
    }
    out: dict = {"anomaly": args.anomaly, "threads": torch.get_num_threads(), "torch": torch.__version__}

    def build(stage: str, batch_size: int, pre_model_path: str = ""):
        config = Config(model="S3Rec", dataset=args.dataset, config_dict={
            **base, "train_stage": stage, "train_batch_size": batch_size, "pre_model_path": pre_model_path})
        init_seed(config["seed"], config["reproducibility"])
        torch.autograd.set_detect_anomaly(args.anomaly == "on")  # Config/init_seed may import models again
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        return config, train, test, model, trainer

    config, train, test, model, trainer = build("pretrain", 100)
    out.update(users=int(train._dataset.user_num - 1), items=int(train._dataset.item_num - 1),
               pretrain_samples=len(train.dataset), pretrain_batches=len(train))
    part = FirstBatches(train, args.batches)
    reset_peak()
    t0 = time.perf_counter()
    trainer._train_epoch(part, 0)
    sec = time.perf_counter() - t0
    out.update(pretrain_batches_timed=len(part), pretrain_seconds_timed=sec,
               pretrain_seconds_epoch=sec * len(train) / len(part), pretrain_tokens_timed=part.tokens,
               pretrain_peak_mb=peak_mb())
    if not args.skip_finetune:
        path = os.path.join(tmp, "pretrained.pth")
        torch.save({"state_dict": model.state_dict()}, path)
        config, train, test, model, trainer = build("finetune", 256, path)
        part = FirstBatches(train, args.batches)
        out.update(finetune_samples=len(train.dataset), finetune_batches=len(train))
        reset_peak()
        t0 = time.perf_counter()
        trainer._train_epoch(part, 0)
        sec = time.perf_counter() - t0
        out.update(finetune_batches_timed=len(part), finetune_seconds_timed=sec,
                   finetune_seconds_epoch=sec * len(train) / len(part), finetune_tokens_timed=part.tokens,
                   finetune_peak_mb=peak_mb())
        reset_peak()
        t0 = time.perf_counter()
        result = trainer.evaluate(test, load_best_model=False, show_progress=False)
        out.update(evaluate_seconds=time.perf_counter() - t0, evaluate_peak_mb=peak_mb(),
                   evaluate_users=len(test.dataset) if hasattr(test, "dataset") else None,
                   evaluate_metrics={k: float(v) for k, v in dict(result).items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()

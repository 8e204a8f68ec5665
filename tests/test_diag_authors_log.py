"""benchmarks/diag_authors_log.py: reads the authors' fine-tuning logs and lays s3rec's losses beside them."""

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "diag_authors_log.py"
_spec = importlib.util.spec_from_file_location("diag_authors_log", _PATH)
diag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diag)

LOG = """Namespace(ckp=100, data_name='Toy', seed=42)
{'epoch': 0, 'rec_avg_loss': '1.5000', 'rec_cur_loss': '1.4000'}
{'Epoch': 0, 'HIT@1': '0.1000', 'HIT@10': '0.5000', 'NDCG@10': '0.3000', 'MRR': '0.2000'}
{'epoch': 1, 'rec_avg_loss': '1.2500', 'rec_cur_loss': '1.3000'}
{'Epoch': 1, 'HIT@1': '0.1100', 'HIT@10': '0.5100', 'NDCG@10': '0.3100', 'MRR': '0.2100'}
{'Epoch': 0, 'HIT@1': '0.1200', 'HIT@10': '0.5200', 'NDCG@10': '0.3200', 'MRR': '0.2200'}
Finetune_sample-Toy-100
"""


def _run(tmp_path: Path, name: str, losses: list[float]) -> Path:
    run = tmp_path / name
    run.mkdir()
    lines = [json.dumps({"epoch": e, "loss": v, "valid_NDCG@10": 0.01}) for e, v in enumerate(losses, 1)]
    (run / "finetune_log.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_authors_log_is_read_with_one_based_epochs_and_the_last_record_as_test(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(LOG)
    losses, test = diag.authors_log(path)
    assert losses == {1: 1.5, 2: 1.25}
    assert test == {"HIT@1": 0.12, "HIT@10": 0.52, "NDCG@10": 0.32, "MRR": 0.22}


def test_loss_table_averages_runs_and_counts_those_that_reached_an_epoch(tmp_path):
    a = diag.run_losses(_run(tmp_path, "a", [1.0, 0.8, 0.6]))
    b = diag.run_losses(_run(tmp_path, "b", [2.0, 0.6]))  # stopped after epoch 2
    table = diag.loss_table({"ours": [a, b]}, {1: 1.5, 3: 0.7}, [1, 2, 3])
    assert table.splitlines()[2] == "| ours | 1.5000 | 0.7000 | 0.6000 (1) |"
    assert table.splitlines()[3] == "| authors' log | 1.5000 |  | 0.7000 |"


def test_a_file_that_is_not_an_authors_log_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("{'epoch': 0, 'rec_avg_loss': \n")
    with pytest.raises(SystemExit, match=r"bad.txt:1: not a log record"):
        diag.authors_log(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("Namespace()\n")
    with pytest.raises(SystemExit, match="no 'rec_avg_loss' records"):
        diag.authors_log(empty)

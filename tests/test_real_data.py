"""On the real data sets: PopRec's expected figures, and a short end-to-end S3-Rec run on LastFM."""

import json

import pytest

from s3rec.cli import main
from s3rec.config import RunConfig
from s3rec.data.loading import DataConfig
from s3rec.pipeline import run

# Computed independently with exactly this protocol (training-only counts, history excluded, ties against the target)
POP_EXPECTED = {
    "beauty": {"HR@10": 0.0110, "NDCG@10": 0.0053, "HR@20": 0.0198, "NDCG@20": 0.0074, "MRR": 0.0055},
    "lastfm": {"HR@10": 0.0385, "NDCG@10": 0.0180},
}


@pytest.mark.parametrize("dataset", sorted(POP_EXPECTED))
def test_poprec_matches_the_independent_figures(dataset, real_data_dir, tmp_path):
    cfg = RunConfig(model="pop", data=DataConfig(dataset=dataset, data_dir=str(real_data_dir)))
    metrics = run(cfg, out=tmp_path, progress=False, log=lambda *a: None, echo=lambda *a: None)
    for name, expected in POP_EXPECTED[dataset].items():
        assert round(metrics["test"]["full"][name], 4) == expected, name


def test_s3rec_end_to_end_on_lastfm(real_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--model", "s3rec", "--dataset", "lastfm", "--data-dir", str(real_data_dir), "--out", str(out),
            "--pretrain-epochs", "2", "--set", "pretrain.samples=random-prefix", "--epochs", "3",
            "--protocol", "both", "--seed", "7", "--quiet"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "pretrain" / "pretrain-epoch2.pt").is_file() and (out / "model.pt").is_file()
    log = [json.loads(line) for line in (out / "pretrain" / "pretrain_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and log[1]["loss"] < log[0]["loss"]
    assert set(metrics["test"]) == {"full", "sampled"}
    assert metrics["test"]["sampled"]["HR@10"] > metrics["test"]["full"]["HR@10"]
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 7 and config["pretrain"]["epochs"] == 2 and "protocol" in config
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"{metrics['test']['full']['NDCG@10']:.4f}" in printed

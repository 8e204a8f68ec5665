"""Pre-training warns when a pairwise objective's loss has not moved since epoch 1 (a dead objective)."""

import json

from s3rec.cli import main
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.encoder import EncoderConfig
from s3rec.training import pretrain as pretrain_module
from s3rec.training.pretrain import PretrainConfig, pretrain, stalled_in_log, stalled_objectives


def test_stalled_objectives_on_the_beauty_ablation_logs():
    # epoch-1 and epoch-3 records of the Beauty ablation: the full run's SP stayed at its plateau, ¬AAP's left it
    full_1 = {"aap": 107.4245, "mip": 1.2703, "map": 46.6937, "sp": 0.590062}
    full_3 = {"aap": 28.3915, "mip": 1.1439, "map": 33.5889, "sp": 0.589986}
    no_aap_3 = {"mip": 1.1484, "map": 34.0122, "sp": 0.5114}
    assert stalled_objectives(full_1, full_3) == ["sp"]
    assert stalled_objectives(full_1, no_aap_3) == []
    assert stalled_objectives({"mip": 1.0}, {"mip": 1.0}) == ["mip"]  # a stuck MIP is flagged too
    assert stalled_objectives({"sp": 0.0}, {"sp": 0.0}) == []  # SP off (weight 0 / no SP samples): nothing to flag
    assert stalled_objectives(full_1, {}) == []


def test_pretraining_logs_the_warning_at_epoch_3(tmp_path, monkeypatch):
    split = LeaveOneOut.from_data(make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=8, n_topics=4, seed=0))
    seen = []
    monkeypatch.setattr(pretrain_module, "stalled_objectives", lambda first, now: ["sp"] if now["epoch"] == 3 else [])
    pretrain(split, PretrainConfig(epochs=3), EncoderConfig(d=8, n_layers=1, n_heads=2, max_len=8), tmp_path, seed=0,
             progress=False, log=seen.append)
    warnings = [line for line in seen if line.startswith("warning:")]
    assert len(warnings) == 1 and "the sp loss has not moved since epoch 1" in warnings[0]
    assert "pretrain.bucket" not in warnings[0]
    seen.clear()  # with length buckets the warning names them: SP stalled with them on Beauty and Sports
    pretrain(split, PretrainConfig(epochs=3, bucket=True), EncoderConfig(d=8, n_layers=1, n_heads=2, max_len=8),
             tmp_path / "bucketed", seed=0, progress=False, log=seen.append)
    assert "SP stalled so with pretrain.bucket=true" in next(line for line in seen if line.startswith("warning:"))


def test_the_warning_reaches_stderr_under_quiet(tmp_path, monkeypatch, capsys):
    path = save_s3rec_format(make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=8, n_topics=4, seed=0),
                             tmp_path, "syn")
    monkeypatch.setattr(pretrain_module, "stalled_objectives", lambda first, now: ["mip"] if now["epoch"] == 3 else [])
    assert main(["pretrain", "--data", str(path), "--out", str(tmp_path / "pre"), "--pretrain-epochs", "3", "--quiet",
                 "--set", "encoder.d=8", "--set", "encoder.max_len=8", "--set", "encoder.n_layers=1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("pre-trained") and len(out.splitlines()) == 1  # --quiet: the result line alone
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        next(line for line in err.splitlines() if "the mip loss has not moved since epoch 1" in line)]


def test_stalled_in_log_reads_epoch_1_against_the_last_epoch(tmp_path):
    def write(*records):
        (tmp_path / "pretrain_log.jsonl").write_text("".join(json.dumps(r) + "\n\n" for r in records))  # blank lines too
    assert stalled_in_log(tmp_path) == {}  # no log
    e1, flat = {"epoch": 1, "mip": 1.27, "sp": 0.5901}, {"mip": 1.10, "sp": 0.5900}
    write(e1, {"epoch": 2, **flat})
    assert stalled_in_log(tmp_path) == {}  # judged from epoch 3 on, as the warning
    write(e1, {"epoch": 2, **flat}, {"epoch": 3, "mip": 1.0, "sp": 0.4}, {"epoch": 3, **flat})  # epoch 3 resumed
    assert stalled_in_log(tmp_path) == {"sp": (0.5901, 0.5900)}


def test_pretrain_seconds_counts_the_epochs_of_the_checkpoint_used(tmp_path):
    from s3rec.training.pretrain import pretrain_seconds

    records = [{"epoch": 1, "seconds": 2.0}, {"epoch": 2, "seconds": 3.0}, {"epoch": 2, "seconds": 5.0},  # 2 resumed
               {"epoch": 3, "seconds": 7.0}]
    (tmp_path / "pretrain_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert pretrain_seconds(tmp_path) == 14.0  # a resumed epoch counts once, its last record
    assert pretrain_seconds(tmp_path, epochs=2) == 7.0  # runs from pretrain-epoch2.pt: epoch 3 came later
    assert pretrain_seconds(tmp_path / "none") is None

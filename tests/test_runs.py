"""Run-or-reuse (s3rec.runs): a finished run evaluated under both protocols serves a one-protocol request."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import s3rec.run_dir
import s3rec.runs
from s3rec.config import RunConfig
from s3rec.data.loading import load_data
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.io import folder_lock
from s3rec.pipeline import pretrain_run, run
from s3rec.run_dir import check_same_data, read_histories, save_histories
from s3rec.runs import run_or_reuse
from s3rec.same_options import check_reusable
from s3rec.training.pretrain import pretrain


def quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def both_run(tmp_path_factory):
    """(config with protocol both, its finished run directory) of a tiny SASRec."""
    folder = tmp_path_factory.mktemp("runs")
    data = make_synthetic(n_users=60, n_items=150, avg_len=9, n_attributes=8, n_topics=4, seed=3)
    cfg = RunConfig(model="sasrec", seed=1)
    cfg.data.path = str(save_s3rec_format(data, folder, "syn"))
    cfg.encoder.d, cfg.encoder.max_len, cfg.encoder.n_layers = 16, 8, 1
    cfg.finetune.epochs = 2
    cfg.eval.protocol = "both"
    run(RunConfig.from_dict(cfg.to_dict()), out=folder / "both", progress=False, log=quiet, echo=quiet)
    return cfg, folder / "both"


def with_protocol(cfg: RunConfig, protocol: str) -> RunConfig:
    c = RunConfig.from_dict(cfg.to_dict())
    c.eval.protocol = protocol
    return c


def test_a_both_run_is_the_full_run_and_serves_a_full_request(both_run, tmp_path, monkeypatch):
    cfg, both_dir = both_run
    full = with_protocol(cfg, "full")
    fresh = run(RunConfig.from_dict(full.to_dict()), out=tmp_path / "full", progress=False, log=quiet, echo=quiet)
    saved = json.loads((both_dir / "metrics.json").read_text())
    assert fresh["test"]["full"] == saved["test"]["full"]  # the sampled evaluation changes no full-ranking number

    def no_run(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(s3rec.runs, "run", no_run)
    reused = run_or_reuse(full, both_dir, log=quiet)
    assert set(reused["test"]) == {"full"} and set(reused["valid"]) == {"full"}
    assert reused["test"]["full"] == fresh["test"]["full"]
    assert set(run_or_reuse(cfg, both_dir, log=quiet)["test"]) == {"full", "sampled"}


def test_a_config_holding_path_objects_is_reused_like_one_holding_text(both_run, tmp_path):
    from pathlib import Path

    cfg, _ = both_run
    as_path = RunConfig.from_dict(cfg.to_dict())
    as_path.data.path = Path(cfg.data.path)
    first = run_or_reuse(as_path, tmp_path / "run", log=quiet)
    stamp = (tmp_path / "run" / "metrics.json").stat().st_mtime_ns
    assert run_or_reuse(as_path, tmp_path / "run", log=quiet) == first  # was: "asks for PosixPath(...)"
    assert run_or_reuse(cfg, tmp_path / "run", log=quiet) == first
    assert (tmp_path / "run" / "metrics.json").stat().st_mtime_ns == stamp
    assert as_path.to_dict()["data"]["path"] == cfg.data.path

def test_a_finished_run_is_not_reused_on_a_data_file_rewritten_in_place(both_run, tmp_path):
    cfg, both_dir = both_run
    folder = tmp_path / "data"
    other = make_synthetic(n_users=60, n_items=150, avg_len=9, n_attributes=8, n_topics=4, seed=4)  # same sizes
    moved = RunConfig.from_dict(cfg.to_dict())
    moved.data.path = str(save_s3rec_format(load_data(cfg.data), folder, "syn"))  # the same data elsewhere
    shutil.copytree(both_dir, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "data": moved.to_dict()["data"]}))
    assert run_or_reuse(moved, tmp_path / "run", log=quiet)["test"]  # the same sequences and ids: reused
    save_s3rec_format(other, folder, "syn")
    with pytest.raises(S3RecError, match="cannot reuse: the data loaded now .* are not the data this run was made on"):
        run_or_reuse(moved, tmp_path / "run", log=quiet)


def test_a_both_run_does_not_serve_what_it_selected_differently_or_left_unfinished(both_run, tmp_path):
    cfg, both_dir = both_run
    # a sampled-only run picks its best epoch on sampled validation; this one picked on full ranking
    with pytest.raises(S3RecError, match="eval.protocol='both', this call asks for 'sampled'"):
        check_reusable(with_protocol(cfg, "sampled"), both_dir)
    picked_on_sampled = with_protocol(cfg, "sampled")
    picked_on_sampled.eval.selection = "full"
    check_reusable(picked_on_sampled, both_dir)  # selected alike: the sampled figures are the same
    # an unfinished run resumes under its own options only
    unfinished = tmp_path / "unfinished"
    shutil.copytree(both_dir, unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(S3RecError, match="eval.protocol='both', this call asks for 'full'"):
        check_reusable(with_protocol(cfg, "full"), unfinished)
    with pytest.raises(S3RecError, match="finetune.epochs=2, this call asks for 3"):
        more = with_protocol(cfg, "full")
        more.finetune.epochs = 3
        check_reusable(more, both_dir)


def test_a_run_directory_in_use_by_another_process_is_a_one_line_error(both_run, tmp_path):
    """The same command started twice must not interleave one run's checkpoints and logs."""
    cfg, _ = both_run
    held = tmp_path / "held"
    held.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom s3rec.io import folder_lock\n"
                               "with folder_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(120)", str(held)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        echoed = []
        with pytest.raises(S3RecError, match=r"held: in use by another s3rec run"):
            run(cfg, out=held, progress=False, log=quiet, echo=echoed.append)
        assert not (held / "metrics.json").exists() and echoed == []  # the error alone, no protocol header first
    finally:
        holder.kill()
        holder.wait()
    metrics = run(cfg, out=held, progress=False, log=quiet, echo=quiet)  # free again once the holder is gone
    assert metrics["test"]["full"]["NDCG@10"] >= 0


def test_a_pretraining_folder_in_use_is_a_one_line_error(both_run, tmp_path):
    cfg, _ = both_run
    folder = tmp_path / "pretrain"
    folder.mkdir()
    split = LeaveOneOut.from_data(load_data(cfg.data, progress=False))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom s3rec.io import folder_lock\n"
                               "with folder_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(120)", str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(S3RecError, match=r"pretrain: in use by another s3rec run"):
            pretrain(split, cfg.pretrain, cfg.encoder, folder, 1, progress=False, log=quiet)
        (folder / "config.json").write_text("the holder's")
        pre = RunConfig.from_dict(cfg.to_dict())
        pre.model, pre.pretrain.epochs = "s3rec", 1
        with pytest.raises(S3RecError, match=r"pretrain: in use by another s3rec run"):
            pretrain_run(pre, out=folder, progress=False, log=quiet)
        assert (folder / "config.json").read_text() == "the holder's"  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(folder):  # this process's own lock: pretrain_run holds it, then pretrain again
        assert pretrain_run(pre, out=folder, progress=False, log=quiet).is_file()


def test_a_run_that_fails_frees_its_folder_even_while_its_traceback_is_kept(both_run, tmp_path):
    """A notebook keeps the last traceback (and with it the run's frames): the folder must not stay locked."""
    cfg, _ = both_run
    pre = RunConfig.from_dict(cfg.to_dict())
    pre.model, pre.pretrain.epochs, pre.finetune.epochs = "s3rec", 1, 1

    def interrupt(record):
        raise KeyboardInterrupt

    for stage_cfg in (pre, cfg):  # interrupted in pre-training, and in fine-tuning
        out = tmp_path / stage_cfg.model
        try:
            run(stage_cfg, out=out, progress=False, log=quiet, echo=quiet, on_epoch=interrupt)
        except KeyboardInterrupt as e:
            kept = e  # noqa: F841 (the traceback holds the frames, as sys.last_traceback does)
        metrics = run(stage_cfg, out=out, progress=False, log=quiet, echo=quiet)
        assert metrics["test"]["full"]["NDCG@10"] >= 0


def test_an_output_folder_that_is_a_file_is_a_one_line_error(both_run, tmp_path):
    cfg, _ = both_run
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(S3RecError, match=r"taken: is a file, not a folder$"):
        run(cfg, out=tmp_path / "taken", progress=False, log=quiet, echo=quiet)
    with pytest.raises(S3RecError, match=r"run: cannot be an output folder, .*taken is a file$"):
        run(cfg, out=tmp_path / "taken" / "run", progress=False, log=quiet, echo=quiet)
    assert (tmp_path / "taken").read_text() == "mine"


def test_a_finished_pretraining_made_with_other_options_is_not_reused(both_run, tmp_path):
    cfg, _ = both_run
    pre = RunConfig.from_dict(cfg.to_dict())
    pre.model, pre.pretrain.epochs = "s3rec", 1
    done = s3rec.runs.pretrain_or_reuse(pre, tmp_path / "pre", log=quiet)
    saved = json.loads((tmp_path / "pre" / "config.json").read_text())
    assert done.is_file() and saved["pretrain"]["objectives"] == pre.to_dict()["pretrain"]["objectives"]
    assert s3rec.runs.pretrain_or_reuse(pre, tmp_path / "pre", log=quiet) == done  # same options: reused
    pre.pretrain.objectives.sp = 0.0
    with pytest.raises(S3RecError, match=r"last.pt: made with pretrain.objectives.sp=0.5, this call asks for 0.0"):
        s3rec.runs.pretrain_or_reuse(pre, tmp_path / "pre", log=quiet)


def test_check_same_data_compares_the_items_not_only_the_sequence_lengths(tmp_path):
    """Other items in sequences of the same lengths (a re-encoded file, another seed) are other data."""
    data = make_synthetic(n_users=20, n_items=30, avg_len=6, n_attributes=4, n_topics=2, seed=1)
    save_histories(data, tmp_path / "histories.npz")
    check_same_data(data, tmp_path, "resume")
    shifted = data.with_sequences(data.offsets, data.items % data.n_items + 1)  # every item id moved by one
    with pytest.raises(S3RecError, match="cannot resume: the data loaded now .* are not the data this run was made on"):
        check_same_data(shifted, tmp_path, "resume")


def test_save_histories_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """A run resumed on a full disk must not destroy the histories its recommendations read."""
    data = make_synthetic(n_users=20, n_items=30, avg_len=6, n_attributes=4, n_topics=2, seed=1)
    path = tmp_path / "histories.npz"
    save_histories(data, path)
    before = path.read_bytes()

    def full_disk(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(s3rec.run_dir.np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="disk full"):
        save_histories(data, path)
    assert [p.name for p in tmp_path.iterdir()] == ["histories.npz"] and path.read_bytes() == before
    monkeypatch.undo()
    offsets, items = read_histories(path, data.n_users, data.n_items)
    assert np.array_equal(offsets, data.offsets) and np.array_equal(items, data.items)


def test_run_seconds_sum_the_stages_not_an_older_total():
    from s3rec.runs import run_seconds

    assert run_seconds({"seconds": {"load": 1.0, "pretrain": 5.0, "train": 10.0, "total": 16.0}}) == 16.0
    assert run_seconds({"seconds": {"load": 1.0, "train": 10.0, "total": 4.0}}) == 11.0  # a resumed run's old total
    assert run_seconds({"seconds": {"total": 7.0}}) == 7.0


@pytest.mark.parametrize("key, value", [("seed", 2), ("pretrain.epochs", 3), ("finetune.lr", 0.01)])
def test_reuse_and_resume_refuse_a_changed_option(tmp_path, key, value):
    from s3rec.config import set_path
    from s3rec.io import write_json
    from s3rec.same_options import check_resumable

    made = RunConfig(model="s3rec", seed=1)
    write_json(tmp_path / "config.json", made.to_dict())
    asked = RunConfig.from_dict(made.to_dict())
    set_path(asked, key, value)
    for check in (check_reusable, check_resumable):
        with pytest.raises(S3RecError, match=key.replace(".", r"\.")):
            check(asked, tmp_path)
    fine_tuned = RunConfig(model="sasrec", seed=1)  # pre-training options do not shape a run without pre-training
    write_json(tmp_path / "config.json", fine_tuned.to_dict())
    other = RunConfig.from_dict(fine_tuned.to_dict())
    other.pretrain.epochs = 3
    check_reusable(other, tmp_path)
    check_resumable(other, tmp_path)

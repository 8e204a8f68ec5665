"""The Python API's two stages: pretrain_run -> run(cfg.init=...) on in-memory data."""

import json

import pytest

from s3rec import RunConfig, S3RecError, pretrain_run, run
from s3rec.pipeline import evaluate_run
from s3rec.data.synthetic import make_synthetic


def tiny(**kw) -> RunConfig:
    cfg = RunConfig(**kw)
    cfg.encoder.d, cfg.encoder.max_len, cfg.encoder.n_layers = 16, 10, 1
    cfg.pretrain.epochs, cfg.finetune.epochs = 2, 2
    return cfg


def test_pretrain_then_finetune_from_python(tmp_path):
    data = make_synthetic(n_users=80, n_items=60, n_attributes=8, n_topics=4, seed=5)
    ckpt = pretrain_run(tiny(), out=tmp_path / "pt", data=data, progress=False, log=lambda *a: None, device="cpu")
    assert ckpt == tmp_path / "pt" / "pretrain-epoch2.pt" and ckpt.is_file()
    assert json.loads((tmp_path / "pt" / "config.json").read_text())["pretrain"]["epochs"] == 2
    cfg = tiny(init=str(ckpt))
    cfg.pretrain.epochs, cfg.pretrain.lr = 100, 0.5  # unused by a run from --init: it records the checkpoint's
    metrics = run(cfg, out=tmp_path / "ft", data=data, progress=False, log=lambda *a: None, echo=lambda *a: None,
                  device="cpu")
    assert set(metrics["test"]) == {"full"} and not (tmp_path / "ft" / "pretrain").exists()  # no second pre-training
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert saved["init"] == str(ckpt) and (saved["pretrain"]["epochs"], saved["pretrain"]["lr"]) == (2, 1e-3)
    # the data were never a file: evaluate says so, not "give exactly one of --dataset NAME or --data PATH"
    with pytest.raises(S3RecError, match=r"config.json: this run was made on data given in memory .*\(Recommender.load\)"):
        evaluate_run(tmp_path / "ft", progress=False)


def test_pretrain_run_rejects_bad_options_before_writing(tmp_path):
    from s3rec import ConfigError

    cfg = tiny()
    cfg.pretrain.mask_ratio = 1.5
    with pytest.raises(ConfigError, match="mask_ratio"):  # a ValueError too, as option errors were
        pretrain_run(cfg, out=tmp_path / "pt", data=make_synthetic(n_users=20, n_items=60, n_attributes=8, n_topics=4, seed=1), progress=False)
    assert not (tmp_path / "pt").exists()


def test_a_run_on_data_in_memory_records_no_file_or_data_set_even_if_cfg_names_one(tmp_path):
    from s3rec import DataConfig

    data = make_synthetic(n_users=40, n_items=30, n_attributes=4, n_topics=2, seed=2)
    cfg = tiny(model="sasrec")
    cfg.data = DataConfig(dataset="lastfm", train_fraction=1.0)  # ignored: `data` is what trains
    run(cfg, out=tmp_path / "r", data=data, progress=False, log=lambda *a: None, echo=lambda *a: None)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["data"]
    assert (saved["dataset"], saved["path"], saved["data_dir"], saved["item_table"]) == (None, None, None, None)
    assert cfg.data.dataset == "lastfm"  # the caller's config is not changed
    run(cfg, out=tmp_path / "r", data=data, resume=True, progress=False, log=lambda *a: None, echo=lambda *a: None)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    saved["data"]["dataset"] = "lastfm"  # as an earlier version recorded it: such a run still resumes
    (tmp_path / "r" / "config.json").write_text(json.dumps(saved))
    run(cfg, out=tmp_path / "r", data=data, resume=True, progress=False, log=lambda *a: None, echo=lambda *a: None)
    ckpt = pretrain_run(tiny(data=DataConfig(path="elsewhere.csv")), out=tmp_path / "pt", data=data, progress=False,
                        log=lambda *a: None)
    assert json.loads((tmp_path / "pt" / "config.json").read_text())["data"]["path"] is None and ckpt.is_file()


def test_pretraining_warns_of_items_without_attributes():
    import pandas as pd

    from s3rec import from_dataframes
    from s3rec.models.s3rec import ObjectiveConfig
    from s3rec.pipeline import warn_without_attributes

    log = pd.DataFrame({"user": [u for u in "abc" for _ in range(4)], "item": list("wxyz") * 3, "ts": list(range(12))})
    items = pd.DataFrame({"item": ["w", "x", "y"], "tags": ["t1", "t2|t1", ""]})  # z absent, y empty
    data = from_dataframes(log, items, user_col="user", item_col="item", time_col="ts", attribute_cols="tags", min_count=1)
    lines = []
    warn_without_attributes(ObjectiveConfig(), data, lines.append)
    assert lines == [f"warning: {data.name}: 2 of 4 items have no attributes (absent from the item table, or empty "
                     "cells), so AAP and MAP learn nothing about them"]
    lines.clear()
    warn_without_attributes(ObjectiveConfig(aap=0, map=0), data, lines.append)  # neither objective runs: nothing to say
    assert lines == []


def test_a_misspelt_evaluation_override_is_named(tmp_path):
    from s3rec.data.s3rec_format import save_s3rec_format

    data = make_synthetic(n_users=40, n_items=120, avg_len=8, n_attributes=4, n_topics=2, seed=2)
    path = save_s3rec_format(data, tmp_path, "syn")
    cfg = tiny(model="sasrec")
    cfg.data.path = str(path)
    run(cfg, out=tmp_path / "r", progress=False, log=lambda *a: None, echo=lambda *a: None)
    with pytest.raises(S3RecError, match=r"^unknown evaluation option\(s\) protocl; EvalConfig has protocol, "):
        evaluate_run(tmp_path / "r", progress=False, eval_overrides={"protocl": "sampled"})
    with pytest.raises(S3RecError, match=r"^bad evaluation option: eval.protocol must be one of full, sampled, both"):
        evaluate_run(tmp_path / "r", progress=False, eval_overrides={"protocol": "smapled"})
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    (tmp_path / "r" / "config.json").write_text(json.dumps({**saved, "seed": "x"}))
    with pytest.raises(S3RecError, match=r"r/config.json: seed must be an integer"):  # the file's fault, named
        evaluate_run(tmp_path / "r", progress=False, eval_overrides={"protocol": "sampled"})
    (tmp_path / "r" / "config.json").write_text(json.dumps(saved))
    assert evaluate_run(tmp_path / "r", progress=False, log=lambda *a: None,
                        eval_overrides={"protocol": "sampled", "n_negatives": 9})["test"]["sampled"]["HR@10"] == 1.0

"""Per-model training defaults (each baseline's original paper): the CLI applies them beneath the
config file, --set and flags, records them in config.json, and the built model uses them."""

import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

from s3rec.cli import main, make_parser
from s3rec.cli.options import build_config
from s3rec.config import RunConfig, set_path
from s3rec.data.loading import DataConfig, load_data
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.encoder import EncoderConfig
from s3rec.models.factory import BASELINES, MODEL_NAMES, build_model, default_config, model_defaults
from s3rec.training.checkpoint import load_checkpoint

EXPECTED = {  # the table the module headers document
    "gru4rec": {"encoder.dropout": 0.25, "finetune.loss": "ce"},
    "gru4recf": {"encoder.dropout": 0.25, "finetune.loss": "ce"},
    "caser": {"encoder.d": 50, "finetune.weight_decay": 1e-6},
    "bert4rec": {"finetune.loss": "ce", "encoder.dropout": 0.1, "encoder.attn_dropout": 0.1,
                 "finetune.optimizer": "adamw", "finetune.weight_decay": 0.01},
    "hgn": {"encoder.d": 50, "finetune.loss": "bpr"},
    "fm": {"finetune.loss": "bpr"},
    "autoint": {"eval.selection": "sampled"},
    "sasrecf": {}, "fdsa": {}, "pop": {}, "sasrec": {}, "s3rec": {},
}


def get(cfg, dotted):
    for key in dotted.split("."):
        cfg = getattr(cfg, key)
    return cfg


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def config_of(*argv):
    return build_config(make_parser().parse_args(["run", "--data", "x.txt", *argv]))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("syn")
    return save_s3rec_format(make_synthetic(n_users=40, n_items=60, avg_len=8, n_attributes=12, n_topics=6, seed=2),
                             folder, "syn")


def test_every_model_has_the_documented_defaults_as_valid_options():
    assert set(EXPECTED) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert model_defaults(name) == EXPECTED[name]
        cfg = RunConfig(model=name)
        for key, value in model_defaults(name).items():
            set_path(cfg, key, value)
        cfg.validate()
    for name, spec in BASELINES.items():  # every header says what its run uses
        assert "Run defaults (`DEFAULTS`" in importlib.import_module(spec.module).__doc__


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cli_applies_the_model_defaults_and_nothing_else(name):
    cfg = flat(config_of("--model", name).to_dict())
    base = flat(RunConfig(model=name, data=DataConfig(path="x.txt")).to_dict())
    changed = {k for k in base if cfg[k] != base[k]}
    assert changed == set(EXPECTED[name])
    assert all(cfg[k] == v for k, v in EXPECTED[name].items())


def test_s3rec_and_sasrec_keep_the_paper_recipe():
    for name in ("s3rec", "sasrec"):
        assert config_of("--model", name) == RunConfig(model=name, data=DataConfig(path="x.txt"))


def test_config_file_set_and_flags_override_the_model_defaults(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("finetune:\n  lr: 0.003\nencoder:\n  dropout: 0.3\n")
    cfg = config_of("--model", "bert4rec", "--config", str(file))
    assert (cfg.finetune.lr, cfg.encoder.dropout, cfg.encoder.attn_dropout) == (0.003, 0.3, 0.1)  # the rest: paper
    cfg = config_of("--model", "caser", "--set", "encoder.d=64", "--set", "finetune.weight_decay=0")
    assert (cfg.encoder.d, cfg.finetune.weight_decay) == (64, 0)
    cfg = config_of("--model", "gru4rec", "--loss", "bpr", "--set", "encoder.dropout=0.4")
    assert (cfg.finetune.loss, cfg.encoder.dropout) == ("bpr", 0.4)
    # the model named by --set or by the config file picks the defaults too
    assert config_of("--set", "model=hgn").encoder.d == 50
    file.write_text("model: caser\n")
    assert config_of("--config", str(file)).finetune.weight_decay == 1e-6
    assert default_config("bert4rec", finetune={"lr": 0.002}).finetune.lr == 0.002


def test_a_loss_the_model_cannot_train_with_is_a_one_line_error(data_file, tmp_path, capsys):
    for name, loss in (("hgn", "bce"), ("bert4rec", "bpr"), ("fm", "ce")):
        assert main(["run", "--model", name, "--data", str(data_file), "--loss", loss, "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("s3rec: error:") and f"not available for {name}" in err and "\n" not in err
        assert not (tmp_path / name).exists()
    with pytest.raises(S3RecError, match="not available for autoint"):
        config_of("--model", "autoint", "--set", "finetune.loss=bpr")


def test_autoint_sampled_selection_on_a_too_small_catalogue_is_a_one_line_error(data_file, tmp_path, capsys):
    out = tmp_path / "autoint"
    assert main(["run", "--model", "autoint", "--data", str(data_file), "--protocol", "full", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "eval.selection=sampled" in err and "--set eval.selection=full" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("name, argv, expect", [
    ("caser", [], {"encoder.d": 50, "finetune.weight_decay": 1e-6}),
    ("gru4rec", ["--set", "encoder.dropout=0.4"], {"encoder.dropout": 0.4}),
    ("bert4rec", [], {"finetune.lr": 1e-3, "finetune.loss": "ce", "encoder.dropout": 0.1}),
])
def test_a_run_records_the_defaults_and_its_model_uses_them(name, argv, expect, data_file, tmp_path):
    out = tmp_path / name
    assert main(["run", "--model", name, "--data", str(data_file), "--epochs", "1", "--set", "encoder.max_len=10",
                 "--out", str(out), "--quiet", *argv]) == 0
    saved = flat(json.loads((out / "config.json").read_text()))
    assert all(saved[k] == v for k, v in expect.items())
    state = load_checkpoint(out / "model.pt", stage="model")["state_dict"]
    cfg = RunConfig.from_dict({k: v for k, v in json.loads((out / "config.json").read_text()).items()
                               if k not in ("protocol", "environment")})
    split = LeaveOneOut.from_data(load_data(cfg.data, progress=False))
    model = build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives)
    model.load_state_dict(state)  # the saved weights have the recorded sizes (caser: d = 50)
    if name == "caser":
        assert model.E.embedding_dim == 50
    if name == "gru4rec":
        assert model.drop.p == 0.4
    if name == "bert4rec":
        assert (model.encoder.cfg.dropout, model.encoder.cfg.attn_dropout) == (0.1, 0.1)


def test_build_model_passes_the_encoder_options_each_baseline_reads():
    split = LeaveOneOut.from_data(make_synthetic(n_users=30, n_items=60, avg_len=8, n_attributes=12, n_topics=6, seed=1))
    enc = EncoderConfig(d=16, n_layers=1, n_heads=4, max_len=12, dropout=0.3, attn_dropout=0.2, init_std=0.05)
    for name in ("gru4rec", "gru4recf", "caser"):
        assert build_model(name, split, enc).drop.p == 0.3
    assert build_model("bert4rec", split, enc, loss="ce").encoder.cfg == dataclasses.replace(enc, init_std=0.02)
    for name in ("sasrecf", "fdsa"):
        assert build_model(name, split, enc).encoder.cfg == enc
    assert build_model("hgn", split, enc).U.embedding_dim == 16



def documented(cell: str) -> dict:
    """The `key=value` options written in a cell of docs/compare.md, values parsed as in --set."""
    return {k: yaml.safe_load(v) for k, v in re.findall(r"`([a-z_]+\.[a-z_.]+)=([^`]+)`", cell)}


def test_the_compare_docs_table_lists_exactly_each_models_defaults():
    """docs/compare.md's per-model table ('defaults applied' column) is the DEFAULTS of every model."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "compare.md").read_text(encoding="utf-8")
    section = doc.split("## Per-model defaults")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]
    applied = {name: documented(cells[1]) for cells in rows for name in cells[0].split(", ")}
    assert set(applied) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert set(applied[name]) == set(model_defaults(name)), name
        cfg = RunConfig(model=name)
        for key, value in applied[name].items():  # read as --set reads them
            set_path(cfg, key, value)
        assert cfg == default_config(name), name

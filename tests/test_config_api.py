"""The typed configuration as a Python user meets it: typos fail, paths and comma lists are read as the CLI reads them."""

import json
from pathlib import Path

import pytest

from s3rec.config import EvalConfig, RunConfig
from s3rec.data.loading import DataConfig
from s3rec.models.encoder import EncoderConfig
from s3rec.models.s3rec import ObjectiveConfig
from s3rec.training.finetune import FinetuneConfig
from s3rec.training.pretrain import PretrainConfig


@pytest.mark.parametrize("cls, typo", [(RunConfig, "seeds"), (DataConfig, "min_counts"), (EncoderConfig, "layers"),
                                       (PretrainConfig, "epoch"), (FinetuneConfig, "epoch"), (EvalConfig, "protocols"),
                                       (ObjectiveConfig, "mpi")])
def test_a_misspelt_option_set_in_python_is_an_error_not_ignored(cls, typo):
    cfg = cls()
    with pytest.raises(AttributeError, match=typo):
        setattr(cfg, typo, 3)  # c.finetune.epoch = 3 trained the default 200 epochs


def test_paths_given_as_path_objects_are_recorded_as_text(tmp_path):
    cfg = RunConfig(model="s3rec", init=tmp_path / "pretrain-epoch10.pt")
    cfg.data = DataConfig(path=tmp_path / "log.csv", item_table=tmp_path / "items.csv", data_dir=None)
    cfg.validate()
    assert cfg.init == str(tmp_path / "pretrain-epoch10.pt") and cfg.data.path == str(tmp_path / "log.csv")
    assert cfg.data.item_table == str(tmp_path / "items.csv")
    assert json.loads(json.dumps(cfg.to_dict()))["data"]["path"] == str(tmp_path / "log.csv")  # config.json can hold it
    with pytest.raises(ValueError, match="encoder.d must be an integer"):  # a path where a number goes stays an error
        RunConfig(encoder=EncoderConfig(d=Path("64"))).validate()


def test_attribute_columns_as_one_comma_separated_text_are_a_list():
    assert DataConfig(attribute_cols="brand, categories").attribute_cols == ["brand", "categories"]
    assert DataConfig(attribute_cols="brand").attribute_cols == ["brand"]  # not ['b', 'r', 'a', 'n', 'd']
    assert DataConfig(attribute_cols=[]).attribute_cols == []
    assert RunConfig.from_dict({"data": {"attribute_cols": "brand,cats"}}).data.attribute_cols == ["brand", "cats"]


def test_load_config_layers_a_file_as_the_cli_does_and_reads_a_runs_config_json(tmp_path):
    from s3rec import ConfigError, load_config

    (tmp_path / "c.yaml").write_text("model: bert4rec\nseed: 3\nfinetune:\n  epochs: 7\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.model, cfg.seed, cfg.finetune.epochs) == ("bert4rec", 3, 7)
    assert (cfg.finetune.optimizer, cfg.finetune.weight_decay, cfg.finetune.loss) == ("adamw", 0.01, "ce")  # BERT4Rec's own
    (tmp_path / "best.yaml").write_text("recipe: best\nfinetune:\n  patience: 12\n")
    best = load_config(tmp_path / "best.yaml")
    assert (best.model, best.finetune.loss, best.finetune.patience) == ("s3rec", "ce", 12)  # the file wins over its recipe
    assert load_config(tmp_path / "best.yaml", model="sasrec").model == "sasrec"
    recorded = {**best.to_dict(), "protocol": "...", "environment": {"torch": "x"}}  # as a run's config.json holds it
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    assert load_config(tmp_path / "config.json") == best
    (tmp_path / "bad.yaml").write_text("finetune:\n  epoch: 7\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: bad option: unknown FinetuneConfig option\(s\): epoch"):
        load_config(tmp_path / "bad.yaml")


def test_load_config_refuses_what_the_cli_refuses_and_reads_time_col_none(tmp_path):
    from s3rec import ConfigError, load_config

    (tmp_path / "hgn.yaml").write_text("model: hgn\nfinetune:\n  loss: ce\n")
    with pytest.raises(ConfigError, match=r"hgn.yaml: bad option: finetune.loss \(--loss\) 'ce' is not available for hgn"):
        load_config(tmp_path / "hgn.yaml")
    (tmp_path / "untimed.yaml").write_text("data:\n  time_col: none\n")
    assert load_config(tmp_path / "untimed.yaml").data.time_col is None  # as --time-col none


def test_attribute_columns_from_set_are_split_like_the_flags():
    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config

    def cfg_of(*argv):
        return build_config(make_parser().parse_args(["run", "--data", "log.csv", "--item-table", "items.csv", *argv]))

    assert cfg_of("--set", "data.attribute_cols=brand, tags").data.attribute_cols == ["brand", "tags"]
    assert cfg_of("--attribute-cols", "brand, tags").data.attribute_cols == ["brand", "tags"]

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

"""Pre-training other models (s3rec.transfer): their own encoders, or S3-Rec's embeddings for Caser/AutoInt."""

import json

import pytest
import torch

from s3rec.config import RunConfig
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.factory import build_model
from s3rec.models.s3rec import S3RecPretrainer
from s3rec.recipes import apply_recipe
from s3rec.runs import pretrain_or_reuse
from s3rec.same_options import check_pretrain_reusable, check_reusable
from s3rec.training.checkpoint import load_checkpoint
from s3rec.transfer import GRUEncoder, load_transferred, pretraining_encoder

HIST = torch.tensor([[0, 0, 3, 7, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0, 11]])


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """(data, split, base config) of a tiny synthetic set saved in the S3-Rec format."""
    folder = tmp_path_factory.mktemp("data")
    data = make_synthetic(n_users=60, n_items=40, avg_len=9, n_attributes=8, n_topics=4, seed=3)
    cfg = RunConfig()
    cfg.data.path = str(save_s3rec_format(data, folder, "syn"))
    cfg.encoder.d, cfg.encoder.max_len, cfg.encoder.n_layers = 16, 8, 1
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 32
    return data, LeaveOneOut.from_data(data), cfg


def model_of(name, split, cfg, seed=0):
    torch.manual_seed(seed)
    return build_model(name, split, cfg.encoder, cfg.finetune.loss).eval()


def test_gru_inputs_hook_equals_its_own_embedding(setting):
    _, split, cfg = setting
    m = model_of("gru4recf", split, cfg)
    assert torch.equal(m(HIST), m(HIST, inputs=m.embed(HIST)))


def test_gru_encoder_feeds_the_mask_vector_and_never_looks_ahead(setting):
    _, split, cfg = setting
    enc = GRUEncoder(model_of("gru4rec", split, cfg)).eval()
    masked = HIST.masked_fill(HIST == 3, enc.mask_id)
    out = enc(masked, causal=False)
    with torch.no_grad():
        enc.mask.add_(1.0)
    moved = enc(masked, causal=False)
    # row 0 masks position 2: outputs before it are unchanged, from it on they move
    assert torch.equal(out[0, :2], moved[0, :2]) and not torch.allclose(out[0, 2:], moved[0, 2:])
    later = masked.clone()
    later[1, 4] = 12  # changing the newest item changes no earlier output
    assert torch.equal(enc(later, causal=False)[1, :4], moved[1, :4])


def test_sasrecf_and_gru4recf_share_their_attribute_table_with_the_objectives(setting):
    data, split, cfg = setting
    for name in ("sasrecf", "gru4recf"):
        net = pretraining_encoder(model_of(name, split, cfg))
        pre = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                              torch.from_numpy(data.attr_values), cfg.encoder, sequence_encoder=net)
        assert pre.M_A is net.M_A and pre.encoder is net


@pytest.mark.parametrize("name", ["gru4rec", "gru4recf", "sasrecf"])
def test_own_encoder_pretraining_is_what_fine_tuning_starts_from(setting, tmp_path, name):
    data, split, cfg = setting
    pre = RunConfig.from_dict({**cfg.to_dict(), "model": name})
    ck_path = pretrain_or_reuse(pre, tmp_path / "pt", progress=False, log=lambda *a: None)
    ck = load_checkpoint(ck_path, stage="pretrain")
    assert ck["config"]["model"] == name
    fresh, loaded = model_of(name, split, cfg, seed=1), model_of(name, split, cfg, seed=1)
    load_transferred(loaded, ck_path, data)
    assert not torch.allclose(fresh.score_all(HIST), loaded.score_all(HIST))
    # every weight of the fine-tuning model is one of the pre-trained encoder's, with its pre-trained value
    net = pretraining_encoder(loaded)
    assert {id(p) for p in loaded.parameters()} <= {id(p) for p in net.parameters()}
    enc_state = {k[len("encoder."):]: v for k, v in ck["state_dict"].items() if k.startswith("encoder.")}
    for key, value in net.state_dict().items():
        assert key == "mask" or torch.equal(value, enc_state[key]), key  # the GRU's [mask] stays in pre-training


def test_embedding_init_for_caser_and_autoint(setting, tmp_path):
    data, split, cfg = setting
    ck_path = pretrain_or_reuse(cfg, tmp_path / "pt", progress=False, log=lambda *a: None)  # S3-Rec, d = 16
    state = load_checkpoint(ck_path)["state_dict"]
    M_I, M_A = state["encoder.M_I.weight"], state["M_A.weight"]
    caser = model_of("caser", split, RunConfig.from_dict({**cfg.to_dict(), "encoder": {**cfg.to_dict()["encoder"], "d": 16}}))
    load_transferred(caser, ck_path, data)
    assert torch.equal(caser.E.weight[1:], M_I[1 : data.n_items + 1]) and not caser.E.weight[0].any()
    autoint = model_of("autoint", split, cfg)  # fields of width 16 = the pre-training's d
    load_transferred(autoint, ck_path, data)
    assert torch.equal(autoint.E_I.weight, M_I) and torch.equal(autoint.E_H.weight, M_I)
    assert torch.equal(autoint.E_A.weight, M_A)


def test_unfit_checkpoints_and_models_are_errors(setting, tmp_path):
    data, split, cfg = setting
    s3rec_ck = pretrain_or_reuse(cfg, tmp_path / "pt", progress=False, log=lambda *a: None)
    with pytest.raises(S3RecError, match="does not fit this GRU4Rec"):
        load_transferred(model_of("gru4rec", split, cfg), s3rec_ck, data)
    wide = RunConfig.from_dict({**cfg.to_dict(), "encoder": {**cfg.to_dict()["encoder"], "d": 32}})
    with pytest.raises(S3RecError, match="width 16, but Caser needs 32"):
        load_transferred(model_of("caser", split, wide), s3rec_ck, data)
    with pytest.raises(S3RecError, match="cannot start from a pre-training"):
        load_transferred(model_of("fm", split, cfg), s3rec_ck, data)
    no_attributes = torch.load(s3rec_ck, weights_only=False)
    del no_attributes["state_dict"]["M_A.weight"]  # a truncated or hand-made checkpoint: item embeddings only
    torch.save(no_attributes, tmp_path / "no_attributes.pt")
    with pytest.raises(S3RecError, match="no_attributes.pt: not an S3-Rec pre-training"):  # not a KeyError
        load_transferred(model_of("caser", split, cfg), tmp_path / "no_attributes.pt", data)
    with pytest.raises(S3RecError, match="no sequence encoder"):
        pretrain_or_reuse(RunConfig.from_dict({**cfg.to_dict(), "model": "caser"}), tmp_path / "c", progress=False)


def test_reuse_checks_name_the_first_differing_option(setting, tmp_path):
    _, _, cfg = setting
    pretrain_or_reuse(cfg, tmp_path / "pt", progress=False, log=lambda *a: None)
    more = RunConfig.from_dict(cfg.to_dict())
    more.pretrain.epochs = 3  # more epochs continue the same pre-training
    more.pretrain.micro_batches = 2  # how a batch is split changes no number: the same pre-training
    check_pretrain_reusable(more, tmp_path / "pt")
    more.pretrain.objectives.sp = 0.0
    with pytest.raises(S3RecError, match=r"pretrain.objectives.sp=0.5, this call asks for 0.0"):
        check_pretrain_reusable(more, tmp_path / "pt")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"seed": 1, "finetune": {"micro_batches": 8}, "environment": {"git_commit": "x"}}')
    check_reusable(RunConfig(seed=1), tmp_path / "run")
    check_reusable(RunConfig.from_dict({"seed": 1, "finetune": {"micro_batches": 3}}), tmp_path / "run")
    with pytest.raises(S3RecError, match="seed=1, this call asks for 2"):
        check_reusable(RunConfig(seed=2), tmp_path / "run")


def test_a_recipe_is_compared_by_the_options_it_sets(tmp_path):
    (tmp_path / "run").mkdir()
    by_flag = RunConfig(model="sasrec", seed=1)
    by_flag.finetune.loss, by_flag.finetune.patience = "ce", 20
    (tmp_path / "run" / "config.json").write_text(json.dumps(by_flag.to_dict()))
    check_reusable(apply_recipe(RunConfig(model="sasrec", seed=1), "best"), tmp_path / "run")  # same options
    with pytest.raises(S3RecError, match="finetune.loss='ce', this call asks for 'bce'"):
        check_reusable(RunConfig(model="sasrec", seed=1, recipe="best"), tmp_path / "run")  # a label alone is not the recipe


def test_run_seconds_sum_the_stages_of_a_resumed_run():
    from s3rec.runs import run_seconds

    # a run resumed once: its last process lived 100 s, but training took 900 s over both processes
    assert run_seconds({"seconds": {"load": 1.0, "train": 900.0, "valid_during_training": 80.0, "evaluate": 19.0,
                                    "total": 100.0}}) == 1000.0
    assert run_seconds({"seconds": {"total": 42.0}}) == 42.0  # only a total: that is all there is

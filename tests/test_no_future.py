"""Next-item models never use the future: a training position's loss ignores later inputs, and scoring a
history uses the causal pass that training uses."""

import json

import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.encoder import EncoderConfig
from s3rec.models.factory import build_model
from s3rec.training.batches import finetune_batch
from s3rec.training.finetune import training_sequences

CAUSAL_MODELS = ["sasrec", "sasrecf", "fdsa", "gru4rec", "gru4recf"]  # BERT4Rec is bidirectional by design


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=40, n_items=30, avg_len=12, n_attributes=6, n_topics=3, seed=4))


def small(name, split):
    torch.manual_seed(0)
    model = build_model(name, split, EncoderConfig(d=16, n_layers=2, n_heads=2, max_len=10, init_std=0.3))
    return model.eval()  # no dropout: equal inputs give equal numbers; large weights: attention far from uniform


@pytest.mark.parametrize("name", CAUSAL_MODELS)
def test_the_training_loss_at_a_position_ignores_later_inputs(name, split):
    model = small(name, split)
    batch = finetune_batch(training_sequences(split), torch.arange(8), 10, torch.Generator().manual_seed(0))
    keep = batch["targets"][:, -2] != 0  # rows with a target at the second-to-last position
    batch = {k: v[keep] for k, v in batch.items()}
    for key in ("targets", "negatives"):  # only that position's loss counts
        batch[key] = torch.cat([torch.zeros_like(batch[key][:, :-2]), batch[key][:, -2:-1], torch.zeros_like(batch[key][:, -1:])], 1)
    changed = {**batch, "inputs": batch["inputs"].clone()}
    changed["inputs"][:, -1] = changed["inputs"][:, -1] % split.n_items + 1  # another item, after the target's position
    with torch.no_grad():
        torch.testing.assert_close(model.loss(changed), model.loss(batch))
        changed["inputs"][:, -2] = changed["inputs"][:, -2] % split.n_items + 1  # the position itself does count
        assert not torch.allclose(model.loss(changed), model.loss(batch))


@pytest.mark.parametrize("name", ["sasrec", "sasrecf", "fdsa"])
def test_scoring_a_history_uses_the_causal_pass_of_training(name, split):
    model = small(name, split)
    history = torch.tensor([[0, 0, 3, 7, 1, 9, 4, 12, 5, 8]])
    candidates = torch.tensor([[8, 2, 30]])
    with torch.no_grad():
        table = model.item_table()
        causal = model.encoder(history, causal=True)[:, -1] @ table.T  # (1, n_items + 1)
        bidirectional = model.encoder(history, causal=False)[:, -1] @ table.T
        torch.testing.assert_close(model.score_all(history), causal)
        torch.testing.assert_close(model.score(history, candidates), causal.gather(1, candidates))
        assert not torch.allclose(causal, bidirectional, atol=1e-2)  # two layers: the modes differ at the last item


def test_epochs_are_picked_on_validation_and_the_test_item_is_seen_once(split, tmp_path, monkeypatch):
    from s3rec import pipeline
    from s3rec.config import RunConfig
    from s3rec.training.finetune import FinetuneConfig

    seen = []
    evaluate = pipeline.evaluate
    monkeypatch.setattr(pipeline, "evaluate", lambda m, s, which, *a, **k: seen.append(which) or evaluate(m, s, which, *a, **k))
    cfg = RunConfig(model="sasrec", encoder=EncoderConfig(d=16, n_layers=1, n_heads=2, max_len=10),
                    finetune=FinetuneConfig(epochs=3, patience=5))
    metrics = pipeline.run(cfg, out=tmp_path / "run", progress=False, log=lambda *a: None, echo=lambda *a: None,
                           data=split.data)
    assert seen == ["valid"] * 3 + ["valid", "test"]  # one validation per epoch, then the final evaluation
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_valid"] == pytest.approx(metrics["valid"]["full"]["NDCG@10"], abs=1e-12)

"""Attention masking of the shared encoder: padding is invisible, causal mode never sees the future."""

import pytest
import torch

from s3rec.models import encoder
from s3rec.models import packing
from s3rec.models.encoder import EncoderConfig, SequenceEncoder, attention_mask
from s3rec.models.packing import PackedRows


def make_encoder(max_len=8):
    torch.manual_seed(0)
    enc = SequenceEncoder(n_items=20, cfg=EncoderConfig(d=16, n_layers=2, n_heads=2, max_len=max_len))
    enc.eval()
    return enc


def test_attention_mask_shape_and_content():
    items = torch.tensor([[0, 0, 3, 4]])
    bi = attention_mask(items, causal=False)[0, 0]
    ca = attention_mask(items, causal=True)[0, 0]
    assert bi[2].tolist() == [False, False, True, True]
    assert ca[2].tolist() == [False, False, True, False]
    assert ca[3].tolist() == [False, False, True, True]
    assert ca[0].tolist() == [True, False, False, False]  # a left-padding query in causal mode sees only itself


def test_padding_is_never_attended():
    enc = make_encoder()
    items = torch.tensor([[0, 0, 0, 5, 6, 7, 8, 9]])
    for causal in (False, True):
        before = enc(items, causal)[:, 3:]
        with torch.no_grad():
            enc.M_I.weight[0].normal_()  # whatever the padding embedding is
        after = enc(items, causal)[:, 3:]
        torch.testing.assert_close(before, after)


def test_causal_outputs_ignore_later_items():
    enc = make_encoder()
    a = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6]])
    b = a.clone()
    b[0, 5:] = torch.tensor([11, 12, 13])
    out_a, out_b = enc(a, causal=True), enc(b, causal=True)
    torch.testing.assert_close(out_a[:, :5], out_b[:, :5])
    assert not torch.allclose(out_a[:, 5:], out_b[:, 5:])
    # bidirectional mode does see the later items
    assert not torch.allclose(enc(a, causal=False)[:, 2:5], enc(b, causal=False)[:, 2:5])


def test_trimming_left_padding_changes_nothing():
    enc = make_encoder(max_len=8)
    full = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4], [0, 0, 0, 0, 0, 0, 7, 8]])
    trimmed = full[:, 4:]
    for causal in (False, True):
        torch.testing.assert_close(enc(full, causal)[:, 4:], enc(trimmed, causal))


def test_batch_rows_are_independent():
    enc = make_encoder()
    a = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 9, 8, 7, 6]])
    both = enc(a, causal=True)
    torch.testing.assert_close(both[1:], enc(a[1:], causal=True), rtol=1e-5, atol=1e-6)


def left_padded_rows(lengths, width, n_items=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = torch.zeros(len(lengths), width, dtype=torch.long)
    for r, n in enumerate(lengths):
        items[r, width - n:] = torch.randint(1, n_items + 1, (n,), generator=g)
    return items


@pytest.mark.parametrize("packed, groups", [(True, 8), (True, 1), (False, 1)])
@pytest.mark.parametrize("n_full", [0, 3, 7, 12])
def test_encode_views_matches_the_full_pass_and_its_gradients(n_full, packed, groups, monkeypatch):
    # 8 groups: as many as lengths allow; 1 group per set: padding slots inside attention
    monkeypatch.setattr(packing, "PACK_OVERHEAD", 0)
    monkeypatch.setattr(packing, "PACK_GROUPS", groups)
    monkeypatch.setattr(encoder, "PACK_MIN_PADDING", 0.0 if packed else 1.0)
    enc = make_encoder()
    # lengths spread so that each set of rows is cut into several attention groups
    items = left_padded_rows([8, 1, 5, 2, 8, 3, 7, 1, 6, 2, 4, 8], width=8)
    real = (items[:n_full] != 0).unsqueeze(-1)
    weights = torch.randn(n_full, 8, 16), torch.randn(12 - n_full, 16)

    def grads(views):
        enc.zero_grad()
        F_seq, F_last = views()
        ((F_seq * real * weights[0]).sum() + (F_last * weights[1]).sum()).backward()
        return {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}

    full = enc(items, causal=False)
    F_seq, F_last = enc.encode_views(items, n_full)
    n_groups = len(PackedRows(items, n_full).groups)
    assert n_groups > 3 if groups == 8 else n_groups == (2 if 0 < n_full < 12 else 1)
    assert F_seq.shape == (n_full, 8, 16) and F_last.shape == (12 - n_full, 16)
    torch.testing.assert_close(F_seq * real, full[:n_full] * real)  # real positions (padding: unspecified)
    torch.testing.assert_close(F_last, full[n_full:, -1])  # only the last query computed for these rows
    reference = grads(lambda: (enc(items, False)[:n_full], enc(items, False)[n_full:, -1]))
    packed = grads(lambda: enc.encode_views(items, n_full))
    assert packed.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(packed[name], reference[name], msg=name)


@pytest.mark.parametrize("parts", [1, 2])
def test_packed_rows_keep_every_token_once_with_its_position(parts):
    items = left_padded_rows([3, 1, 4, 2, 4], width=4)
    rows = PackedRows(items, n_full=2, parts=parts, overhead=0)
    assert sorted(rows.flat.tolist()) == torch.nonzero(items.reshape(-1)).squeeze(1).tolist()
    assert rows.n_full_tokens == 4 and sorted(rows.last_rows.tolist()) == [2, 3, 4]
    tokens = items.reshape(-1)[rows.flat]
    rebuilt, padded_slots = [], 0
    for g in rows.groups:  # each group's real slots hold its rows' tokens, right-aligned as in the padded rows
        slots = torch.zeros(g.shape[0] * g.shape[1], dtype=torch.long)
        slots[g.real] = tokens[g.gather[g.real]]
        slots = slots.view(g.shape)
        padded_slots += slots.numel() - len(g.real)
        assert ((g.mask == 0) == ((slots != 0)[:, None, None, :] | torch.eye(g.shape[1], dtype=torch.bool))).all()
        rebuilt += [tuple([0] * (4 - g.shape[1]) + row) for row in slots.tolist()]
    assert sorted(rebuilt) == sorted(tuple(row) for row in items.tolist())
    assert (padded_slots > 0) == (parts == 1)  # one group per set mixes lengths
    last = items.reshape(-1)[rows.flat[rows.query_tokens[rows.n_full_tokens:]]]
    torch.testing.assert_close(last, items[rows.last_rows, -1])
    # all groups at once: the real slots of the concatenated groups are the packed tokens, in order
    assert rows.gather.tolist() == torch.cat([g.gather for g in rows.groups]).tolist()
    assert rows.gather[rows.real].tolist() == list(range(len(tokens)))
    # the last block: every token of the first set, then one (its last) per row of the second
    behind = []  # the slot behind each output of the last block, group by group
    for k, g in enumerate(rows.groups):
        n, w = g.shape
        own = torch.arange(n) * w + w - 1 if g.last_only else torch.arange(n * w)
        behind.append(own + sum(rows.slot_counts[:k]))
    assert rows.gather[torch.cat(behind)[rows.real_last]].tolist() == rows.query_tokens.tolist()
    with pytest.raises(ValueError, match="at least one item"):
        PackedRows(torch.zeros(2, 3, dtype=torch.long), n_full=1)


@pytest.mark.parametrize("additive", [False, True])
def test_attention_with_dropout_on_cpu_is_sdpa_math_with_a_byte_mask(additive):
    """Training mode computes attention by hand (byte-mask dropout); without the drop it is SDPA's result."""
    block = make_encoder().blocks[0]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 8, generator=g) for _ in range(3))
    allowed = attention_mask(torch.tensor([[0, 0, 1, 2, 3], [0, 4, 5, 6, 7], [1, 2, 3, 4, 5]]), causal=False)
    mask = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf")) if additive else allowed
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    block.train()
    dropped = block.attend(q, k, v, mask)
    assert not torch.allclose(dropped, expected)  # attention dropout (p = 0.5) is on
    block.attn_drop = torch.nn.Identity()
    torch.testing.assert_close(block.attend(q, k, v, mask), expected)


@pytest.mark.parametrize("causal", [True, False])
def test_last_state_is_the_full_pass_at_the_newest_position(causal):
    enc = make_encoder()
    items = left_padded_rows([1, 3, 8, 5, 2], width=8)
    torch.testing.assert_close(enc.last_state(items, causal), enc(items, causal)[:, -1])
    one_layer = SequenceEncoder(n_items=20, cfg=EncoderConfig(d=16, n_layers=1, n_heads=2, max_len=8)).eval()
    torch.testing.assert_close(one_layer.last_state(items, causal), one_layer(items, causal)[:, -1])

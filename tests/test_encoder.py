"""Attention masking of the shared encoder: padding is invisible, causal mode never sees the future."""

import torch

from s3rec.models.encoder import EncoderConfig, SequenceEncoder, attention_mask


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

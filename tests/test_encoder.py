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


def test_encode_views_matches_the_full_pass_and_its_gradients():
    enc = make_encoder()
    items = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 9, 8, 7, 6], [0, 0, 0, 3, 4, 5, 6, 7],
                          [0, 0, 0, 0, 0, 0, 2, 21]])
    weights = torch.randn(2, 8, 16), torch.randn(2, 16)

    def grads(views):
        enc.zero_grad()
        F_seq, F_last = views()
        ((F_seq * weights[0]).sum() + (F_last * weights[1]).sum()).backward()
        return [p.grad.clone() for p in enc.parameters() if p.grad is not None]

    full = enc(items, causal=False)
    F_seq, F_last = enc.encode_views(items, 2)
    torch.testing.assert_close(F_seq, full[:2])
    torch.testing.assert_close(F_last, full[2:, -1])  # only the last query computed for these rows
    reference = grads(lambda: (enc(items, False)[:2], enc(items, False)[2:, -1]))
    for a, b in zip(grads(lambda: enc.encode_views(items, 2)), reference):
        torch.testing.assert_close(a, b)
    assert enc.encode_views(items, 0)[0].shape == (0, 8, 16)
    assert enc.encode_views(items, 4)[1].shape == (0, 16)

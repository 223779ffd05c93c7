"Property tests for miniconv.color: many random shapes, more than fit in the notebook."
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from miniconv.color import channelwise_conv, channel_responses, conv_nparams, to_rgb
from miniconv.im2col import conv2d as im2col_conv2d

@st.composite
def conv_case(draw):
    ni, nf = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(kh, kh+6)), draw(st.integers(kw, kw+6))
    bs = draw(st.sampled_from([None, 1, 3]))
    seed, bias = draw(st.integers(0, 2**16)), draw(st.booleans())
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*([] if bs is None else [bs]), ni, h, w, generator=g, dtype=torch.float64)
    wt = torch.randn(nf, ni, kh, kw, generator=g, dtype=torch.float64)
    b = torch.randn(nf, generator=g, dtype=torch.float64) if bias else None
    return x, wt, b

@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_channelwise_conv_matches_conv2d(case):
    x, wt, b = case
    xb = x if x.ndim == 4 else x[None]
    exp = F.conv2d(xb, wt, b)
    res = channelwise_conv(x, wt, b)
    assert res.shape == (exp.shape if x.ndim == 4 else exp.shape[1:])
    torch.testing.assert_close(res, exp if x.ndim == 4 else exp[0])
    torch.testing.assert_close(res if x.ndim == 4 else res[None], im2col_conv2d(xb, wt, b))  # the im2col chapter's conv2d
    # the per-channel responses add up to the convolution, bias aside
    torch.testing.assert_close(channel_responses(x, wt).sum(-3), channelwise_conv(x, wt))

@settings(max_examples=40, deadline=None)
@given(conv_case(), st.integers(1, 3))
def test_channel_mismatch_names_both(case, extra):
    x, wt, _ = case
    bad = torch.cat([x, x[..., :1, :, :].repeat_interleave(extra, -3)], -3)
    with pytest.raises(ValueError) as e: channelwise_conv(bad, wt)
    msg = str(e.value)
    assert f"x has {bad.shape[-3]} channels (shape {tuple(bad.shape)})" in msg
    assert f"ch_in={wt.shape[1]} (shape {tuple(wt.shape)})" in msg

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.sampled_from([(), (2,)]))
def test_to_rgb_rule(c, h, w, lead):
    im = torch.rand(*lead, c, h, w)
    res = to_rgb(im)
    assert res.shape == (*lead, 3, h, w)
    if c == 3: assert torch.equal(res, im)
    if c == 4: assert torch.equal(res, im[..., :3, :, :])
    if c in (1, 2):
        for i in range(3): assert torch.equal(res[..., i, :, :], im[..., 0, :, :])

@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 7), st.booleans())
@settings(max_examples=60, deadline=None)
def test_conv_nparams_matches_nn(ni, nf, ks, bias):
    m = torch.nn.Conv2d(ni, nf, ks, bias=bias)
    assert conv_nparams(ni, nf, ks, bias) == sum(p.numel() for p in m.parameters())



import miniconv.color as C

@pytest.mark.parametrize('fn', ['channelwise_conv', 'channel_responses'])
def test_checks_once(fn, monkeypatch):
    "check_conv runs once per call, also when one public function's work overlaps another's"
    calls, real = [], C.check_conv
    monkeypatch.setattr(C, 'check_conv', lambda *a, **k: calls.append(a) or real(*a, **k))
    getattr(C, fn)(torch.randn(2, 3, 6, 7), torch.randn(4, 3, 3, 2))
    assert len(calls) == 1

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


# --- Issue 16 §5: empty batches and channel axes give what F.conv2d gives; where F.conv2d raises, a ValueError says why.
import miniconv.color as C

@pytest.mark.parametrize('xs,ws', [((0, 3, 10, 12), (4, 3, 3, 3)),   # an empty batch: (0, 4, 8, 10)
                                   ((2, 0, 10, 12), (4, 0, 3, 3)),   # no input channels: F.conv2d gives (2, 0, 8, 10)
                                   ((0, 10, 12), (4, 0, 3, 3)),      # the same, one image
                                   ((0, 0, 5, 5), (2, 0, 1, 1))])
@pytest.mark.parametrize('with_bias', [False, True])
def test_empty_axes_match_conv2d(xs, ws, with_bias):
    x, wt = torch.randn(xs), torch.randn(ws)
    b = torch.randn(ws[0]) if with_bias else None
    ref = F.conv2d(x if x.ndim == 4 else x[None], wt, b)
    res = channelwise_conv(x, wt, b)
    assert res.shape == (ref.shape if x.ndim == 4 else ref.shape[1:])
    assert res.dtype == ref.dtype
    nf, ni = ws[:2]
    assert channel_responses(x, wt).shape == (*xs[:-3], nf, ni, xs[-2]-ws[-2]+1, xs[-1]-ws[-1]+1)

@pytest.mark.parametrize('xs,ws,msg', [((2, 3, 10, 12), (0, 3, 3, 3), 'weight has no output channels'),  # F.conv2d raises too
                                       ((3, 10, 12), (0, 3, 3, 3), 'weight has no output channels'),
                                       ((2, 3, 10, 12), (4, 3, 0, 3), 'weight has empty kernels'),
                                       ((2, 3, 0, 12), (4, 3, 3, 3), 'x has an empty image'),
                                       ((2, 3, 2, 12), (4, 3, 3, 3), 'kernel size 3 .* is larger than the padded input 2')])
def test_what_conv2d_refuses_is_refused(xs, ws, msg):
    with pytest.raises(RuntimeError): F.conv2d(torch.randn(xs) if len(xs) == 4 else torch.randn(xs)[None], torch.randn(ws))
    for f in (channelwise_conv, channel_responses):
        with pytest.raises(ValueError, match=msg): f(torch.randn(xs), torch.randn(ws))

def test_bias_of_another_dtype_is_named():
    with pytest.raises(ValueError, match='bias is torch.float64 but weight is torch.float32'):
        channelwise_conv(torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3), torch.randn(2, dtype=torch.float64))

@pytest.mark.parametrize('img_shape,k_shape,msg', [((5, 5), (0, 3), 'kernel must not be empty'), ((5, 5), (2, 0), 'kernel must not be empty'),
                                                   ((0, 5), (1, 1), 'img must not be empty'), ((0, 0), (0, 0), 'must not be empty')])
def test_corr2d_refuses_empty(img_shape, k_shape, msg):
    "corr2d once returned the int 0 for an empty kernel"
    with pytest.raises(ValueError, match=msg): C.corr2d(torch.ones(img_shape), torch.ones(k_shape))

@pytest.mark.parametrize('fn', ['channelwise_conv', 'channel_responses'])
def test_checks_once(fn, monkeypatch):
    "check_conv runs once per call (channelwise_conv used to check, then call channel_responses, which checked again)"
    calls, real = [], C.check_conv
    monkeypatch.setattr(C, 'check_conv', lambda *a, **k: calls.append(a) or real(*a, **k))
    getattr(C, fn)(torch.randn(2, 3, 6, 7), torch.randn(4, 3, 3, 2))
    assert len(calls) == 1

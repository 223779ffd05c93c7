"Property tests: `im2col`, `col2im`, `conv2d` and `conv_unfold` against `F.unfold`, `F.fold` and `F.conv2d` on random configurations"

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from helpers import as_arg, pair, same_as_torch
from torch.testing import assert_close

import miniconv.im2col as m
from miniconv.im2col import im2col, im2col_loop, col2im, conv2d, conv_unfold, patches, speed_table, conv_specs

TOL = dict(rtol=1e-4, atol=1e-4)  # float32: sums of up to a few hundred products, in a different order than PyTorch's
pytestmark = [pytest.mark.usefixtures('one_thread'),  # see conftest.py
              pytest.mark.filterwarnings("ignore:Using padding='same'")]  # PyTorch's note that an even 'same' kernel needs a padded copy


@st.composite
def configs(draw, grouped=False):
    "A random batch, kernel, stride, padding and dilation for which the kernel fits the padded input; with `grouped`, also groups, 'same'/'valid' and one image"
    n, ci, co, g = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5)), 1
    ks, stride, pad, dil = draw(pair(1, 4)), draw(pair(1, 3)), draw(pair(0, 2)), draw(pair(1, 3))
    one = False
    if grouped:
        kind = draw(st.sampled_from(['groups', 'depthwise', 'depthwise', 'same', 'valid', 'plain']))
        if kind in ('groups', 'same', 'valid'): g = draw(st.integers(1, 3)); ci, co = g*draw(st.integers(1, 3)), g*draw(st.integers(1, 3))
        if kind == 'depthwise': g = ci = co = draw(st.integers(1, 6))
        if kind == 'same': stride, pad = (1, 1), 'same'
        if kind == 'valid': pad = 'valid'
        one = draw(st.booleans())
    cl = grouped and not one and draw(st.booleans())   # an input in channels-last memory
    pp = (0, 0) if isinstance(pad, str) else pad
    span = [d*(k-1) + 1 for k, d in zip(ks, dil)]
    h, w = (draw(st.integers(max(1, s - 2*p), max(1, s - 2*p) + 7)) for s, p in zip(span, pp))
    return dict(n=n, ci=ci, co=co, g=g, h=h, w=w, ks=ks, stride=stride, padding=pad, dilation=dil, one=one, cl=cl,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))

def tensors(c):
    g = torch.Generator().manual_seed(c['seed'])
    x = torch.randn(c['n'], c['ci'], c['h'], c['w'], generator=g)
    wt = torch.randn(c['co'], c['ci']//c['g'], *c['ks'], generator=g)
    b = torch.randn(c['co'], generator=g) if c['bias'] else None
    kw = {k: c[k] if isinstance(c[k], str) else as_arg(c[k]) for k in ('stride', 'padding', 'dilation')}
    if c['g'] > 1: kw['groups'] = c['g']
    if c.get('cl'): x = x.contiguous(memory_format=torch.channels_last)
    return (x[0] if c['one'] else x), wt, b, kw

def check_against_pytorch(conv, c):
    "Output and the gradients for x, weight and bias of `conv` equal those of `F.conv2d`"
    x, wt, b, kw = tensors(c)
    same_as_torch(conv, F.conv2d, x, wt, b, kw, c['seed'], TOL)

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=400, deadline=None, derandomize=True)
@given(configs())
def test_conv2d_matches_pytorch(c): check_against_pytorch(conv2d, c)

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=400, deadline=None, derandomize=True)
@given(configs(grouped=True))
def test_conv2d_groups_same_unbatched_match_pytorch(c):
    "Groups (depthwise in a third of the cases), 'same'/'valid' padding and one image [C, H, W]: output and every gradient"
    check_against_pytorch(conv2d, c)

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=150, deadline=None, derandomize=True)
@given(configs(grouped=True))
def test_conv_unfold_matches_pytorch(c): check_against_pytorch(conv_unfold, c)

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=150, deadline=None, derandomize=True)
@given(configs(grouped=True))
def test_conv2d_in_slices_of_the_batch(c):
    "The backward pass folds the input gradient back a slice of the batch at a time: with one image per slice, every answer is the same"
    old, m._CHUNK = m._CHUNK, 1
    try: check_against_pytorch(conv2d, c)
    finally: m._CHUNK = old

def test_depthwise_takes_its_shortcut():
    "groups == C goes down the depthwise path, with no im2col matrix (the memory layout of every path is tested in test_dropin.py)"
    x, w = torch.randn(2, 6, 9, 7, requires_grad=True), torch.randn(12, 1, 3, 3)
    assert type(conv2d(x, w, groups=6).grad_fn).__name__ == '_DepthwiseBackward'
    assert type(conv2d(x, torch.randn(4, 3, 3, 3), groups=2).grad_fn).__name__ == '_Conv2dBackward'
    assert type(conv2d(x[:, :1], torch.randn(4, 1, 3, 3)).grad_fn).__name__ == '_Conv2dBackward'   # one channel: im2col, not depthwise

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
def test_grouped_configs_cover_what_they_claim():
    "The strategy really draws depthwise, grouped, 'same', 'valid' and unbatched cases, with H != W and asymmetric strides"
    seen = []
    @settings(max_examples=400, deadline=None, derandomize=True)
    @given(configs(grouped=True))
    def collect(c): seen.append(c)
    collect()
    assert len(seen) >= 300
    assert sum(c['g'] == c['ci'] == c['co'] > 1 for c in seen) >= 50                 # depthwise
    assert sum(1 < c['g'] < c['ci'] for c in seen) >= 30                            # grouped, several channels per group
    assert sum(c['padding'] == 'same' for c in seen) >= 30 and sum(c['padding'] == 'valid' for c in seen) >= 30
    assert sum(c['one'] for c in seen) >= 100 and sum(c['h'] != c['w'] for c in seen) >= 200 and sum(c['cl'] for c in seen) >= 40
    assert sum(c['stride'][0] != c['stride'][1] for c in seen) >= 50
    assert sum(not isinstance(c['padding'], str) and c['padding'][0] != c['padding'][1] for c in seen) >= 30

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs())
def test_im2col_matches_unfold(c):
    x, _, _, kw = tensors(c)
    ks = as_arg(c['ks'])
    ref = F.unfold(x, ks, **kw)
    assert_close(im2col(x, ks, **kw), ref, rtol=0, atol=0)
    assert_close(im2col_loop(x, ks, **kw), ref, rtol=0, atol=0)
    assert_close(col2im(ref, (c['h'], c['w']), ks, **kw), F.fold(ref, (c['h'], c['w']), ks, **kw), **TOL)

@settings(max_examples=200, deadline=None, derandomize=True)
@given(ks=pair(1, 4), stride=pair(1, 3), dil=pair(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), pad=pair(0, 2), seed=st.integers(0, 99))
def test_patches_ceil_mode_is_max_pooling(ks, stride, dil, h, w, pad, seed):
    "With ceil_mode and -inf padding, the largest value of each window is F.max_pool2d, overhanging windows included"
    pad = tuple(min(p, k//2) for p, k in zip(pad, ks))
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed))
    try: ref = F.max_pool2d(x, ks, stride, pad, dil, ceil_mode=True)
    except RuntimeError: return  # PyTorch refuses (output too small); its rule is tested in test_pooling
    p = patches(x, ks, stride, pad, dil, ceil_mode=True, value=float('-inf'))
    assert_close(p.flatten(2, 3).amax(2), ref, rtol=0, atol=0)

@settings(max_examples=300, deadline=None, derandomize=True)
@given(ks=pair(1, 4), stride=pair(1, 4), dil=pair(1, 3), pad=pair(0, 2), extra=pair(0, 5), cl=st.booleans(), seed=st.integers(0, 99))
def test_padded_fold_is_col2im(ks, stride, dil, pad, extra, cl, seed):
    "The backward pass's fold into a padded image, taps whose windows don't overlap added in one step (and the first copied where they tile), is F.fold, in either memory layout"
    H, W = (d*(k-1) + 1 - 2*p + e for k, d, p, e in zip(ks, dil, pad, extra))
    assume(H >= 1 and W >= 1)
    oh, ow = ((n + 2*p - d*(k-1) - 1)//s + 1 for n, k, s, p, d in zip((H, W), ks, stride, pad, dil))
    cols = torch.randn(2, 3*ks[0]*ks[1], oh*ow, generator=torch.Generator().manual_seed(seed))
    got = m._padded_fold(cols.view(2, 1, 3, *ks, oh, ow), (H, W), stride, pad, dil, cl)   # [N, G, Cg, H, W]
    assert_close(got.flatten(1, 2), F.fold(cols, (H, W), ks, dilation=dil, padding=pad, stride=stride), **TOL)

@pytest.mark.parametrize('conv', [conv2d, conv_unfold])
@pytest.mark.parametrize('xs,ws', [((2, 0, 5, 6), (4, 0, 3, 3)), ((0, 3, 5, 6), (4, 3, 3, 3)), ((0, 5, 6), (4, 0, 3, 3)),
                                   ((0, 4, 5, 6), (4, 2, 3, 3))])
def test_empty_inputs_give_what_pytorch_gives(conv, xs, ws):
    "0 input channels (PyTorch answers an empty [N, 0, oh, ow]) and batch 0: same shape, values and gradients as F.conv2d"
    groups = 2 if xs[-3] == 4 else 1
    x, w, b = torch.zeros(xs, requires_grad=True), torch.randn(ws, requires_grad=True), torch.randn(ws[0], requires_grad=True)
    out, ref = conv(x, w, b, padding=1, groups=groups), F.conv2d(x, w, b, padding=1, groups=groups)
    assert out.shape == ref.shape
    for a, r in zip(torch.autograd.grad(out.sum(), (x, w, b)), torch.autograd.grad(ref.sum(), (x, w, b))): assert_close(a, r, rtol=0, atol=0)

@pytest.mark.parametrize('args,kw,msg', [
    ((torch.zeros(2, 3, 8, 8), torch.zeros(4, 1, 3, 3)), {}, '3 channels'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(dilation=3), 'spans (7, 7)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(stride=0), 'stride=0'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(dilation=(1, 0)), 'dilation=(1, 0)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(padding=-1), 'padding=-1'),
    ((torch.zeros(5, 5), torch.zeros(1, 1, 3, 3)), {}, 'shape (5, 5)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 3, 3)), {}, 'shape (1, 3, 3)'),
    ((torch.zeros(1, 4, 5, 5), torch.zeros(6, 2, 3, 3)), dict(groups=3), 'groups=3 must divide the input channels (4'),
    ((torch.zeros(1, 4, 5, 5), torch.zeros(6, 4, 3, 3)), dict(groups=0), 'groups=0'),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(0, 3, 3, 3)), {}, 'no output channels: shape (0, 3, 3, 3)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(padding='same', stride=2), "padding='same' needs stride 1, got stride=2"),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(padding='full'), "padding='full'"),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), torch.zeros(1, dtype=torch.float64)), {}, 'bias is torch.float64'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 6, 3)), dict(padding=0), 'larger than the padded input (5, 5)'),
    ((torch.zeros(2, 4, 8, 8), torch.zeros(6, 2, 3, 3)), dict(groups=3), 'groups=3 must divide the input channels (4'),
    ((torch.zeros(2, 3, 8, 8), torch.zeros(4, 3, 3, 3)), dict(dilation=(1, -1)), 'dilation=(1, -1)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(stride=(1, 2, 3)), 'stride=(1, 2, 3)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(stride=2.5), 'stride=2.5'),
    ((torch.zeros(1, 1, 5, 5, dtype=torch.uint8), torch.zeros(1, 1, 3, 3)), {}, 'x.float()/255'),
])
@pytest.mark.parametrize('conv', [conv2d, conv_unfold])
def test_bad_input_fails_before_any_work(monkeypatch, conv, args, kw, msg):
    "Every bad argument raises a ValueError naming it, and no padding, view or product is attempted"
    def boom(*a, **k): raise AssertionError('work started before the arguments were checked')
    for name in ('pad', 'unfold'): monkeypatch.setattr(m.F, name, boom)
    for f in (m._Conv2d, m._Depthwise): monkeypatch.setattr(f, 'apply', boom)
    for name in ('patches', '_pad', '_window_view'): monkeypatch.setattr(m, name, boom)
    with pytest.raises(ValueError) as e: conv(*args, **kw)
    assert msg in str(e.value)

@pytest.mark.parametrize('f,msg', [(lambda: im2col(torch.zeros(1, 1, 5, 5), 3, dilation=-1), 'dilation=-1'),
                                   (lambda: im2col(torch.zeros(1, 1, 5, 5), 3, padding=-1), 'padding=-1'),
                                   (lambda: im2col(torch.zeros(1, 1, 5, 5), (3, 3, 3)), 'ks=(3, 3, 3)'),
                                   (lambda: im2col(torch.zeros(1, 1, 5, 5), 2.5), 'ks=2.5'),
                                   (lambda: im2col(torch.zeros(5, 5), 2), 'shape (5, 5)'),
                                   (lambda: col2im(torch.zeros(2, 18, 36), (7, 9), 3), '(2, 18, 36)')])
def test_bad_im2col_arguments_fail_before_any_work(monkeypatch, f, msg):
    "im2col, patches and col2im name the bad argument, before any view is built"
    def boom(*a, **k): raise AssertionError('work started before the arguments were checked')
    for name in ('_pad', '_window_view', '_fold_'): monkeypatch.setattr(m, name, boom)
    with pytest.raises(ValueError) as e: f()
    assert msg in str(e.value)

def test_speed_table_rows():
    "The training pass: its first-layer row asks for no input gradient, and its total adds the later layers' fwd+bwd rows"
    from torch import nn
    specs = conv_specs(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Conv2d(2, 3, 3, padding=1)), 8)
    df = speed_table(specs, bs=2, repeats=1, threads=1, name='tiny')
    assert [p for c, p in df.index if c == 'tiny, bs=2'] == ['forward', 'train', 'fwd+bwd']
    assert [c for c, p in df.index if p == 'train'] == ['conv 1->2, 8x8', 'tiny, bs=2']
    both = df.xs('fwd+bwd', level='pass')
    for col in ('unfold', 'conv2d', 'F.conv2d'):
        assert df.loc[('tiny, bs=2', 'train'), col] == pytest.approx(df.loc[('conv 1->2, 8x8', 'train'), col] + both.loc['conv 2->3, 4x4', col])
        assert df.loc[('tiny, bs=2', 'fwd+bwd'), col] == pytest.approx(both.iloc[:-1][col].sum())
    with pytest.raises(ValueError, match='specs is empty'): speed_table([], bs=2)
    with pytest.raises(ValueError, match='repeats=0'): speed_table(specs, repeats=0)
    with pytest.raises(ValueError, match="'sundial'"): speed_table(specs, clock='sundial')

def test_training_pass_skips_the_input_gradient(monkeypatch):
    "The 'train' pass of the first layer really runs backward without the input gradient, for our conv2d"
    seen = []
    orig = m._Conv2d.backward
    def spy(ctx, *grads):
        seen.append(ctx.needs_input_grad[0])
        return orig(ctx, *grads)
    monkeypatch.setattr(m._Conv2d, 'backward', staticmethod(spy))
    from torch import nn
    x, w, b = (torch.randn(s, requires_grad=True) for s in ((2, 1, 6, 6), (2, 1, 3, 3), (2,)))
    go = torch.randn(2, 2, 4, 4)
    m._fwd_bwd(conv2d, x, w, b, go, {}, need_x=False)(); m._fwd_bwd(conv2d, x, w, b, go, {})()
    assert seen == [False, True]

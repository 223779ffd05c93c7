"Property tests: `im2col`, `col2im` and `conv2d` against `F.unfold`, `F.fold` and `F.conv2d` on random configurations"
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.testing import assert_close

import miniconv.im2col as m
from miniconv.im2col import im2col, im2col_loop, col2im, conv2d

TOL = dict(rtol=1e-4, atol=1e-4)  # float32: sums of up to a few hundred products, in a different order than PyTorch's
pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py

pair = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))
as_arg = lambda t: t[0] if t[0] == t[1] else t  # pass equal pairs as one int, so both forms get tested

@st.composite
def configs(draw):
    "A random batch, kernel, stride, padding and dilation for which the kernel fits the padded input"
    n, ci, co = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    ks, stride, pad, dil = draw(pair(1, 4)), draw(pair(1, 3)), draw(pair(0, 2)), draw(pair(1, 3))
    span = [d*(k-1) + 1 for k, d in zip(ks, dil)]
    h, w = (draw(st.integers(max(1, s - 2*p), max(1, s - 2*p) + 7)) for s, p in zip(span, pad))
    return dict(n=n, ci=ci, co=co, h=h, w=w, ks=ks, stride=stride, padding=pad, dilation=dil,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))

def tensors(c):
    g = torch.Generator().manual_seed(c['seed'])
    x = torch.randn(c['n'], c['ci'], c['h'], c['w'], generator=g)
    wt = torch.randn(c['co'], c['ci'], *c['ks'], generator=g)
    b = torch.randn(c['co'], generator=g) if c['bias'] else None
    return x, wt, b, {k: as_arg(c[k]) for k in ('stride', 'padding', 'dilation')}

@settings(max_examples=400, deadline=None, derandomize=True)
@given(configs())
def test_conv2d_matches_pytorch(c):
    x, wt, b, kw = tensors(c)
    leaves = [t.clone().requires_grad_() for t in (x, wt) + ((b,) if b is not None else ())]
    refs = [t.clone().requires_grad_() for t in leaves]
    out = conv2d(*leaves[:2], leaves[2] if b is not None else None, **kw)
    ref = F.conv2d(*refs[:2], refs[2] if b is not None else None, **kw)
    assert out.shape == ref.shape
    assert_close(out, ref, **TOL)
    go = torch.randn(ref.shape, generator=torch.Generator().manual_seed(c['seed'] + 1))
    for a, r in zip(torch.autograd.grad(out, leaves, go), torch.autograd.grad(ref, refs, go)): assert_close(a, r, **TOL)

@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs())
def test_im2col_matches_unfold(c):
    x, _, _, kw = tensors(c)
    ks = as_arg(c['ks'])
    ref = F.unfold(x, ks, **kw)
    assert_close(im2col(x, ks, **kw), ref, rtol=0, atol=0)
    assert_close(im2col_loop(x, ks, **kw), ref, rtol=0, atol=0)
    assert_close(col2im(ref, (c['h'], c['w']), ks, **kw), F.fold(ref, (c['h'], c['w']), ks, **kw), **TOL)

@pytest.mark.parametrize('args,kw,msg', [
    ((torch.zeros(2, 3, 8, 8), torch.zeros(4, 1, 3, 3)), {}, '3 channels'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(dilation=3), 'spans (7, 7)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(stride=0), 'stride=0'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(dilation=(1, 0)), 'dilation=(1, 0)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), dict(padding=-1), 'padding=-1'),
    ((torch.zeros(5, 5), torch.zeros(1, 1, 3, 3)), {}, 'shape (5, 5)'),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 3, 3)), {}, 'shape (1, 3, 3)'),
])
def test_bad_input_fails_before_any_work(monkeypatch, args, kw, msg):
    "Every bad argument raises a ValueError naming it, and no padding, view or product is attempted"
    def boom(*a, **k): raise AssertionError('work started before the arguments were checked')
    for name in ('pad', 'unfold'): monkeypatch.setattr(m.F, name, boom)
    monkeypatch.setattr(m._Conv2d, 'apply', boom)
    monkeypatch.setattr(m, 'patches', boom)
    with pytest.raises(ValueError) as e: conv2d(*args, **kw)
    assert msg in str(e.value)

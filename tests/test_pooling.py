"Property tests: `max_pool2d` (with its indices), `max_unpool2d`, `avg_pool2d` and `global_avg_pool` against PyTorch on random configurations, forward and gradients; and every refusal's message"
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers import as_arg, pair
from torch.testing import assert_close

import miniconv.pooling as m
from miniconv.pooling import max_pool2d, max_unpool2d, avg_pool2d, global_avg_pool

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py
TOL = dict(rtol=1e-5, atol=1e-5)

@st.composite
def configs(draw):
    "A random input (batched, one image, or an empty batch; random or tied values) and pooling arguments within PyTorch's rules"
    ks = draw(pair(1, 4))
    pad = tuple(draw(st.integers(0, k//2)) for k in ks)
    stride = draw(st.one_of(st.none(), pair(1, 3)))
    c = dict(ks=ks, stride=stride, padding=pad, dilation=draw(pair(1, 3)), ceil_mode=draw(st.booleans()),
             count_include_pad=draw(st.booleans()), divisor=draw(st.sampled_from([None, None, None, 1, 3, -2])),
             n=draw(st.sampled_from([0, 1, 2, 3])), one=draw(st.booleans()),
             c=draw(st.integers(1, 3)), h=draw(st.integers(1, 10)), w=draw(st.integers(1, 10)),
             ties=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))
    if c['one']: c['n'] = 1
    return c

def make_x(c):
    g = torch.Generator().manual_seed(c['seed'])
    shape = (c['n'], c['c'], c['h'], c['w'])
    x = torch.randint(0, 3, shape, generator=g).float() if c['ties'] else torch.randn(shape, generator=g)  # ties: many equal maxima
    return x[0] if c['one'] else x

def args(c, kind):
    st_ = None if c['stride'] is None else as_arg(c['stride'])
    if kind == 'max': return (as_arg(c['ks']), st_, as_arg(c['padding']), as_arg(c['dilation']), c['ceil_mode'])
    return (as_arg(c['ks']), st_, as_arg(c['padding']), c['ceil_mode'], c['count_include_pad'], c['divisor'])

def compare(ours, theirs, c, kind):
    "Same refusals, same output, same gradient as PyTorch; returns what was checked"
    x = make_x(c)
    try: ref = theirs(x, *args(c, kind))
    except RuntimeError:
        with pytest.raises(ValueError): ours(x, *args(c, kind))
        return 'both refuse'
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    if kind == 'max': (out, idx), (ref, ridx) = (f(t, *args(c, kind), return_indices=True) for f, t in ((ours, xa), (theirs, xb)))
    else: out, ref = ours(xa, *args(c, kind)), theirs(xb, *args(c, kind))
    assert out.shape == ref.shape
    assert_close(out, ref, **TOL)
    if kind == 'max': same_indices(x, c, out.detach(), idx, ref.detach(), ridx)
    if ref.numel() == 0: return 'empty'
    if ref.isinf().any(): return 'padding-only window'  # PyTorch's backward is undefined there (test below); forward agrees
    go = torch.randn(ref.shape, generator=torch.Generator().manual_seed(c['seed'] + 1))
    assert_close(torch.autograd.grad(out, xa, go)[0], torch.autograd.grad(ref, xb, go)[0], **TOL)
    dil = c['dilation'] if kind == 'max' else (1, 1)
    floor = [(n + 2*p - d*(k-1) - 1)//s + 1 for n, k, s, p, d in zip((c['h'], c['w']), c['ks'], c['stride'] or c['ks'], c['padding'], dil)]
    return 'overhang' if list(ref.shape[-2:]) != floor else 'agree'   # ceil_mode added a window that hangs over the edge

def same_indices(x, c, out, idx, ref, ridx):
    "return_indices gives PyTorch's indices; where every window has a pixel, max_unpool2d puts the values back as PyTorch's does"
    assert torch.equal(idx, ridx)
    if ref.numel() and c['dilation'] == (1, 1) and not ref.isinf().any():   # PyTorch's unpooling has no dilation
        size = x.shape[-2:]
        kw = dict(kernel_size=as_arg(c['ks']), stride=None if c['stride'] is None else as_arg(c['stride']), padding=as_arg(c['padding']), output_size=size)
        assert torch.equal(max_unpool2d(out, idx, kw['kernel_size'], kw['stride'], kw['padding'], size), F.max_unpool2d(ref, ridx, **kw))

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@pytest.mark.parametrize('kind,ours,theirs', [('max', max_pool2d, F.max_pool2d), ('avg', avg_pool2d, F.avg_pool2d)])
def test_pooling_matches_pytorch(kind, ours, theirs):
    "At least 300 random configurations each: forward and gradient equal PyTorch's, overhanging ceil_mode windows included"
    seen = []
    @settings(max_examples=800, deadline=None, derandomize=True)
    @given(configs())
    def run(c): seen.append(compare(ours, theirs, c, kind))
    run()
    counts = {k: seen.count(k) for k in set(seen)}
    assert counts.get('agree', 0) + counts.get('overhang', 0) >= 300, counts
    assert counts.get('overhang', 0) >= 50, counts       # windows that hang over the edge really were tested
    assert counts.get('both refuse', 0) >= 20, counts    # and so were PyTorch's argument rules

def test_window_of_padding_only():
    "With dilation a window can hold only padding: -inf like PyTorch, PyTorch's index, and no gradient (PyTorch's backward writes to an arbitrary pixel there)"
    x = torch.randn(2, 1, 6, 2, requires_grad=True)
    out, idx = max_pool2d(x, 2, padding=(0, 1), dilation=(2, 3), return_indices=True)
    ref, ridx = F.max_pool2d(x, 2, padding=(0, 1), dilation=(2, 3), return_indices=True)
    assert_close(out, ref)
    assert out.isinf().all() and torch.equal(idx, ridx)
    assert (torch.autograd.grad(out.clamp(min=0).sum(), x)[0] == 0).all()

def test_unpool_gradient_is_a_gather():
    "max_unpool2d's gradient, and its second derivative, are PyTorch's: each value's gradient is read from where it was put"
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    v = out.detach().requires_grad_()
    mine, ref = max_unpool2d(v, idx, 3, 2, 1, (8, 9)), F.max_unpool2d(v, idx, 3, 2, 1, (8, 9))
    go = torch.randn(ref.shape, dtype=torch.float64)
    gv = torch.autograd.grad(mine, v, go)[0]
    assert_close(gv, torch.autograd.grad(ref, v, go)[0])
    assert_close(gv, go.flatten(2).gather(2, idx.flatten(2)).view_as(v))
    assert torch.autograd.gradgradcheck(lambda t: max_unpool2d(t, idx, 3, 2, 1, (8, 9)), (v,))

def test_global_avg_pool():
    x = torch.randn(3, 4, 5, 6, requires_grad=True)
    out, ref = global_avg_pool(x), F.adaptive_avg_pool2d(x, 1).flatten(1)
    assert out.shape == (3, 4)
    assert_close(out, ref)
    go = torch.randn(3, 4)
    assert_close(torch.autograd.grad(out, x, go)[0], torch.autograd.grad(ref, x, go)[0])

@pytest.mark.parametrize('f,msg', [
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 2, padding=2), 'padding must be at most half the kernel size, got padding=2, ks=2'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 2, stride=0), 'stride must be a positive integer'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 3, padding=-1), 'padding must be a non-negative integer'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 3, dilation=0), 'dilation must be a positive integer'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 2, divisor_override=0), 'divisor_override must not be 0'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 2, divisor_override=1.5), 'divisor_override=1.5'),
    (lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 2), 'indices must be int64'),
    (lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3, dtype=torch.int64), 2), "of x's shape (1, 1, 2, 2)"),
    (lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 16), 2), 'indices must lie in [0, 16)'),
    (lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int64), 2, output_size=(6, 4)), 'output_size must be (H, W) within stride'),
    (lambda: max_unpool2d(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.int64), 2), 'shape (2, 2)'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 3, padding=(1, 2)), 'got padding=2, ks=3'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 0), 'ks must be a positive integer'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 2, stride=(1, 0)), 'stride must be a positive integer or a pair of them, got stride=(1, 0)'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 2, stride=-1), 'stride=-1'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5), 3, padding=-1), 'padding=-1'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 3, dilation=0), 'dilation=0'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 6), 'larger than the padded input'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5), 3, dilation=3), 'effective kernel size 7'),
    (lambda: max_pool2d(torch.zeros(5, 5), 2), 'shape (5, 5)'),
    (lambda: avg_pool2d(torch.zeros(1, 0, 5, 5), 2), 'shape (1, 0, 5, 5)'),
    (lambda: max_pool2d(torch.zeros(1, 1, 5, 5, dtype=torch.uint8), 2), 'x.float()/255'),
    (lambda: avg_pool2d(torch.zeros(1, 1, 5, 5, dtype=torch.int64), 2), 'torch.int64'),
    (lambda: max_pool2d('an image', 2), 'got str'),
    (lambda: global_avg_pool(torch.zeros(2, 3, 4)), 'shape (2, 3, 4)'),
    (lambda: global_avg_pool(torch.zeros(2, 3, 0, 4)), 'only the batch may be empty'),
])
def test_bad_arguments_fail_before_any_work(monkeypatch, f, msg):
    "Every bad argument raises a ValueError naming it, and no window view is built"
    def boom(*a, **k): raise AssertionError('work started before the arguments were checked')
    for name in ('_pad', '_window_view'): monkeypatch.setattr(m, name, boom)
    monkeypatch.setattr(torch.Tensor, 'scatter', boom)
    with pytest.raises(ValueError) as e: f()
    assert msg in str(e.value)

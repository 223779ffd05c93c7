"Property tests: `conv_transpose2d` (groups included) against `F.conv_transpose2d` on random configurations, the adjoint identity with `conv2d`, and every refusal's message"
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers import as_arg, pair, same_as_torch
from torch.testing import assert_close

import miniconv.transposed as m
from miniconv.transposed import conv_transpose2d
from miniconv.im2col import conv2d

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py
TOL = dict(rtol=1e-4, atol=1e-4)

@st.composite
def configs(draw):
    "A random input, weight and geometry; output_padding below max(stride, dilation), so it may reach the stride when dilation is larger"
    stride, dil, g = draw(pair(1, 3)), draw(pair(1, 3)), draw(st.sampled_from([1, 1, 2, 3]))
    return dict(n=draw(st.sampled_from([0, 1, 2, 3])), one=draw(st.booleans()), g=g, ci=g*draw(st.integers(1, 2)), co=g*draw(st.integers(1, 2)),
                h=draw(st.integers(1, 6)), w=draw(st.integers(1, 6)), ks=draw(pair(1, 4)), stride=stride, dilation=dil,
                padding=draw(pair(0, 3)), output_padding=tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dil)),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))

def tensors(c, dtype=torch.float32):
    g = torch.Generator().manual_seed(c['seed'])
    x = torch.randn(max(c['n'], int(c['one'])), c['ci'], c['h'], c['w'], generator=g, dtype=dtype)
    w = torch.randn(c['ci'], c['co']//c['g'], *c['ks'], generator=g, dtype=dtype)
    b = torch.randn(c['co'], generator=g, dtype=dtype) if c['bias'] else None
    kw = {k: as_arg(c[k]) for k in ('stride', 'padding', 'output_padding', 'dilation')}
    if c['g'] > 1: kw['groups'] = c['g']
    return (x[0] if c['one'] else x), w, b, kw

def compare(c):
    x, w, b, kw = tensors(c)
    try: ref = F.conv_transpose2d(x, w, b, **kw)
    except RuntimeError:
        with pytest.raises(ValueError): conv_transpose2d(x, w, b, **kw)
        return 'both refuse'
    if 0 in ref.shape[-2:]:  # for an empty batch PyTorch returns an empty image for an output size of 0; we refuse, as everywhere
        with pytest.raises(ValueError, match='output size 0 is below 1'): conv_transpose2d(x, w, b, **kw)
        return 'empty output refused'
    same_as_torch(conv_transpose2d, F.conv_transpose2d, x, w, b, kw, c['seed'], TOL)
    return 'op reaches the stride' if any(o >= s for o, s in zip(c['output_padding'], c['stride'])) else 'agree'

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
def test_conv_transpose2d_matches_pytorch():
    "At least 300 random configurations: output and the gradients for x, weight and bias equal PyTorch's"
    seen, configs_seen = [], []
    @settings(max_examples=600, deadline=None, derandomize=True)
    @given(configs())
    def run(c): seen.append(compare(c)); configs_seen.append(c)
    run()
    counts = {k: seen.count(k) for k in set(seen)}
    assert counts.get('agree', 0) + counts.get('op reaches the stride', 0) >= 300, counts
    assert counts.get('op reaches the stride', 0) >= 20, counts   # output_padding >= stride (with dilation > stride) was tested
    assert counts.get('both refuse', 0) >= 20, counts
    assert sum(c['g'] > 1 for c in configs_seen) >= 100, 'grouped and depthwise cases were drawn'

@pytest.mark.slow   # a sweep of random configurations; test_dropin.py keeps a fast case of every op
@settings(max_examples=150, deadline=None, derandomize=True)
@given(configs())
def test_adjoint_identity(c):
    "<conv2d(x), y> == <x, conv_transpose2d(y)> in float64, groups included, with output_padding chosen so the sizes fit"
    c = {**c, 'n': 2, 'one': False}
    y, w, _, tkw = tensors(c, torch.float64)        # y: the transposed conv's input, [2, ci, h, w]; w: [ci, co/g, kh, kw]
    st_, pd_, dl = c['stride'], c['padding'], c['dilation']
    span = [d*(k-1) + 1 for k, d in zip(c['ks'], dl)]
    sizes = [(h-1)*s + sp - 2*p for h, s, sp, p in zip((c['h'], c['w']), st_, span, pd_)]   # the smallest input conv2d maps to y's size
    if min(sizes) < 1: return
    x = torch.randn(2, c['co'], *sizes, generator=torch.Generator().manual_seed(c['seed'] + 2), dtype=torch.float64)
    kw = dict(stride=st_, padding=pd_, dilation=dl, groups=c['g'])
    lhs = (conv2d(x, w, **kw)*y).sum()
    rhs = (x*conv_transpose2d(y, w, **kw)).sum()
    assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)

@settings(max_examples=100, deadline=None, derandomize=True)
@given(configs())
def test_input_gradient_is_a_convolution(c):
    "The gradient of conv_transpose2d for its input is conv2d of the output gradient with the same weight"
    x, w, b, kw = tensors({**c, 'n': 2, 'one': False})
    try: out = conv_transpose2d(x.requires_grad_(), w, b, **kw)
    except ValueError: return
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(c['seed'] + 3))
    gx = torch.autograd.grad(out, x, go)[0]
    conv = conv2d(go, w, stride=kw['stride'], padding=kw['padding'], dilation=kw['dilation'], groups=c['g'])
    assert_close(gx, conv[:, :, :x.shape[2], :x.shape[3]], **TOL)

@pytest.mark.parametrize('f,msg', [
    (lambda x, w: conv_transpose2d(x, w[:2]), 'x has 3 channels (shape (2, 3, 5, 4)) but weight [C_in, C_out/groups, kh, kw] expects C_in=2'),
    (lambda x, w: conv_transpose2d(x, w, groups=2), 'groups=2 must divide the input channels (3'),
    (lambda x, w: conv_transpose2d(x, w, groups=0), 'groups=0'),
    (lambda x, w: conv_transpose2d(x, w, torch.zeros(4), groups=3), 'bias must have shape (6,)'),
    (lambda x, w: conv_transpose2d(x, w, stride=0), 'stride=0'),
    (lambda x, w: conv_transpose2d(x, w, stride=(2, -1)), 'stride=(2, -1)'),
    (lambda x, w: conv_transpose2d(x, w, padding=-1), 'padding=-1'),
    (lambda x, w: conv_transpose2d(x, w, stride=2, output_padding=2), 'output_padding must be smaller than stride or dilation, got output_padding=2, stride=2, dilation=1'),
    (lambda x, w: conv_transpose2d(x, w, output_padding=1), 'output_padding=1, stride=1, dilation=1'),
    (lambda x, w: conv_transpose2d(x, w, padding=5), 'output size -3 is below 1'),
    (lambda x, w: conv_transpose2d(x, w, dilation=0), 'dilation=0'),
    (lambda x, w: conv_transpose2d(x, w[:, :0]), 'weight must not be empty'),
    (lambda x, w: conv_transpose2d(x[:, :0], w[:0]), 'weight must not be empty'),
    (lambda x, w: conv_transpose2d(x[:, :, :0], w), 'shape (2, 3, 0, 4)'),
    (lambda x, w: conv_transpose2d(x, w, torch.zeros(3)), 'bias must have shape (2,)'),
    (lambda x, w: conv_transpose2d(x, w, torch.zeros(2, dtype=torch.float64)), 'bias is torch.float64'),
    (lambda x, w: conv_transpose2d(x.double(), w), 'torch.float64 and torch.float32'),
    (lambda x, w: conv_transpose2d(x[0, 0], w), 'shape (5, 4)'),
    (lambda x, w: conv_transpose2d(x, w[0]), 'shape (2, 3, 2)'),
])
def test_bad_arguments_fail_before_any_work(monkeypatch, f, msg):
    "Every bad argument raises a ValueError naming it, before any product or col2im"
    def boom(*a, **k): raise AssertionError('work started before the arguments were checked')
    monkeypatch.setattr(m._ConvTranspose2d, 'apply', boom)
    for name in ('_input_grad', '_columns'): monkeypatch.setattr(m, name, boom)
    with pytest.raises(ValueError) as e: f(torch.zeros(2, 3, 5, 4), torch.zeros(3, 2, 3, 2))
    assert msg in str(e.value)

"""Our ops and layers behave like PyTorch's everywhere, or refuse clearly: memory layout, device, second derivatives and
`torch.func`, `to_ours` on parametrized, hooked and unusual models, tracing and compiling, argument types, empty outputs,
and max pooling over windows of -inf. (Each op's random sweeps against PyTorch live in its own test file.)"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.func import grad, jvp, vmap
from torch.nn.utils import parametrize, parametrizations as P
from torch.testing import assert_close
from helpers import ours_kw

from miniconv.im2col import im2col, col2im, patches, conv2d
from miniconv.pooling import max_pool2d, max_unpool2d, avg_pool2d, global_avg_pool
from miniconv.transposed import conv_transpose2d
from miniconv.layers import Conv2d, MaxPool2d, AvgPool2d, to_ours, to_torch
from miniconv.cnn import simple_cnn, better_cnn

pytestmark = [pytest.mark.usefixtures('one_thread'), pytest.mark.filterwarnings("ignore:Using padding='same'"),
              pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning"),      # torch.func calls it internally
              pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")]  # vmap falls back on a loop for addcmul_
CL = torch.channels_last
D64 = dict(dtype=torch.float64)

# Each op with one call of ours and the same call of PyTorch's: (name, ours, theirs, input shape, extra tensors' shapes, kwargs)
OPS = [
    ('conv2d',              conv2d, F.conv2d,                     (2, 3, 7, 6), [(4, 3, 3, 2), (4,)], dict(stride=(2, 1), padding=1)),
    ('conv2d 1 channel',    conv2d, F.conv2d,                     (2, 1, 9, 9), [(4, 1, 3, 3), (4,)], dict(stride=2, padding=1)),
    ('conv2d grouped',      conv2d, F.conv2d,                     (2, 4, 6, 5), [(6, 2, 3, 3), (6,)], dict(padding=1, groups=2)),
    ('conv2d depthwise',    conv2d, F.conv2d,                     (2, 3, 6, 5), [(6, 1, 3, 3), (6,)], dict(padding=1, dilation=2, groups=3)),
    ('conv2d same',         conv2d, F.conv2d,                     (2, 3, 6, 5), [(4, 3, 2, 2), (4,)], dict(padding='same')),
    ('conv2d per image',    conv2d, F.conv2d,                     (2, 2, 8, 9), [(3, 2, 3, 3), (3,)], dict(padding=1)),   # few taps, many windows
    ('conv2d per image grouped', conv2d, F.conv2d,                (2, 4, 8, 8), [(6, 2, 3, 3), (6,)], dict(padding=1, groups=2)),
    ('conv_transpose2d',    conv_transpose2d, F.conv_transpose2d, (2, 3, 4, 5), [(3, 2, 3, 3), (2,)], dict(stride=2, padding=1, output_padding=1)),
    ('conv_transpose2d grouped', conv_transpose2d, F.conv_transpose2d, (2, 4, 4, 3), [(4, 1, 2, 3), (2,)], dict(stride=(1, 2), groups=2)),
    ('max_pool2d',          max_pool2d, F.max_pool2d,             (2, 3, 7, 8), [], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ('avg_pool2d',          avg_pool2d, F.avg_pool2d,             (2, 3, 7, 8), [], dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ('avg_pool2d divisor',  avg_pool2d, F.avg_pool2d,             (2, 3, 7, 8), [], dict(kernel_size=2, divisor_override=3)),
]
IDS = [o[0] for o in OPS]

def args_of(shape, extra, seed=0, **opts):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, **opts) for s in [shape] + extra]

def layout(t): return t.is_contiguous(), t.is_contiguous(memory_format=CL)

# 1. Memory layout: what PyTorch returns for the input given, in every op

@pytest.mark.parametrize('x_cl', [False, True], ids=['x usual', 'x channels-last'])
@pytest.mark.parametrize('name,ours,theirs,shape,extra,kw', OPS, ids=IDS)
def test_output_layout_is_pytorchs(name, ours, theirs, shape, extra, kw, x_cl):
    "The output is laid out as PyTorch's is, for an input in the usual layout and in channels-last (and a channels-last weight)"
    x, *rest = args_of(shape, extra)
    if x_cl: x = x.contiguous(memory_format=CL)
    for w_cl in ([False, True] if rest else [False]):
        r = [rest[0].contiguous(memory_format=CL), *rest[1:]] if w_cl else rest
        out, ref = ours(x, *r, **ours_kw(kw)), theirs(x, *r, **kw)
        assert layout(out) == layout(ref), (name, x_cl, w_cl, out.stride(), ref.stride())
        assert_close(out, ref, rtol=1e-4, atol=1e-4)

def test_view_after_our_convolution():
    "A model whose forward does `.view(x.size(0), -1)` on a convolution's output works after to_ours, as before it"
    class Net(nn.Module):
        def __init__(self): super().__init__(); self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4*6*6, 3)
        def forward(self, x): return self.fc(self.conv(x).view(x.size(0), -1))
    torch.manual_seed(0)
    m, x = Net(), torch.randn(2, 1, 8, 8)
    assert_close(to_ours(m)(x), m(x), rtol=1e-5, atol=1e-5)
    assert conv2d(x, torch.randn(4, 1, 3, 3)).view(2, -1).shape == (2, 144)

def test_input_gradient_in_the_inputs_layout():
    "The input gradient comes back contiguous in x's own layout, as PyTorch's does (a padded view would slow every later op)"
    for x_cl in (False, True):
        x = torch.randn(2, 4, 7, 7)
        x = (x.contiguous(memory_format=CL) if x_cl else x).requires_grad_()
        gx, = torch.autograd.grad(conv2d(x, torch.randn(8, 4, 3, 3), stride=2, padding=1).sum(), x)
        assert gx.is_contiguous(memory_format=CL if x_cl else torch.contiguous_format)

# 2. Every op and layer works on the input's device

def meta_calls():
    "Our ops (with PyTorch's twin where there is one) on the meta device, each as (name, ours, theirs) of no arguments"
    m = lambda *s: torch.randn(*s, device='meta')
    idx = torch.zeros(2, 3, 3, 3, dtype=torch.int64, device='meta')
    return [(name, (lambda o=ours, s=shape, e=extra, k=kw: o(m(*s), *[m(*t) for t in e], **ours_kw(k))),
             (lambda t=theirs, s=shape, e=extra, k=kw: t(m(*s), *[m(*t_) for t_ in e], **k))) for name, ours, theirs, shape, extra, kw in OPS] + [
        ('max_pool2d indices', lambda: max_pool2d(m(2, 3, 7, 8), 2, return_indices=True)[1], lambda: F.max_pool2d(m(2, 3, 7, 8), 2, return_indices=True)[1]),
        ('max_unpool2d', lambda: max_unpool2d(m(2, 3, 3, 3), idx, 2), lambda: F.max_unpool2d(m(2, 3, 3, 3), idx, 2)),
        ('global_avg_pool', lambda: global_avg_pool(m(2, 3, 4, 5)), lambda: F.adaptive_avg_pool2d(m(2, 3, 4, 5), 1).flatten(1)),
        ('im2col', lambda: im2col(m(2, 3, 6, 5), 3, 2, 1), lambda: F.unfold(m(2, 3, 6, 5), 3, padding=1, stride=2)),
        ('col2im', lambda: col2im(m(2, 27, 9), (6, 5), 3, 2, 1), lambda: F.fold(m(2, 27, 9), (6, 5), 3, padding=1, stride=2)),
        ('patches', lambda: patches(m(2, 3, 6, 5), 3, 2, 1, ceil_mode=True, value=float('-inf')), lambda: m(2, 3, 3, 3, 4, 3)),
        ('conv2d no channels', lambda: conv2d(m(2, 0, 5, 5), m(4, 0, 3, 3)), lambda: F.conv2d(m(2, 0, 5, 5), m(4, 0, 3, 3))),
    ]

@pytest.mark.parametrize('name,ours,theirs', meta_calls(), ids=[c[0] for c in meta_calls()])
def test_every_op_on_the_meta_device(name, ours, theirs):
    "On the meta device (no data at all) every op gives PyTorch's shape, on that device"
    out, ref = ours(), theirs()
    assert out.device.type == 'meta' and out.shape == ref.shape

def test_backward_and_layers_on_the_meta_device():
    "Gradients, and our layers moved to the meta device, work there too"
    x = torch.randn(2, 3, 8, 8, device='meta', requires_grad=True)
    for f in (lambda x: conv2d(x, torch.randn(4, 3, 3, 3, device='meta'), padding=1), lambda x: max_pool2d(x, 3, 2, 1),
              lambda x: avg_pool2d(x, 2), lambda x: conv_transpose2d(x, torch.randn(3, 2, 3, 3, device='meta'), stride=2)):
        gx, = torch.autograd.grad(f(x).sum(), x)
        assert gx.device.type == 'meta' and gx.shape == x.shape
    m = to_ours(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False))).to('meta')
    assert m(x).shape == (2, 4, 2, 2) and m(x).device.type == 'meta'

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: the CUDA run of every op is skipped")
def test_every_op_on_cuda():
    "On a GPU, every op computes on the GPU and agrees with PyTorch there, forward and gradients"
    for name, ours, theirs, shape, extra, kw in OPS:
        ts = [t.cuda().requires_grad_() for t in args_of(shape, extra)]
        out, ref = ours(*ts, **ours_kw(kw)), theirs(*ts, **kw)
        assert out.device.type == 'cuda', name
        assert_close(out, ref, rtol=1e-4, atol=1e-4)
        go = torch.randn_like(ref)
        for a, r in zip(torch.autograd.grad(out, ts, go), torch.autograd.grad(ref, ts, go)): assert_close(a, r, rtol=1e-4, atol=1e-4)

# 3. Second derivatives and torch.func

def test_gradient_penalty_reaches_the_weights():
    "A penalty on the input gradient (WGAN-GP) has a gradient for the weights: PyTorch's, not None as with a once-differentiable backward"
    for name, ours, theirs, shape, extra, kw in OPS:
        if not extra: continue
        x, w, b = args_of(shape, extra, **D64)
        def penalty(f):
            xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
            gx, = torch.autograd.grad(f(xr, wr, b, **kw).pow(2).sum(), xr, create_graph=True)
            return torch.autograd.grad(gx.pow(2).sum(), wr, allow_unused=True)[0]
        got = penalty(ours)
        assert got is not None, name
        assert_close(got, penalty(theirs), rtol=1e-9, atol=1e-9)

@pytest.mark.parametrize('name,ours,theirs,shape,extra,kw', OPS, ids=IDS)
def test_gradgradcheck_one_case_per_op(name, ours, theirs, shape, extra, kw):
    "Second derivatives of every op against finite differences, in float64 (the sweep over many configurations is slow, below)"
    ts = [t.requires_grad_() for t in args_of(shape, extra, **D64)]
    assert torch.autograd.gradgradcheck(lambda *a: ours(*a, **ours_kw(kw)), ts, fast_mode=True)

@pytest.mark.parametrize('name,ours,theirs,shape,extra,kw', OPS, ids=IDS)
def test_torch_func_transforms(name, ours, theirs, shape, extra, kw):
    "`vmap` over a batch of inputs, `jvp`, and per-sample gradients (`vmap` of `grad`) give PyTorch's answers"
    x, *rest = args_of((3, *shape), extra)
    f, r = (lambda x, *a: ours(x, *a, **ours_kw(kw))), (lambda x, *a: theirs(x, *a, **kw))
    assert_close(vmap(lambda t: f(t, *rest))(x), vmap(lambda t: r(t, *rest))(x), rtol=1e-4, atol=1e-4)
    tangents = [torch.randn_like(t) for t in [x[0], *rest]]
    assert_close(jvp(f, (x[0], *rest), tuple(tangents))[1], jvp(r, (x[0], *rest), tuple(tangents))[1], rtol=1e-4, atol=1e-4)
    per_sample = lambda h: vmap(grad(lambda t, *a: h(t[None], *a).pow(2).sum()), in_dims=(0, *[None]*len(rest)))(x[0], *rest)
    assert_close(per_sample(f), per_sample(r), rtol=1e-3, atol=1e-3)

def test_second_derivatives_with_torch_func():
    "`grad` of `grad` through conv2d: the Hessian-vector product of a tiny network"
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 6, 6, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    def hvp(conv): return grad(lambda w: grad(lambda w: conv(x, w).tanh().pow(2).sum())(w).pow(2).sum())(w)
    assert_close(hvp(conv2d), hvp(F.conv2d), rtol=1e-3, atol=1e-3)

@st.composite
def gg_configs(draw, op):
    "A tiny random configuration of `op` that PyTorch accepts: (input, other tensors, keyword arguments), in float64"
    ks, stride, dil = draw(st.tuples(st.integers(1, 3), st.integers(1, 3))), draw(st.tuples(st.integers(1, 2), st.integers(1, 2))), (1, 1)
    if op != 'avg': dil = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    span = [d*(k - 1) + 1 for k, d in zip(ks, dil)]
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = (draw(st.integers(s, s + 2)) for s in span)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**20)))
    rnd = lambda *s: torch.randn(*s, generator=g, **D64)
    if op in ('conv', 'transpose'):
        G = draw(st.sampled_from([1, c]))
        o = G*draw(st.integers(1, 2))
        if op == 'conv': return rnd(n, c, h, w), [rnd(o, c//G, *ks), rnd(o)], dict(stride=stride, padding=draw(st.integers(0, 1)), dilation=dil, groups=G)
        op_ = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dil))
        return rnd(n, c, h - span[0] + 1, w - span[1] + 1), [rnd(c, o//G, *ks), rnd(o)], dict(stride=stride, output_padding=op_, dilation=dil, groups=G)
    if op in ('unfold', 'fold'):
        kw = dict(kernel_size=ks, stride=stride, padding=draw(st.integers(0, 1)), dilation=dil)
        x = rnd(n, c, h, w)
        return (x, [], kw) if op == 'unfold' else (F.unfold(x, **kw), [], dict(kw, output_size=(h, w)))
    pad = tuple(draw(st.integers(0, k//2)) for k in ks)
    if op == 'unpool':                                # windows side by side and distinct values: every index distinct
        v, idx = F.max_pool2d(torch.randperm(n*c*h*w, generator=g).view(n, c, h, w).double(), ks, ks, pad, return_indices=True)
        return rnd(*v.shape), [], dict(indices=idx, kernel_size=ks, stride=ks, padding=pad, output_size=(h, w))
    kw = dict(kernel_size=ks, stride=stride, padding=pad, ceil_mode=draw(st.booleans()))
    if op == 'max': return rnd(n, c, h, w).argsort(-1).double() + rnd(n, c, h, w)*0.1, [], dict(kw, dilation=dil)   # no ties: a derivative exists
    return rnd(n, c, h, w), [], dict(kw, count_include_pad=draw(st.booleans()))

GG_OPS = {'conv': (conv2d, F.conv2d), 'transpose': (conv_transpose2d, F.conv_transpose2d), 'max': (max_pool2d, F.max_pool2d), 'avg': (avg_pool2d, F.avg_pool2d),
          'unfold': (im2col, F.unfold), 'fold': (lambda x, output_size, **kw: col2im(x, output_size, **kw), F.fold), 'unpool': (max_unpool2d, F.max_unpool2d)}

@pytest.mark.slow
@pytest.mark.parametrize('op', list(GG_OPS))
def test_gradgradcheck_sweep(op):
    "Second derivatives against finite differences in float64, on at least 100 random configurations PyTorch accepts, per op"
    ours, theirs = GG_OPS[op]
    done = []
    @settings(max_examples=125, deadline=None, derandomize=True)
    @given(gg_configs(op))
    def run(c):
        x, rest, kw = c
        try: theirs(x, *rest, **kw)
        except RuntimeError: return                     # PyTorch refuses it (say, a ceil_mode window that sees only padding)
        ts = [t.requires_grad_() for t in (x, *rest)]
        assert torch.autograd.gradgradcheck(lambda *a: ours(*a, **ours_kw(kw)), ts, fast_mode=True)
        done.append(1)
    run()
    assert len(done) >= 100, len(done)

# 4. to_ours: parametrizations, hooks, refusals, tracing

class Twice(nn.Module):
    "A custom parametrization: the weight used is twice the stored one"
    def forward(self, w): return 2*w

def parametrized_model():
    torch.manual_seed(0)
    m = nn.Sequential(P.weight_norm(nn.Conv2d(2, 3, 3)), nn.ReLU(), P.spectral_norm(nn.Conv2d(3, 3, 3)),
                      torch.nn.utils.spectral_norm(nn.Conv2d(3, 2, 3)), nn.Conv2d(2, 2, 1))
    parametrize.register_parametrization(m[4], 'weight', Twice())
    return m.eval()

def test_to_ours_converts_parametrized_layers():
    "weight_norm, spectral_norm (both kinds) and a custom parametrization are converted and kept: same state_dict, same outputs"
    m = parametrized_model()
    o = to_ours(m)
    assert [isinstance(c, Conv2d) for c in o if isinstance(c, nn.Conv2d)] == [True]*4
    assert [parametrize.is_parametrized(c) for c in o] == [parametrize.is_parametrized(c) for c in m]
    assert list(o.state_dict()) == list(m.state_dict())
    x = torch.randn(2, 2, 9, 9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(): assert_close(o(x), m(x), rtol=1e-4, atol=1e-4)
    back = to_torch(o)
    assert not any(isinstance(c, (Conv2d, MaxPool2d, AvgPool2d)) for c in back.modules())
    assert [parametrize.is_parametrized(c) for c in back] == [parametrize.is_parametrized(c) for c in m]
    with torch.no_grad(): assert_close(back(x), m(x), rtol=1e-5, atol=1e-5)

def test_to_ours_keeps_hooks():
    "Forward hooks and pre-hooks of a converted layer still run, on our layer"
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2))
    calls = []
    m[0].register_forward_hook(lambda mod, inp, out: calls.append(('hook', type(mod).__name__)))
    m[1].register_forward_pre_hook(lambda mod, inp: calls.append(('pre', type(mod).__name__)))
    o = to_ours(m)
    o(torch.randn(1, 1, 8, 8))
    assert calls == [('hook', 'Conv2d'), ('pre', 'MaxPool2d')] and isinstance(o[0], Conv2d) and isinstance(o[1], MaxPool2d)

class MyConv(nn.Conv2d):
    "A subclass with code of its own"
    def forward(self, x): return super().forward(x) + 1

@pytest.mark.parametrize('bad,msg', [
    (None, 'model must be an nn.Module, got NoneType'),
    (nn.Sequential(nn.ReLU(), nn.Sequential(MyConv(1, 2, 3))), "layer '1.0' is a MyConv, a subclass of nn.Conv2d"),
    (nn.Sequential(nn.LazyConv2d(4, 3)), "layer '0' (LazyConv2d) has no weights yet"),
    (nn.Conv2d(1, 2, 3, dtype=torch.complex64), 'torch.complex64 weights'),
], ids=['None', 'subclass', 'lazy', 'complex'])
def test_to_ours_refuses_with_the_layers_name_and_reason(bad, msg):
    with pytest.raises(ValueError) as e: to_ours(bad)
    assert msg in str(e.value)

def test_materialised_lazy_conv_is_converted():
    lz = nn.Sequential(nn.LazyConv2d(4, 3))
    lz(torch.zeros(1, 2, 5, 5))
    assert type(to_ours(lz)[0]) is Conv2d

def test_fx_traces_models_on_our_layers():
    "torch.fx.symbolic_trace records our ops as calls, and the traced module computes what the model does"
    torch.manual_seed(0)
    for m, x in ((to_ours(simple_cnn()), torch.rand(2, 1, 28, 28)), (to_ours(better_cnn()).eval(), torch.rand(2, 1, 28, 28)),
                 (to_ours(parametrized_model()), torch.rand(2, 2, 9, 9)),
                 (to_ours(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode='reflect'), nn.MaxPool2d(2), nn.AvgPool2d(2))), torch.rand(2, 1, 8, 8))):
        gm = torch.fx.symbolic_trace(m)
        assert {'conv2d'} <= {n.target.__name__ for n in gm.graph.nodes if n.op == 'call_function' and hasattr(n.target, '__name__')}
        with torch.no_grad(): assert_close(gm(x), m(x))

def test_jit_script_is_refused_by_name():
    with pytest.raises(TypeError, match=r"miniconv.Conv2d computes with miniconv's Python code.*to_torch\(model\)"): torch.jit.script(to_ours(simple_cnn()))

@pytest.mark.slow
def test_torch_compile_fullgraph():
    "torch.compile(fullgraph=True) traces a model on our layers in one graph, forward and backward (AOTAutograd; codegen is left out, to stay quick)"
    torch.manual_seed(0)
    m = to_ours(nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                              nn.AvgPool2d(2, count_include_pad=False)))
    x = torch.randn(2, 2, 11, 11)
    cm = torch.compile(m, fullgraph=True, backend='aot_eager')
    out, ref = cm(x), m(x)
    assert_close(out, ref)
    for a, r in zip(torch.autograd.grad(out.sum(), list(m.parameters())), torch.autograd.grad(ref.sum(), list(m.parameters()))): assert_close(a, r)
    ct = torch.compile(lambda x, w: conv_transpose2d(x, w, stride=2, groups=2), fullgraph=True, backend='aot_eager')
    x, w = torch.randn(2, 4, 5, 5), torch.randn(4, 3, 3, 3)
    assert_close(ct(x, w), F.conv_transpose2d(x, w, stride=2, groups=2))

# 5. Argument types, 1-tuples, huge strides, empty batches and empty outputs

FLAGS = [(lambda v: max_pool2d(torch.zeros(1, 1, 4, 4), 2, ceil_mode=v), 'ceil_mode'),
         (lambda v: max_pool2d(torch.zeros(1, 1, 4, 4), 2, return_indices=v), 'return_indices'),
         (lambda v: avg_pool2d(torch.zeros(1, 1, 4, 4), 2, count_include_pad=v), 'count_include_pad'),
         (lambda v: avg_pool2d(torch.zeros(1, 1, 4, 4), 2, ceil_mode=v), 'ceil_mode'),
         (lambda v: patches(torch.zeros(1, 1, 4, 4), 2, ceil_mode=v), 'ceil_mode'),
         (lambda v: MaxPool2d(2, ceil_mode=v), 'ceil_mode'), (lambda v: AvgPool2d(2, count_include_pad=v), 'count_include_pad'),
         (lambda v: Conv2d(1, 2, 3, bias=v), 'bias')]

@pytest.mark.parametrize('v', ['no', 'yes', 1, None], ids=['no', 'yes', '1', 'None'])
@pytest.mark.parametrize('f,name', FLAGS, ids=[f'{i}-{n}' for i, (_, n) in enumerate(FLAGS)])
def test_flags_must_be_bools(f, name, v):
    "A flag that is not True or False is a TypeError naming it, as PyTorch's functions raise (never read as True)"
    with pytest.raises(TypeError, match=f"{name} must be True or False, got {name}={v!r}"): f(v)

def test_one_tuples_are_read_as_pytorch_reads_them():
    "`stride=(2,)`, `padding=(1,)` and `ks=(3,)` mean 2, 1 and 3 on both axes, as in PyTorch"
    x = torch.randn(2, 3, 7, 8, generator=torch.Generator().manual_seed(0))
    w, wt = torch.randn(4, 3, 3, 3), torch.randn(3, 2, 3, 3)
    assert_close(conv2d(x, w, stride=(2,), padding=(1,), dilation=(1,)), F.conv2d(x, w, stride=(2,), padding=(1,), dilation=(1,)))
    assert_close(conv_transpose2d(x, wt, stride=(2,), padding=(1,), output_padding=(1,)), F.conv_transpose2d(x, wt, stride=(2,), padding=(1,), output_padding=(1,)))
    assert_close(max_pool2d(x, (3,), (2,), (1,)), F.max_pool2d(x, (3,), (2,), (1,)))
    assert_close(avg_pool2d(x, (3,), (2,), (1,)), F.avg_pool2d(x, (3,), (2,), (1,)))
    assert_close(im2col(x, (3,), stride=(2,)), F.unfold(x, 3, stride=2))

def test_a_huge_stride_gives_one_window():
    "stride=10**18 leaves one window, PyTorch's 1x1 output, instead of overflowing a stride of the view"
    x = torch.randn(1, 2, 28, 28)                                     # 28 rows of 10**18 would overflow an int64 stride
    assert_close(conv2d(x, torch.ones(3, 2, 2, 2), stride=10**18), F.conv2d(x, torch.ones(3, 2, 2, 2), stride=10**18))
    assert_close(im2col(x, 2, stride=10**18), F.unfold(x, 2, stride=10**18))
    assert max_pool2d(x, 2, stride=10**18).shape == avg_pool2d(x, 2, stride=(10**18, 1)).shape[:3] + (1,) == (1, 2, 1, 1)

EMPTY_BATCH = [lambda: conv2d(torch.zeros(0, 3, 5, 5), torch.zeros(4, 3, 3, 3)), lambda: conv_transpose2d(torch.zeros(0, 3, 5, 5), torch.zeros(3, 4, 3, 3)),
               lambda: max_pool2d(torch.zeros(0, 3, 5, 5), 2), lambda: avg_pool2d(torch.zeros(0, 3, 5, 5), 2), lambda: global_avg_pool(torch.zeros(0, 3, 5, 5)),
               lambda: im2col(torch.zeros(0, 3, 5, 5), 2), lambda: max_unpool2d(torch.zeros(0, 3, 2, 2), torch.zeros(0, 3, 2, 2, dtype=torch.int64), 2)]
EMPTY_OUTPUT = [(lambda: conv2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3)), 'larger than the padded input'),
                (lambda: im2col(torch.zeros(1, 1, 2, 2), 3), 'larger than the padded input'),
                (lambda: conv_transpose2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3), padding=2), 'output size 0 is below 1'),
                (lambda: max_pool2d(torch.zeros(1, 1, 2, 2), 3, padding=1, dilation=3), 'below 1'),
                (lambda: avg_pool2d(torch.zeros(1, 1, 2, 2), 5, padding=1), 'below 1'),
                (lambda: max_unpool2d(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1, dtype=torch.int64), 1, padding=1), 'below 1')]

@pytest.mark.parametrize('f', EMPTY_BATCH, ids=['conv2d', 'conv_transpose2d', 'max_pool2d', 'avg_pool2d', 'global_avg_pool', 'im2col', 'max_unpool2d'])
def test_every_op_takes_an_empty_batch(f):
    assert f().shape[0] == 0

@pytest.mark.parametrize('f,msg', EMPTY_OUTPUT, ids=['conv2d', 'im2col', 'conv_transpose2d', 'max_pool2d', 'avg_pool2d', 'max_unpool2d'])
def test_every_op_refuses_an_output_of_size_0(f, msg):
    "One rule for every op: an output of size 0 is a ValueError naming the sizes, as PyTorch raises (but for F.conv_transpose2d on an empty batch)"
    with pytest.raises(ValueError, match=msg): f()

# 6. Max pooling over windows of -inf

def test_windows_of_minus_infinity_send_their_gradient_to_the_image():
    "Every tap -inf, padding included: the gradient goes to the first tap inside the image, as PyTorch's, and the indices agree"
    x = torch.full((1, 1, 3, 3), float('-inf'), requires_grad=True)
    out, idx = max_pool2d(x, 2, 2, 1, return_indices=True)
    ref, ridx = F.max_pool2d(x, 2, 2, 1, return_indices=True)
    assert torch.equal(idx, ridx)
    g, = torch.autograd.grad(out.sum(), x)
    assert g.sum() == 4 and torch.equal(g, torch.autograd.grad(ref.sum(), x)[0])
    y = torch.randn(2, 3, 6, 7)
    y[:, :, :3] = float('-inf')                                       # some windows all -inf, inside the image and at its border
    y.requires_grad_()
    for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, padding=(1, 1), ceil_mode=True)):
        (o, i), (r, ri) = max_pool2d(y, **ours_kw(kw), return_indices=True), F.max_pool2d(y, **kw, return_indices=True)
        assert torch.equal(i, ri)
        go = torch.randn(o.shape)
        assert_close(torch.autograd.grad(o, y, go)[0], torch.autograd.grad(r, y, go)[0])

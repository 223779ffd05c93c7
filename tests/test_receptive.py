"""Check `receptive_field` against gradient measurements: random stacks, random branching graphs and torchvision's models;
pooling with ceil_mode against PyTorch; the errors; `unit_fields` and the explorer."""
import itertools, math, os, random

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

from miniconv.cnn import simple_cnn
from miniconv.strides_padding import same_pads
from miniconv.receptive_field import (receptive_field, field_bounds, unit_fields, rf_explorer, rf_trace, central_unit, AlignmentError,
                                      RF_COLUMNS, _POINTWISE)

pytestmark = pytest.mark.usefixtures('one_thread')  # many tiny tensors: one thread is faster than waiting on a busy second

ACTS = [nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Identity, lambda: nn.LeakyReLU(0.1)]


# The measurement: every layer becomes a positive linear layer of the same geometry, on the traced graph, so that every path
# from a pixel to a unit carries a positive amount and the gradient is non-zero exactly where the unit can see
def _pair(v): return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

def _conv(x, nf, ks, stride, padding, dilation, padding_mode='zeros'):
    "A convolution's window, averaging the sum of the input channels, copied to `nf` channels (an average pool is fast in float64)"
    x, ks, d = x.sum(-3, keepdim=True), _pair(ks), _pair(dilation)
    ps = [same_pads(k, dd) if padding == 'same' else (0, 0) if padding == 'valid' else (p, p)
          for k, dd, p in zip(ks, d, (padding,)*2 if isinstance(padding, str) else _pair(padding))]
    x = F.pad(x, (*ps[1], *ps[0]), mode='constant' if padding_mode == 'zeros' else padding_mode)
    y = F.avg_pool2d(x, ks, stride) if d == (1, 1) else F.conv2d(x, torch.ones(1, 1, *ks, dtype=x.dtype)/(ks[0]*ks[1]), None, stride, 0, d)
    return y.expand(-1, nf, -1, -1)

def _avg(x, ks, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    "A max pool's window as an average, so that the gradient reaches every tap, not only the largest"
    ks, d = _pair(ks), _pair(dilation)
    if d == (1, 1): return F.avg_pool2d(x, ks, stride or ks, padding, ceil_mode)
    assert not ceil_mode  # a dilated window as a depthwise convolution, which has no ceil_mode
    return F.conv2d(x, torch.ones(x.shape[1], 1, *ks, dtype=x.dtype)/(ks[0]*ks[1]), None, stride or ks, padding, d, groups=x.shape[1])

_PASS = {F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, torch.relu, torch.sigmoid, torch.tanh,
         F.dropout, stochastic_depth, F.layer_norm, F.batch_norm}

class Measure(fx.Interpreter):
    "Run a traced model with its layers made positive and linear: convolutions and pools average their windows, the rest passes its input on"
    def __init__(self, gm): super().__init__(gm, garbage_collect_values=False)
    def get_attr(self, target, args, kwargs):
        v = super().get_attr(target, args, kwargs)
        return torch.ones((), dtype=torch.float64) if isinstance(v, torch.Tensor) else v
    def call_module(self, target, args, kwargs):
        m, x = self.fetch_attr(target), args[0]
        if isinstance(m, nn.Conv2d): return _conv(x, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.padding_mode)
        if isinstance(m, nn.MaxPool2d): return _avg(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        if isinstance(m, nn.AvgPool2d): return F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode)
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)): return F.adaptive_avg_pool2d(x, m.output_size)
        if isinstance(m, nn.Linear): return x.sum(-1, keepdim=True).expand(*x.shape[:-1], m.out_features)
        if isinstance(m, (*_POINTWISE, nn.LayerNorm, nn.GroupNorm)): return x
        return m(*args, **kwargs)
    def call_function(self, target, args, kwargs):
        if target in _PASS: return args[0]
        if target is F.max_pool2d: return _avg(*args, **kwargs)
        if target is F.adaptive_max_pool2d: return F.adaptive_avg_pool2d(*args, **kwargs)
        return super().call_function(target, args, kwargs)

def grad_box(gm, node, hw, unit, c=3):
    "Rows and columns of the input where the channel sum of `node`'s output at `unit` has a non-zero gradient, measured on `gm` made positive"
    x = torch.ones(1, c, *hw, dtype=torch.float64, requires_grad=True)
    run = Measure(gm)
    run.run(x)
    run.env[node][0, :, unit[0], unit[1]].sum().backward()
    nz = x.grad[0].abs().sum(0) != 0
    rows, cols = nz.any(1).nonzero()[:, 0], nz.any(0).nonzero()[:, 0]
    if len(rows) == 0: return None
    return (rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item())

def output_node(gm): return next(n for n in gm.graph.nodes if n.op == 'output').args[0]

def tables(model, hw):
    "`receptive_field`'s tables along the height and the width, from one trace"
    gm = model if isinstance(model, fx.GraphModule) else rf_trace(model)
    return receptive_field(gm, hw, 0), receptive_field(gm, hw, 1)

def test_measurement_can_fail():
    "A deliberately wrong field (one layer dropped) disagrees with the gradients"
    m = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 2, 1))
    gm, wrong = rf_trace(m), receptive_field(m[:1], 28).iloc[-1]
    assert grad_box(gm, output_node(gm), (28, 28), (3, 3), c=1) != (field_bounds(wrong, 3, 28),)*2
    right = receptive_field(m, 28).iloc[-1]
    assert grad_box(gm, output_node(gm), (28, 28), (3, 3), c=1) == (field_bounds(right, 3, 28),)*2 == ((9, 15), (9, 15))

def positive_(model):
    "Positive conv weights and biases, and float64, so no gradient inside a field is zero by accident"
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5).div_(m.weight[0].numel())
                if m.bias is not None: m.bias.fill_(0.1)
    return model.double().eval()

def as_measurable(model):
    "A copy where each max pool becomes a positive depthwise conv or an avg pool of the same geometry (max pool's gradient only reaches the argmax)"
    def swap(m):
        if isinstance(m, nn.Sequential): return nn.Sequential(*[swap(o) for o in m])
        if isinstance(m, nn.MaxPool2d):
            if m.ceil_mode: return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=True)
            return _PoolAsConv(m)
        return m
    return swap(model)

class _PoolAsConv(nn.Module):
    "A max pool's window, as a depthwise conv with equal positive weights"
    def __init__(self, p): super().__init__(); self.p = p
    def forward(self, x):
        p, c = self.p, x.shape[1]
        ks = p.kernel_size if isinstance(p.kernel_size, tuple) else (p.kernel_size,)*2
        w = torch.full((c, 1, *ks), 1/(ks[0]*ks[1]), dtype=x.dtype)  # averages, so values stay near 1 and tanh/sigmoid never saturate
        return nn.functional.conv2d(x, w, stride=p.stride, padding=p.padding, dilation=p.dilation, groups=c)

def rand_conv(r, ni, nf):
    ks = r.choice([1, 2, 3, 4, 5]) if r.random() < .8 else (r.choice([1, 3, 5]), r.choice([1, 2, 3]))
    kh, kw = (ks, ks) if isinstance(ks, int) else ks
    d = r.choice([1, 1, 1, 2, 3])
    if r.random() < .2 and kh % 2 and kw % 2 or r.random() < .1:
        return nn.Conv2d(ni, nf, ks, padding=r.choice(['same', 'valid']), dilation=d)
    st = r.choice([1, 1, 2, 3])
    pad = r.randint(0, d*(min(kh, kw)-1))  # more padding than this would make units that see nothing but padding
    return nn.Conv2d(ni, nf, ks, stride=st, padding=pad, dilation=d)

def rand_pool(r):
    ks = r.choice([2, 3])
    st = r.choice([None, 1, 2, 3])
    pad = r.randint(0, ks//2)
    if r.random() < .5: return nn.AvgPool2d(ks, st, pad, ceil_mode=r.random() < .3)
    if r.random() < .3: return nn.MaxPool2d(ks, st, pad, ceil_mode=True)
    return nn.MaxPool2d(ks, st, pad, dilation=r.choice([1, 2]))

def rand_model(r):
    "A random sequential model, with nested blocks, on `ni` channels"
    layers, c = [], 1
    for _ in range(r.randint(1, 5)):
        kind = r.random()
        if kind < .55:
            nf = r.randint(1, 3); layers.append(rand_conv(r, c, nf)); c = nf
        elif kind < .75: layers.append(rand_pool(r))
        elif kind < .9:
            nf = r.randint(1, 3)
            layers.append(nn.Sequential(rand_conv(r, c, nf), r.choice(ACTS)())); c = nf
        else: layers.append(r.choice(ACTS)())
    return nn.Sequential(*layers)

def has_holes(model):
    "Does some layer skip pixels (dilation > 1, or a stride longer than the kernel)? Then a field clipped by the image edge may end in a hole"
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            ks, st, d = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(getattr(m, 'dilation', 1))
            if max(d) > 1 or any(s > k for s, k in zip(st, ks)): return True
    return False

def grad_bounds(model, h, w, unit):
    "Bounding rows and columns of the input pixels where output unit `unit` of channel 0 has a non-zero gradient"
    x = torch.ones(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    out = model(x)
    out[0, 0][unit].backward()
    nz = x.grad[0, 0] != 0
    rows, cols = nz.any(1).nonzero()[:, 0], nz.any(0).nonzero()[:, 0]
    if len(rows) == 0: return None
    return (rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item())

n_exact = [0]

def check_one(seed):
    r = random.Random(seed)
    torch.manual_seed(seed)
    h, w = r.randint(12, 40), r.randint(12, 40)
    model = positive_(rand_model(r))
    try:
        rh, rw = tables(model, (h, w))
    except ValueError:  # too small for its kernels: PyTorch must refuse too
        with pytest.raises(RuntimeError): model(torch.ones(1, 1, h, w, dtype=torch.float64))
        return 'too small'
    out = model(torch.ones(1, 1, h, w, dtype=torch.float64))
    assert tuple(out.shape[-2:]) == (rh['out'].iloc[-1], rw['out'].iloc[-1]), (model, h, w)
    meas = as_measurable(model)
    oh, ow = out.shape[-2:]
    for i, j in {(0, 0), (oh-1, ow-1), (r.randrange(oh), r.randrange(ow))}:
        want_r, want_c = field_bounds(rh.iloc[-1], i, h), field_bounds(rw.iloc[-1], j, w)
        inside = field_bounds(rh.iloc[-1], i) == want_r and field_bounds(rw.iloc[-1], j) == want_c
        got = grad_bounds(meas, h, w, (i, j))
        msg = (model, (h, w), (i, j), got, (want_r, want_c))
        if want_r[0] > want_r[1] or want_c[0] > want_c[1]: assert got is None, msg  # the field is all padding
        elif inside: assert got == (want_r, want_c), msg; n_exact[0] += 1
        else:
            # Clipped by the image edge. The measured box lies within the field; pixels at the far edge that the
            # layers' windows never reach (a stride that doesn't divide the input) or that fall in a hole (dilation,
            # stride > kernel) are in the field but get no gradient; a unit whose windows only meet padding sees nothing.
            # The first pixel is exact when there are no holes.
            assert got is None or all(w[0] <= g[0] <= g[1] <= w[1] for g, w in zip(got, (want_r, want_c))), msg
            if got is not None and not has_holes(model): assert (got[0][0], got[1][0]) == (want_r[0], want_c[0]), msg
    return 'checked'

@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_random_models_match_gradients():
    res = [check_one(seed) for seed in range(100)]
    assert res.count('checked') >= 70, res.count('checked')
    assert n_exact[0] >= 70, n_exact[0]  # plenty of fields checked exactly, not just bounded

def test_pool_swap_keeps_geometry():
    "The measuring copy must give the same output grid as the model with max pools"
    for seed in range(50):
        r = random.Random(seed); p = rand_pool(r)
        if isinstance(p, nn.MaxPool2d):
            x = torch.ones(1, 2, 17, 17, dtype=torch.float64)
            assert as_measurable(nn.Sequential(p))(x).shape == p(x).shape

def test_two_stride2_convs_see_7x7():
    m = positive_(nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, 2, 1)))
    rf = receptive_field(m, 28)
    assert list(rf.columns) == RF_COLUMNS
    assert rf['size'].iloc[-1] == 7 and rf['jump'].iloc[-1] == 4
    assert grad_bounds(m, 28, 28, (3, 3)) == ((9, 15), (9, 15))

def test_zeropad_shifts_the_field():
    m = positive_(nn.Sequential(nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(1, 1, 3, 2)))
    rh, rw = receptive_field(m, 20), receptive_field(m, 20, axis=1)
    assert (rh['pad'].iloc[1], rw['pad'].iloc[1]) == (2, 1)
    assert grad_bounds(m, 20, 20, (4, 5)) == (field_bounds(rh.iloc[-1], 4, 20), field_bounds(rw.iloc[-1], 5, 20)) == ((6, 8), (9, 11))

def test_gradient_check_can_fail():
    "A deliberately wrong field (one layer dropped) disagrees with the gradients of the model itself"
    m = positive_(nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 2, 1)))
    wrong = receptive_field(m[:1], 28).iloc[-1]
    assert grad_bounds(m, 28, 28, (3, 3)) != (field_bounds(wrong, 3, 28),)*2


# Pooling with ceil_mode: a last window may hang over the input, or even be wider than all of it
def torch_out(layer, n):
    "PyTorch's output length for `layer` on an n x n input, or None if it refuses"
    try: return layer(torch.zeros(1, 1, n, n, dtype=torch.float64)).shape[-1]
    except RuntimeError: return None

def ceil_pools():
    "Max and avg pools with ceil_mode over small kernels, strides, paddings (at most half the kernel, PyTorch's limit) and dilations"
    for ks, st, pad in itertools.product((2, 3, 4), (1, 2, 3), (0, 1, 2)):
        if pad > ks//2: continue
        for d in (1, 2): yield nn.MaxPool2d(ks, st, pad, dilation=d, ceil_mode=True)
        yield nn.AvgPool2d(ks, st, pad, ceil_mode=True)

def test_issue_example_ceil_window_wider_than_input():
    "The case from the issue: a 3-wide window with stride 2 on 2 pixels gives PyTorch one output"
    m = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True))
    rf = receptive_field(m, 2)
    assert rf['out'].iloc[-1] == torch_out(m, 2) == 1
    assert field_bounds(rf.iloc[-1], 0, 2) == (0, 1)

@pytest.mark.slow
def test_ceil_mode_sizes_match_pytorch():
    "On inputs of 1 to 8 pixels, receptive_field gives PyTorch's output size, or refuses where PyTorch refuses"
    n_over = n_refused = 0
    for pool in ceil_pools():
        gm = rf_trace(nn.Sequential(pool))  # traced once, asked about every size
        for n in range(1, 9):
            want = torch_out(pool, n)
            if want is None:
                with pytest.raises(ValueError): receptive_field(gm, n)
                n_refused += 1
                continue
            assert receptive_field(gm, n)['out'].iloc[-1] == want, (pool, n)
            d, ks, pad = _pair(getattr(pool, 'dilation', 1))[0], _pair(pool.kernel_size)[0], _pair(pool.padding)[0]
            n_over += n + 2*pad < d*(ks-1) + 1  # one window wider than the whole padded input
    assert n_over >= 20 and n_refused >= 20, (n_over, n_refused)  # the grid does reach both kinds of edge case

@pytest.mark.slow
def test_ceil_mode_fields_match_gradients():
    "For avg pools with ceil_mode (a max pool's gradient only reaches its argmax), every unit's clipped field is where its gradient is"
    n_checked = 0
    for pool in ceil_pools():
        if not isinstance(pool, nn.AvgPool2d): continue
        m = positive_(nn.Sequential(nn.Conv2d(1, 1, 1), pool))
        gm = rf_trace(m)
        for n in range(1, 9):
            if torch_out(pool, n) is None: continue
            row = receptive_field(gm, n).iloc[-1]
            for u in range(row['out']):
                assert grad_bounds(m, n, n, (u, u)) == (field_bounds(row, u, n),)*2, (pool, n, u)
                n_checked += 1
    assert n_checked >= 100, n_checked

def test_ceil_mode_after_a_conv():
    "A ceil_mode window that overhangs a conv's output, in a chain, and its field checked by gradients"
    m = positive_(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AvgPool2d(3, 2, ceil_mode=True)))
    rf = receptive_field(m, 4)
    assert rf['out'].tolist() == [4, 2, torch_out(m, 4)] == [4, 2, 1]
    assert grad_bounds(m, 4, 4, (0, 0)) == (field_bounds(rf.iloc[-1], 0, 4),)*2 == ((0, 3), (0, 3))


# unit_fields: what one unit reads in every earlier grid, measured by gradients on that grid
def _leaves(model, prefix=''):
    "`(name, layer)` for every layer of a sequential `model`, nested blocks opened, named by their path"
    if not isinstance(model, nn.Sequential): yield prefix, model; return
    for n, m in model.named_children(): yield from _leaves(m, f"{prefix}.{n}" if prefix else n)

def grad_blocks(model, hw, name, i, j):
    "`{grid: bounding rows and columns}` where unit (i, j), channel 0, of layer `name` has a non-zero gradient, for each earlier grid"
    layers = list(_leaves(model))
    names = ['input'] + [n for n, _ in layers]
    k, res = names.index(name), {}
    for a in range(k):
        x = torch.ones(1, 1, *hw, dtype=torch.float64)
        with torch.no_grad():
            for _, m in layers[:a]: x = m(x)
        y = x.requires_grad_()
        for _, m in layers[a:k]: y = m(y)
        y[0, 0, i, j].backward()
        nz = x.grad[0].abs().sum(0) != 0
        rows, cols = nz.any(1).nonzero()[:, 0], nz.any(0).nonzero()[:, 0]
        res[names[a]] = (rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item())
    return res

@pytest.mark.parametrize('model,hw', [
    (simple_cnn(), (28, 28)),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(2, 2, (3, 1), stride=2), nn.ReLU(),
                   nn.Conv2d(2, 1, 3, padding=1)), (21, 17))])
def test_unit_fields_match_gradients(model, hw):
    m = positive_(model)
    rh, rw = tables(m, hw)
    r, n = random.Random(0), 0
    for k in rh.index[rh['layer'] == 'Conv2d']:
        oh, ow = rh['out'][k], rw['out'][k]
        for i, j in {(0, 0), (oh-1, ow-1), (r.randrange(oh), r.randrange(ow)), (r.randrange(oh), r.randrange(ow))}:
            want = unit_fields(m, hw, rh['name'][k], i, j)
            assert want[rh['name'][k]] == ((i, i), (j, j))
            got = grad_blocks(m, hw, rh['name'][k], i, j)
            assert {g: want[g] for g in got} == got, (rh['name'][k], i, j)
            n += 1
    assert n >= 10

def test_unit_fields_errors():
    with pytest.raises(ValueError, match=r"unit \(4, 0\) is outside the 4x4 output of layer '2.0'"): unit_fields(simple_cnn(), 28, '2.0', 4, 0)
    with pytest.raises(ValueError, match=r"model has no layer '9'"): unit_fields(simple_cnn(), 28, '9', 0, 0)


# rf_explorer: a static figure where nobody can move sliders, a widget where someone can
def digit_like():
    g = torch.Generator().manual_seed(0)
    return torch.rand(28, 28, generator=g)

def test_explorer_static_figure():
    "No kernel here (plain pytest), so the default is the static figure; its alt text gives the blocks unit_fields finds"
    torch.manual_seed(0)
    fig = rf_explorer(simple_cnn(), digit_like(), layer=4, unit=(1, 0))
    assert type(fig).__name__ == 'Figure' and len(fig.axes) == 5
    want = unit_fields(simple_cnn(), 28, '3.0', 1, 0)
    for grid, what in [('input', 'input'), ('0.0', 'conv 1'), ('1.0', 'conv 2'), ('2.0', 'conv 3')]:
        (r0, r1), (c0, c1) = want[grid]
        assert f"{what}, rows {r0} to {r1} and columns {c0} to {c1}" in fig.miniconv_alt, fig.miniconv_alt
    assert "what unit (1, 0) of conv 4 reads" in fig.miniconv_alt

def test_explorer_widget_follows_sliders():
    "live=True: the sliders pick the unit, a layer change re-centres the unit within the new grid, and the caption follows"
    w = rf_explorer(simple_cnn(), digit_like(), live=True)
    (s_k, s_i, s_j), note = w.children[0].children, w.children[1]
    assert (s_k.value, s_i.value, s_j.value, s_i.max) == (3, 2, 2, 3)
    assert 'Conv 3, unit (2, 2): reads rows 9–23 and columns 9–23 of the input, 15×15 pixels' in note.value
    # fits JupyterLab: the caption is a paragraph that wraps (a Label is cut at the right edge), the long alt text stays on
    # the figure, and the sliders wrap onto a new line when the page is narrow
    assert type(note).__name__ == 'HTML' and 'white-space: normal' in note.value and 'panels' not in note.value
    assert w.children[0].layout.flex_flow == 'row wrap' and all(s.layout.width == '250px' for s in (s_k, s_i, s_j))
    s_i.value = 0
    (r0, r1), (c0, c1) = unit_fields(simple_cnn(), 28, '2.0', 0, 2)['input']
    assert f'Conv 3, unit (0, 2): reads rows {r0}–{r1} and columns {c0}–{c1}' in note.value
    s_k.value = 1
    assert (s_i.max, s_j.max, s_i.value, s_j.value) == (13, 13, 7, 7) and 'Conv 1, unit (7, 7)' in note.value
    s_k.value = 5
    assert (s_i.max, s_i.value) == (0, 0) and 'rows 0–27 and columns 0–27' in note.value

def test_explorer_on_a_residual_network():
    "A branching model works too: the figure leaves out the convolutions on the branch the unit doesn't read"
    fig = rf_explorer(Down(), torch.rand(28, 28), layer=3, live=False)  # conv 1 is the shortcut, called first; conv 3 reads conv 2 only
    assert len(fig.axes) == 3 and fig.miniconv_alt.startswith('3 panels, the image and the outputs of conv 2, conv 3,')
    assert 'conv 1,' not in fig.miniconv_alt

def test_explorer_errors():
    with pytest.raises(ValueError, match='layer must be 1 to 5'): rf_explorer(simple_cnn(), digit_like(), layer=0, live=False)
    with pytest.raises(ValueError, match=r"unit \(9, 9\) is outside the 4x4 output"): rf_explorer(simple_cnn(), digit_like(), unit=(9, 9), live=True)
    with pytest.raises(ValueError, match='no nn.Conv2d'): rf_explorer(nn.Sequential(nn.MaxPool2d(2)), digit_like())
    with pytest.raises(ValueError, match='img must be'): rf_explorer(simple_cnn(), torch.zeros(1, 28, 28))

PROBE = ("import torch\nfrom miniconv.cnn import simple_cnn\nfrom miniconv.receptive_field import rf_explorer\n"
         "print(type(rf_explorer(simple_cnn(), torch.zeros(28, 28))).__name__)")

@pytest.mark.slow
def test_explorer_detects_a_person_in_a_real_kernel():
    "In a real ipykernel: a request with allow_stdin set (as JupyterLab sends) gets the widget, one without it the figure"
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name='python3', env={**os.environ, 'MINICONV_OFFLINE': '1', 'MPLBACKEND': 'Agg'})
    try:
        got = {}
        for stdin in (True, False):
            out = []
            kc.execute_interactive(PROBE, allow_stdin=stdin, timeout=120, stdin_hook=lambda m: None,
                                   output_hook=lambda m: out.append(m['content'].get('text', '')) if m['msg_type'] == 'stream' else None)
            got[stdin] = ''.join(out).strip()
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    assert got == {True: 'VBox', False: 'Figure'}, got

@pytest.mark.slow
def test_explorer_is_static_under_nbclient(tmp_path):
    "nbclient (what nbconvert --execute and our notebook runs use) gets the static figure, with its alt text, and no widget state"
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nimport miniconv.plotting\nfrom miniconv.cnn import simple_cnn\nfrom miniconv.receptive_field import rf_explorer\n"
        "rf_explorer(simple_cnn(), torch.zeros(28, 28))")])
    env = {**os.environ, 'MINICONV_OFFLINE': '1', 'MPLBACKEND': 'module://matplotlib_inline.backend_inline'}
    from jupyter_client.manager import KernelManager
    NotebookClient(nb, timeout=120, kernel_name='python3', km=KernelManager(kernel_name='python3')).execute(env=env)
    outs = nb.cells[0].outputs
    assert [o.output_type for o in outs] == ['execute_result'] and 'image/png' in outs[0].data, outs
    assert 'application/vnd.jupyter.widget-view+json' not in outs[0].data
    assert outs[0].metadata['image/png']['alt'].startswith('4 panels, the image and the outputs of conv 1 to 3')
    assert 'widgets' not in nb.metadata


# Errors: each names what it is about, before any work
class Lambda(nn.Module):
    def __init__(self, f): super().__init__(); self.f = f
    def forward(self, x): return self.f(x)

class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0: return x  # control flow on a value: fx can't trace it
        return -x

class Pair(nn.Module):
    def __init__(self): super().__init__(); self.conv = nn.Conv2d(1, 1, 3)
    def forward(self, x): return self.conv(x), x

@pytest.mark.parametrize('model,size,msg', [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Lambda(lambda x: torch.flip(x, [-1])))), 28, "node 'flip' (flip) is not an operation receptive_field knows"),
    (nn.Conv1d(1, 2, 3), 28, "node 'Conv1d' (Conv1d)"),
    (nn.Conv2d(1, 2, 3), 0, 'input_size must be'),
    (nn.Sequential(nn.Conv2d(1, 2, 5), nn.Conv2d(2, 2, 5)), 6, "node '1' (Conv2d) can't be applied to 2 positions"),
    (nn.Sequential(nn.Flatten(), nn.Conv2d(2, 2, 3)), 6, "slides over dims that are not the image's rows and columns (after a flatten"),
    (nn.Conv2d(1, 2, 3, padding=1, padding_mode='circular'), 6, 'circular'),
    (nn.AdaptiveAvgPool2d(3), 28, 'pools 28 positions into 3 windows of unequal size; use an input whose size here is a multiple of 3'),
    (Branchy(), 28, "torch.fx can't trace Branchy"),
    (Pair(), 28, 'returns one tensor'),
], ids=['unknown op', 'conv1d', 'size 0', 'too small', 'after flatten', 'circular', 'adaptive uneven', 'untraceable', 'tuple out'])
def test_errors(model, size, msg):
    with pytest.raises(ValueError, match=re_escape(msg)): receptive_field(model, size)

def re_escape(s):
    import re
    return re.escape(s)

def test_argument_errors():
    with pytest.raises(ValueError, match='axis must be at most 1'): receptive_field(nn.Conv2d(1, 2, 3), 28, axis=2)
    with pytest.raises(ValueError, match='model must be an nn.Module, got function'): receptive_field(lambda x: x, 28)
    with pytest.raises(ValueError, match=r'input_size must be .*pair'): receptive_field(nn.Conv2d(1, 2, 3), (28, 28, 3))


# Branches: residual additions, concatenations, gates; measured on the traced graph
class TinyRes(nn.Module):
    def __init__(self, c=2, ks=3):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, ks, padding=ks//2), nn.Conv2d(c, c, ks, padding=ks//2)
    def forward(self, x): return x + self.conv2(torch.relu(self.conv1(x)))

class Down(nn.Module):
    def __init__(self, c=1, shortcut='conv'):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.short = nn.Conv2d(c, c, 1, stride=2) if shortcut == 'conv' else nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c, c, 1))
    def forward(self, x): return self.short(x) + self.conv2(torch.relu(self.conv1(x)))

class Gate(nn.Module):
    def __init__(self, c=1):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(c, c, 3, padding=1), nn.AdaptiveAvgPool2d(1)
    def forward(self, x):
        x = self.conv(x)
        return x * torch.sigmoid(self.pool(x))

class Incept(nn.Module):
    def __init__(self, c=1):
        super().__init__()
        self.b1, self.b3, self.b5 = nn.Conv2d(c, 1, 1), nn.Conv2d(c, 1, 3, padding=1), nn.Sequential(nn.Conv2d(c, 1, 3), nn.ZeroPad2d(1))
        self.pool = nn.MaxPool2d(3, 1, 1)
    def forward(self, x): return torch.cat([self.b1(x), self.b3(x), self.b5(x), F.max_pool2d(self.pool(x), 3, 1, 1)], 1)

BRANCHY = dict(res=lambda: nn.Sequential(nn.Conv2d(1, 2, 3, 2, 1), TinyRes(), TinyRes(ks=5)), down=lambda: nn.Sequential(Down(), Down()),
               gate=lambda: nn.Sequential(Down(), Gate(), Down()), incept=lambda: nn.Sequential(Incept(), nn.Conv2d(4, 1, 3, 2)))

@pytest.mark.parametrize('name', list(BRANCHY))
def test_branching_models_match_gradients(name):
    "Every unit's field, clipped to a 20x20 input, is where its gradient is (every unit, so edges and corners too)"
    m = BRANCHY[name]()
    gm = rf_trace(m)
    rh, rw = (t.iloc[-1] for t in tables(gm, 20))
    for i, j in itertools.product(range(rh['out']), range(rw['out'])):
        assert grad_box(gm, output_node(gm), (20, 20), (i, j), c=1) == (field_bounds(rh, i, 20), field_bounds(rw, j, 20)), (name, i, j)

def test_misaligned_branches_name_the_node():
    with pytest.raises(AlignmentError, match=r"node 'add' \(add\) joins branches .* from 'short.1', unit 0 at 0.5, jump 2; from 'conv2', unit 0 at 0, jump 2"):
        receptive_field(Down(shortcut='pool'), 28)

def test_a_linear_layer_on_the_columns_mixes_them():
    "nn.Linear acts on the last dim: here the columns, so each unit sees its whole row band, and the rows keep their fields"
    m = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Linear(12, 5))
    rh, rw = receptive_field(m, 12, 0).iloc[-1], receptive_field(m, 12, 1).iloc[-1]
    assert (rh['out'], rh['size'], rw['out'], rw['size']) == (12, 3, 1, 14)
    gm = rf_trace(m)
    assert grad_box(gm, output_node(gm), (12, 12), (5, 0), c=1) == ((4, 6), (0, 11))

def test_our_layers_are_leaves():
    "Models built on the layers chapter's Conv2d and pools are read as PyTorch's: our layers stay whole nodes"
    from miniconv.layers import to_ours
    m = nn.Sequential(Down(), nn.MaxPool2d(3, 2, 1), Gate())
    ours = to_ours(m)
    assert [n.op for n in rf_trace(ours).graph.nodes] == [n.op for n in rf_trace(m).graph.nodes]
    for a in (0, 1): assert receptive_field(ours, 28, a).equals(receptive_field(m, 28, a))

def test_modules_called_twice_get_their_own_rows():
    class Twice(nn.Module):
        def __init__(self): super().__init__(); self.conv, self.relu = nn.Conv2d(1, 1, 3), nn.ReLU()
        def forward(self, x): return self.relu(self.conv(self.relu(x)))
    assert receptive_field(Twice(), 10)['name'].tolist() == ['input', 'relu', 'conv', 'relu_1']


# 100 random graphs that branch and join: a stem, then residual blocks (identity, conv or pool shortcuts), concatenations,
# gates from a global pool, and pairs of branches that may not be centred alike
def same_conv(r, ni, nf):
    "A convolution that keeps the grid: an odd kernel, stride 1, padding (ks-1)/2 times the dilation"
    ks, d = r.choice([1, 3, 5]), r.choice([1, 1, 2])
    return nn.Conv2d(ni, nf, ks, padding=d*(ks-1)//2, dilation=d)

class RandGraph(nn.Module):
    "A random graph of blocks, kept as a list of kinds so that fx can trace the loop"
    def __init__(self, r):
        super().__init__()
        self.stem, self.kinds, self.mods, c = rand_conv(r, 1, 2), [], nn.ModuleList(), 2
        for _ in range(r.randint(1, 4)):
            kind = r.choice(['res', 'res', 'res', 'cat', 'gate', 'down', 'down', 'skew'])
            a, b, c2 = self.block(r, kind, c)
            self.mods.extend([a, b]); self.kinds.append(kind); c = c2
    def block(self, r, kind, c):
        if kind == 'gate': return nn.AdaptiveAvgPool2d(1), r.choice([nn.Sigmoid, nn.ReLU])(), c
        if kind == 'skew':  # two windows of one size, padded unevenly at random: the same output size, centred alike or not
            k = r.choice([2, 3, 3])
            pads = [tuple(v for _ in range(2) for p in [r.choice([(k-1)//2, (k-1)//2, r.randint(0, k-1)])] for v in (p, k-1-p)) for _ in range(2)]
            return nn.Sequential(nn.ZeroPad2d(pads[0]), nn.Conv2d(c, c, k)), nn.Sequential(nn.ZeroPad2d(pads[1]), nn.Conv2d(c, c, k)), c
        if kind == 'down':  # a stride-2 or -3 block; a 2x2 average pool in the shortcut is half a pixel off
            st = r.choice([2, 3])
            return nn.Conv2d(c, c, 3, stride=st, padding=1), nn.Conv2d(c, c, 1, stride=st) if r.random() < .8 else nn.AvgPool2d(st, st, ceil_mode=True), c
        a = nn.Sequential(same_conv(r, c, c), r.choice(ACTS)(), same_conv(r, c, c))
        return a, nn.Identity() if r.random() < .5 else same_conv(r, c, c), 2*c if kind == 'cat' else c
    def forward(self, x):
        x = self.stem(x)
        for k, kind in enumerate(self.kinds):
            a, b = self.mods[2*k], self.mods[2*k+1]
            if kind == 'cat': x = torch.cat([a(x), b(x)], 1)
            elif kind == 'gate': x = x * b(a(x))
            else: x = a(x) + b(x)
        return x

def check_graph(seed):
    "'misaligned', 'refused' (PyTorch refuses too) or the number of units checked exactly"
    r = random.Random(seed)
    torch.manual_seed(seed)
    h, w = r.randint(24, 64), r.randint(24, 64)
    model = RandGraph(r)
    gm = rf_trace(model)
    try: rh, rw = tables(gm, (h, w))
    except AlignmentError: return 'misaligned'
    except ValueError:
        with pytest.raises(RuntimeError): model(torch.ones(1, 1, h, w))
        return 'refused'
    out = model(torch.ones(1, 1, h, w))
    assert tuple(out.shape[-2:]) == (rh['out'].iloc[-1], rw['out'].iloc[-1]), seed
    oh, ow, exact = *out.shape[-2:], 0
    units = {(0, 0), (oh-1, ow-1), (oh//3, ow//3), (central_unit(rh.iloc[-1], h), central_unit(rw.iloc[-1], w))}
    for i, j in units:
        want, got = (field_bounds(rh.iloc[-1], i, h), field_bounds(rw.iloc[-1], j, w)), grad_box(gm, output_node(gm), (h, w), (i, j), c=1)
        if want == (field_bounds(rh.iloc[-1], i), field_bounds(rw.iloc[-1], j)): assert got == want, (seed, i, j); exact += 1
        else:  # clipped by the image: as for the stacks above, within the field, and its first pixel exact when there are no holes
            assert got is None or all(v[0] <= g[0] <= g[1] <= v[1] for g, v in zip(got, want)), (seed, i, j)
            if got is not None and not has_holes(model): assert (got[0][0], got[1][0]) == (want[0][0], want[1][0]), (seed, i, j)
    return exact

@pytest.mark.slow
def test_random_graphs_match_gradients():
    res = [check_graph(seed) for seed in range(100)]
    checked = [v for v in res if isinstance(v, int)]
    assert len(checked) >= 70 and sum(checked) >= 80 and res.count('misaligned') >= 10, (len(checked), sum(checked), res.count('misaligned'))


# torchvision's classification models, built on the meta device (no weights, no download). The field of the central unit of
# the last grid (what the final global pool reads) is compared with the gradient, on an input tall enough that this field is not
# clipped along the height, and narrow across (then the same along the width): the two axes are independent, and the input
# stays small. A field that is the same for every unit (jump 0, after a squeeze-and-excitation gate) covers the whole image.
TV = ['resnet18', 'resnet50', 'resnext50_32x4d', 'vgg11', 'alexnet', 'squeezenet1_0', 'mobilenet_v2', 'mobilenet_v3_small',
      'mobilenet_v3_large', 'efficientnet_b0', 'mnasnet0_5', 'shufflenet_v2_x0_5', 'googlenet', 'inception_v3', 'densenet121',
      'regnet_x_400mf', 'regnet_y_400mf', 'convnext_tiny']

def tv_model(name):
    import torchvision.models as tvm
    kw = dict(weights=None, **(dict(aux_logits=False, init_weights=False) if name in ('googlenet', 'inception_v3') else {}))
    if name.startswith('regnet'): return getattr(tvm, name)(**kw).to('meta')  # its constructor reads tensor values
    with torch.device('meta'): return getattr(tvm, name)(**kw)

def last_grid(gm):
    "The graph up to the node that the last global pool (adaptive pool or mean) reads, and that node"
    pools = [n for n in gm.graph.nodes if (n.op == 'call_module' and isinstance(gm.get_submodule(n.target), (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)))
             or n.target in (F.adaptive_avg_pool2d, 'mean')]
    g = fx.Graph()
    env = {}
    for n in gm.graph.nodes:
        env[n] = g.node_copy(n, env.__getitem__)
        if n is pools[-1].args[0]: break
    g.output(env[n])
    return fx.GraphModule(gm, g), env[n]

@pytest.mark.slow
@pytest.mark.parametrize('name', TV)
def test_torchvision_models_match_gradients(name):
    model = tv_model(name)
    full = receptive_field(model, 299 if name == 'inception_v3' else 224)
    assert full['note'].iloc[-1] == 'depends on the input size' and full['out'].iloc[-1] == 1
    sub, node = last_grid(rf_trace(model))
    f = receptive_field(sub, 256).iloc[-1]
    tall = 32*math.ceil((f['size'] + 2*f['jump'])/32) if f['jump'] else 256
    for a in (0, 1):
        hw = (tall, 96) if a == 0 else (96, tall)
        rh, rw = (t.iloc[-1] for t in tables(sub, hw))
        unit = central_unit(rh, hw[0]), central_unit(rw, hw[1])
        want, got = (field_bounds(rh, unit[0], hw[0]), field_bounds(rw, unit[1], hw[1])), grad_box(sub, output_node(sub), hw, unit)
        assert got[a] == want[a], (name, a)  # the tall axis: exact
        if f['jump']: assert want[a] == field_bounds((rh, rw)[a], unit[a]), (name, a)  # and not clipped
        else: assert want[a] == (0, hw[a]-1)  # the same field for every unit: the whole image
        # the narrow axis is clipped: the first pixel is exact; pixels at the far edge that no window reaches (a stride that
        # doesn't divide the input, valid convolutions) are in the field but get no gradient
        assert got[1-a][0] == want[1-a][0] and got[1-a][1] <= want[1-a][1], (name, a)

@pytest.mark.parametrize('name,msg', [('vit_b_16', "node 'cat' (cat) concatenates along the image's rows or columns"),
                                      ('swin_t', "node 'shifted_window_attention' (shifted_window_attention) is not an operation")], ids=['vit_b_16', 'swin_t'])
@pytest.mark.slow
def test_attention_models_are_refused(name, msg):
    with pytest.raises(ValueError, match=re_escape(msg)): receptive_field(tv_model(name), 224)

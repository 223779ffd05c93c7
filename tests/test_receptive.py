"Check `receptive_field` against a gradient measurement on many random sequential models."
import random

import pytest
import torch
from torch import nn

from miniconv.receptive_field import receptive_field, field_bounds, RF_COLUMNS

ACTS = [nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Identity, lambda: nn.LeakyReLU(0.1)]

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

def _pair(v): return v if isinstance(v, tuple) else (v, v)

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
        rh, rw = receptive_field(model, (h, w), axis=0), receptive_field(model, (h, w), axis=1)
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

def test_measurement_can_fail():
    "A deliberately wrong field (one layer dropped) disagrees with the gradients"
    m = positive_(nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 2, 1)))
    wrong = receptive_field(m[:1], 28).iloc[-1]
    assert grad_bounds(m, 28, 28, (3, 3)) != (field_bounds(wrong, 3, 28),)*2

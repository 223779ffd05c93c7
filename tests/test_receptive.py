"Check `receptive_field` against a gradient measurement on many random sequential models, pooling with ceil_mode against PyTorch, and the explorer."
import itertools, os, random

import pytest
import torch
from torch import nn

from miniconv.cnn import simple_cnn
from miniconv.receptive_field import receptive_field, field_bounds, unit_fields, rf_explorer, RF_COLUMNS, _leaves

pytestmark = pytest.mark.usefixtures('one_thread')  # many tiny tensors: one thread is faster than waiting on a busy second

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


# Pooling with ceil_mode: a last window may hang over the input, or even be wider than all of it (issue 16, section 5)
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

def test_ceil_mode_sizes_match_pytorch():
    "On inputs of 1 to 8 pixels, receptive_field gives PyTorch's output size, or refuses where PyTorch refuses"
    n_over = n_refused = 0
    for pool in ceil_pools():
        for n in range(1, 9):
            want, m = torch_out(pool, n), nn.Sequential(pool)
            if want is None:
                with pytest.raises(ValueError): receptive_field(m, n)
                n_refused += 1
                continue
            assert receptive_field(m, n)['out'].iloc[-1] == want, (pool, n)
            d, ks, pad = _pair(getattr(pool, 'dilation', 1))[0], _pair(pool.kernel_size)[0], _pair(pool.padding)[0]
            n_over += n + 2*pad < d*(ks-1) + 1  # one window wider than the whole padded input
    assert n_over >= 20 and n_refused >= 20, (n_over, n_refused)  # the grid does reach both kinds of edge case

def test_ceil_mode_fields_match_gradients():
    "For avg pools with ceil_mode (a max pool's gradient only reaches its argmax), every unit's clipped field is where its gradient is"
    n_checked = 0
    for pool in ceil_pools():
        if not isinstance(pool, nn.AvgPool2d): continue
        for n in range(1, 9):
            if torch_out(pool, n) is None: continue
            m = nn.Sequential(nn.Conv2d(1, 1, 1), pool)
            row = receptive_field(positive_(m), n).iloc[-1]
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
    rh, rw = receptive_field(m, hw, 0), receptive_field(m, hw, 1)
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
    "live=True: the sliders pick the unit, a layer change re-centres the unit within the new grid, and the text follows"
    w = rf_explorer(simple_cnn(), digit_like(), live=True)
    (s_k, s_i, s_j), note = w.children[0].children, w.children[1]
    assert (s_k.value, s_i.value, s_j.value, s_i.max) == (3, 2, 2, 3)
    assert 'unit (2, 2) of conv 3' in note.value
    s_i.value = 0
    (r0, r1), (c0, c1) = unit_fields(simple_cnn(), 28, '2.0', 0, 2)['input']
    assert 'unit (0, 2) of conv 3' in note.value and f"input, rows {r0} to {r1} and columns {c0} to {c1}" in note.value
    s_k.value = 1
    assert (s_i.max, s_j.max, s_i.value, s_j.value) == (13, 13, 7, 7) and 'unit (7, 7) of conv 1' in note.value
    s_k.value = 5
    assert (s_i.max, s_i.value) == (0, 0) and 'input, rows 0 to 27 and columns 0 to 27' in note.value

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

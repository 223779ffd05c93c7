"Output sizes of `miniconv.strides_padding` against real PyTorch layers over a grid, and the diagrams against `F.conv2d`."
import io, itertools, warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from hypothesis import given, settings, assume, strategies as st
from PIL import Image

from miniconv.strides_padding import conv_out_size, conv_transpose_out_size, pool_out_size, same_padding
from miniconv.strides_padding import conv_steps, slide_conv2d, conv_gif, show_conv, drawn_output


pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py


def torch_shape(m, h, w):
    "(height, width) of the output of layer `m` for a 1-channel `h`x`w` input, or None if PyTorch refuses or returns an empty axis"
    try:
        with torch.no_grad(): shape = tuple(m(torch.zeros(1, 1, h, w)).shape[-2:])
    except RuntimeError: return None
    return shape if min(shape) >= 1 else None  # ConvTranspose2d can return a size-0 axis; we raise a ValueError instead


def ours(f, h, w, *args, **kw):
    "(f(h), f(w)), or None if `f` raises a ValueError"
    try: return f(h, *args, **kw), f(w, *args, **kw)
    except ValueError: return None


def _layer(make):
    "`make()`, or None if PyTorch refuses these arguments when building the layer"
    try: return make()
    except (ValueError, RuntimeError): return None


def check_grid(make, f, grid, sizes=range(1, 11)):
    "Compare `f` with layer `make(*args)` on h x (h+3) inputs for every `args` in `grid`; return how many cases agreed"
    n = 0
    for args in grid:
        m = _layer(lambda: make(*args))
        for h in sizes:
            exp = None if m is None else torch_shape(m, h, h + 3)
            got = ours(f, h, h + 3, *args)
            assert got == exp, f"{f.__name__}(n=({h}, {h+3}), args={args}): ours {got}, PyTorch {exp}"
            n += 1
    return n


def test_conv2d_grid():
    grid = itertools.product(range(1, 6), range(1, 5), range(0, 4), range(1, 4))  # ks, stride, padding, dilation
    n = check_grid(lambda k, s, p, d: nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d),
                   lambda n, k, s, p, d: conv_out_size(n, k, s, p, d), grid)
    assert n == 5*4*4*3*10


def test_conv_transpose2d_grid():
    grid = itertools.product(range(1, 5), range(1, 4), range(0, 4), range(0, 3), range(1, 4))  # ks, stride, padding, output_padding, dilation
    n = check_grid(lambda k, s, p, a, d: nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=a, dilation=d),
                   lambda n, k, s, p, a, d: conv_transpose_out_size(n, k, s, p, a, d), grid, sizes=range(1, 8))
    assert n == 4*3*4*3*3*7


@pytest.mark.parametrize('ceil_mode', [False, True])
def test_maxpool2d_grid(ceil_mode):
    grid = itertools.product(range(1, 5), (None, 1, 2, 3), range(0, 3), range(1, 3))  # ks, stride, padding, dilation
    n = check_grid(lambda k, s, p, d: nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode),
                   lambda n, k, s, p, d: pool_out_size(n, k, s, p, d, ceil_mode=ceil_mode), grid)
    assert n == 4*4*3*2*10


@pytest.mark.parametrize('ceil_mode', [False, True])
def test_avgpool2d_grid(ceil_mode):
    grid = itertools.product(range(1, 6), (None, 1, 2, 3), range(0, 3))  # ks, stride, padding
    n = check_grid(lambda k, s, p: nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode),
                   lambda n, k, s, p: pool_out_size(n, k, s, p, ceil_mode=ceil_mode), grid)
    assert n == 5*4*3*10


def test_grids_include_hard_cases():
    "The grids above contain non-exact divisions, and ceil_mode cases where PyTorch drops a last window"
    non_exact = [(n, k, s, p) for n, k, s, p in itertools.product(range(1, 11), range(1, 5), (2, 3), range(3))
                 if k <= n + 2*p and (n + 2*p - k) % s]
    assert non_exact
    dropped = [(n, k, s, p) for n, k, s, p in itertools.product(range(1, 11), range(1, 5), (1, 2, 3), range(3))
               if p <= k//2 and k <= n + 2*p and -(-(n + 2*p - k)//s) + 1 > pool_out_size(n, k, s, p, ceil_mode=True)]
    assert (5, 2, 2, 1) in dropped
    for n, k, s, p in dropped: assert torch_shape(nn.MaxPool2d(k, s, p, ceil_mode=True), n, n) == (pool_out_size(n, k, s, p, ceil_mode=True),)*2


def test_same_padding():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for k, d, n in itertools.product(range(1, 8), range(1, 4), range(1, 12)):
            if (d*(k-1)) % 2:
                with pytest.raises(ValueError, match=f"ks={k}, dilation={d}"): same_padding(k, d)
                continue
            p = same_padding(k, d)
            if d*(k-1) + 1 > n + 2*p: continue
            assert conv_out_size(n, k, padding=p, dilation=d) == n
            assert torch_shape(nn.Conv2d(1, 1, k, padding='same', dilation=d), n, n + 3) == (n, n + 3)
            assert torch_shape(nn.Conv2d(1, 1, k, padding=p, dilation=d), n, n + 3) == (n, n + 3)


@pytest.mark.parametrize('call, text', [
    (lambda: conv_out_size(5, 0), 'ks=0'), (lambda: conv_out_size(5, -3), 'ks=-3'),
    (lambda: conv_out_size(5, 3, stride=0), 'stride=0'), (lambda: conv_out_size(5, 3, dilation=0), 'dilation=0'),
    (lambda: conv_out_size(5, 3, padding=-1), 'padding=-1'), (lambda: conv_out_size(0, 1), 'n=0'),
    (lambda: conv_out_size(4, 3, dilation=2), 'below 1'), (lambda: conv_out_size(2, 5, padding=1), 'n=2, padding=1'),
    (lambda: conv_out_size(5, 2.0), 'ks=2.0'), (lambda: conv_out_size(5, 3, stride=None), 'stride=None'),
    (lambda: pool_out_size(5, 3, padding=2), 'padding=2, ks=3'), (lambda: pool_out_size(5, 3, stride=0), 'stride=0'),
    (lambda: conv_transpose_out_size(3, 3, stride=2, output_padding=2), 'output_padding=2, stride=2'),
    (lambda: conv_transpose_out_size(1, 1, padding=1), 'below 1'), (lambda: conv_transpose_out_size(3, 3, output_padding=-1), 'output_padding=-1'),
    (lambda: same_padding(0), 'ks=0'), (lambda: same_padding(3, dilation=-1), 'dilation=-1'),
    (lambda: conv_steps(torch.zeros(5), torch.zeros(3, 3)), '(5,)'),
])
def test_bad_input(call, text):
    with pytest.raises(ValueError) as e: call()
    assert text in str(e.value)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 4), kw=st.integers(1, 4),
       s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_slide_conv2d_matches_conv2d(h, w, kh, kw, s, p, d, seed):
    assume(d*(kh-1) < h + 2*p and d*(kw-1) < w + 2*p)
    g = torch.Generator().manual_seed(seed)
    x, k = torch.randint(-3, 4, (h, w), generator=g).float(), torch.randint(-2, 3, (kh, kw), generator=g).float()
    exp = F.conv2d(x[None, None], k[None, None], stride=s, padding=p, dilation=d)[0, 0]
    assert torch.equal(slide_conv2d(x, k, s, p, d), exp)
    steps = conv_steps(x, k, s, p, d)
    assert len(steps) == conv_out_size(h, kh, s, p, d)*conv_out_size(w, kw, s, p, d)
    for t in steps:  # every tap inside the padded input
        assert 0 <= min(t.rows) and max(t.rows) < h + 2*p and 0 <= min(t.cols) and max(t.cols) < w + 2*p


def test_drawn_figure_matches_conv2d():
    import matplotlib; matplotlib.use('agg')
    import matplotlib.pyplot as plt
    g = torch.Generator().manual_seed(1)
    x, k = torch.randint(0, 5, (4, 6), generator=g).float(), torch.randint(-1, 2, (3, 2), generator=g).float()
    fig = show_conv(x, k, stride=2, padding=1, at=(0, -1))
    exp = F.conv2d(x[None, None], k[None, None], stride=2, padding=1)[0, 0]
    for ax in fig.axes: assert torch.equal(drawn_output(ax), exp)
    plt.close(fig)


@pytest.mark.parametrize('h, w, ks, s, p, d', [(3, 5, 2, 2, 1, 1), (4, 4, 2, 1, 0, 2)])
def test_gif_frames(tmp_path, h, w, ks, s, p, d):
    x, k = torch.arange(h*w).reshape(h, w).float() % 4, torch.ones(ks, ks)
    fname = tmp_path/'c.gif'
    b = conv_gif(x, k, s, p, d, fname=fname, dpi=40)
    assert fname.read_bytes() == b
    im = Image.open(io.BytesIO(b))
    assert im.format == 'GIF' and im.is_animated
    assert im.n_frames == conv_out_size(h, ks, s, p, d)*conv_out_size(w, ks, s, p, d)

"""Output sizes of `miniconv.strides_padding` against real PyTorch layers over a grid, and the diagrams against `F.conv2d`.
Also two rules for every saved notebook: no widget state, and no picture shown twice by one cell."""
import base64, functools, hashlib, io, itertools, json, re, warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from hypothesis import given, settings, assume, strategies as st
from PIL import Image

from miniconv.strides_padding import conv_out_size, conv_transpose_out_size, pool_out_size, same_padding
from miniconv.strides_padding import conv_steps, slide_conv2d, conv_gif, show_conv, conv_alt
from miniconv.plotting import COLUMN_PX, LABEL_PX, drawn_output, gif_html, text_px, _conv_canvas, _conv_show_step


pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py
slow = pytest.mark.slow  # over half a second (many layers, figures or GIF frames): `make check` skips these


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


@slow
def test_conv2d_grid():
    grid = itertools.product(range(1, 6), range(1, 5), range(0, 4), range(1, 4))  # ks, stride, padding, dilation
    n = check_grid(lambda k, s, p, d: nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d),
                   lambda n, k, s, p, d: conv_out_size(n, k, s, p, d), grid)
    assert n == 5*4*4*3*10


@slow
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


@slow
@pytest.mark.parametrize('h, w, ks, s, p, d', [(3, 5, 2, 2, 1, 1), (4, 4, 2, 1, 0, 2)])
def test_gif_frames(tmp_path, h, w, ks, s, p, d):
    x, k = torch.arange(h*w).reshape(h, w).float() % 4, torch.ones(ks, ks)
    fname = tmp_path/'c.gif'
    b = conv_gif(x, k, s, p, d, fname=fname, dpi=40)
    assert fname.read_bytes() == b
    im = Image.open(io.BytesIO(b))
    assert im.format == 'GIF' and im.is_animated
    assert im.n_frames == conv_out_size(h, ks, s, p, d)*conv_out_size(w, ks, s, p, d)


# Figures a learner can read: sizes on the page, arrows clear of the numbers, titles inside the frame, alt text

def _xw(h, w, kh, kw, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 12, (h, w), generator=g).float(), torch.randint(-1, 2, (kh, kw), generator=g).float()

# (input h, w), (kernel h, w), stride, padding, dilation, steps drawn: the chapter's figures and some larger ones
FIGS = [((5, 5), (3, 3), 2, 1, 1, (0, 1, -1)), ((5, 5), (4, 4), 1, 2, 1, (0, -1)), ((4, 6), (2, 3), 1, 1, 1, (0, -1)),
        ((5, 5), (3, 3), 1, 1, 2, (0, -1)), ((2, 2), (1, 1), 1, 0, 1, (0,)), ((9, 12), (3, 3), 1, 2, 1, (0, 1, 2)),
        ((6, 7), (3, 3), 2, 1, 2, (4,))]


@slow
@pytest.mark.parametrize('hw, khw, s, p, d, at', FIGS)
def test_figure_labels_readable(hw, khw, s, p, d, at):
    "Every label is at least 10 CSS pixels where the page shows the figure; the weights are `LABEL_PX`; alt text is set"
    import matplotlib.pyplot as plt
    x, k = _xw(*hw, *khw)
    fig = show_conv(x, k, s, p, d, at=at)
    sizes = text_px(fig)
    assert min(px for _, px in sizes) >= 10, sorted(sizes, key=lambda t: t[1])[:3]
    weights = {f"{v:g}" for v in k.flatten().tolist()}
    assert min(px for t, px in sizes if t in weights) >= LABEL_PX - 0.01
    assert fig.get_tightbbox().width*fig.dpi <= COLUMN_PX + 1  # shown at its natural size in the column
    assert fig.miniconv_alt == conv_alt(x, k, s, p, d, at=[a % len(conv_steps(x, k, s, p, d)) for a in at])
    assert f"{hw[0]}×{hw[1]} input" in fig.miniconv_alt and f"{khw[0]}×{khw[1]} kernel" in fig.miniconv_alt
    plt.close(fig)


@slow
def test_text_px_measures_shrinking():
    "`text_px` is a measurement: a figure wider than the column shows its text smaller. `show_conv` makes up for it"
    import matplotlib.pyplot as plt
    figs = [plt.figure(figsize=(w, 1)) for w in (3, 3*COLUMN_PX/100)]  # fits the column, and three times too wide
    for f in figs: f.text(0.02, 0.5, 'a label', fontsize=9, ha='left'); f.text(0.98, 0.5, 'another', fontsize=9, ha='right')
    (_, narrow), (_, wide) = text_px(figs[0])[0], text_px(figs[1])[0]
    assert narrow == pytest.approx(9*figs[0].dpi/72) and wide < narrow/2
    x, k = _xw(5, 5, 3, 3)
    big = show_conv(x, k, padding=1, at=(0,), imsize=0.6)  # 60-pixel cells: wider than the column, so the page shrinks it
    assert big.get_figwidth()*big.dpi > COLUMN_PX and min(px for _, px in text_px(big)) >= 10
    plt.close('all')


@slow
@pytest.mark.parametrize('hw, khw, s, p, d, at, below', [(*f, False) for f in FIGS[:5]] + [(*f, True) for f in FIGS[:3:2]])
def test_arrow_never_covers_a_number(hw, khw, s, p, d, at, below):
    "At every step, the arrow from the window to its output cell crosses no text: values, weights or captions"
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path
    from matplotlib.transforms import Bbox
    x, k = _xw(*hw, *khw)
    steps = conv_steps(x, k, s, p, d)
    fig, ax = plt.subplots(figsize=(6, 5))
    r = fig.canvas.get_renderer()
    a = _conv_canvas(ax, x, k, steps, p, below=below)  # drawn once, as conv_gif does; every output value shown at every step
    for n in range(len(steps)):
        _conv_show_step(ax, a, n)
        arrows = [a for a in ax.patches if isinstance(a, FancyArrowPatch)]
        assert len(arrows) == 1
        path = arrows[0].get_transform().transform_path(arrows[0].get_path())
        lines = [Path(v) for v in path.to_polygons(closed_only=False)]  # the shaft and the head, in display pixels
        crosses = lambda bb: any(l.intersects_bbox(bb, filled=False) for l in lines)
        hit = [t.get_text() for t in ax.texts if crosses(t.get_window_extent(r))]
        assert not hit, (hw, khw, s, p, d, below, n, hit)
        # it enters the output cell of this step, and the inside of no other output cell
        def inner(t, m): # An output value's text; margin in cells
            (cx, cy) = t.get_position()
            return Bbox(ax.transData.transform([(cx - .5 + m, cy - .5 + m), (cx + .5 - m, cy + .5 - m)]))
        outs = {t.get_gid(): t for t in ax.texts if (t.get_gid() or '').startswith('out ')}
        me = outs.pop(f"out {steps[n].i} {steps[n].j}")
        assert crosses(inner(me, 0.05))
        assert not [g for g, t in outs.items() if crosses(inner(t, 0.1))], (n, steps[n])
    plt.close(fig)


@slow
@pytest.mark.parametrize('h, w, ks, s, p, d', [(5, 5, 3, 2, 1, 1), (2, 2, 1, 1, 0, 1), (1, 3, 1, 3, 0, 1), (4, 4, 2, 1, 0, 2)])
def test_gif_titles_inside_the_frame(tmp_path, h, w, ks, s, p, d):
    "No title is clipped: the outer columns of every frame stay blank, even when the drawing is narrower than the title"
    import numpy as np
    from PIL import ImageSequence
    x, k = _xw(h, w, ks, ks)
    im = Image.open(io.BytesIO(conv_gif(x, k, s, p, d, fname=tmp_path/'c.gif')))
    assert im.size[0] <= COLUMN_PX
    for f in ImageSequence.Iterator(im):
        a = np.asarray(f.convert('L'))
        assert a[:, :3].min() == 255 and a[:, -3:].min() == 255 and a[:2].min() == 255
        assert a[: a.shape[0]//6].min() < 128  # and there is a title at the top


def test_gif_html_alt():
    "`gif_html` needs alt text, and escapes it; the picture sits in a box the site lets scroll sideways"
    with pytest.raises(TypeError): gif_html(b'GIF89a')
    h = gif_html(b'GIF89a', 'a "3×3" <kernel>', width=200).data
    assert 'alt="a &quot;3×3&quot; &lt;kernel&gt;"' in h and 'width="200"' in h
    assert h.startswith('<div class="mc-scroll"><img src="data:image/gif;base64,') and h.endswith('</div>')
    with pytest.raises(ValueError, match='width'): gif_html(b'GIF89a', 'x', width='100" onload="')


# Every saved notebook: no widget state, and no picture twice in one cell

NBS = sorted((Path(__file__).resolve().parents[1]/'nbs').glob('**/*.ipynb'))
_DATA_URI = re.compile(r'data:image/[\w.+-]+;base64,([A-Za-z0-9+/=\s]+)')

@functools.cache
def _nb(p): return json.loads(p.read_text(encoding='utf-8'))

def widget_state(nb): # A notebook, as JSON
    "The notebook's saved widget state (`metadata.widgets`), or None"
    return nb.get('metadata', {}).get('widgets')

def pictures(cell): # A code cell, as JSON
    "SHA-1 of each picture in the cell's outputs: image data, and the base64 images inside HTML"
    for o in cell.get('outputs', []):
        for mime, v in o.get('data', {}).items():
            s = ''.join(v) if isinstance(v, list) else v
            found = [s] if mime.startswith('image/') else _DATA_URI.findall(s) if mime == 'text/html' else []
            for b in found: yield hashlib.sha1(re.sub(r'\s', '', b).encode()).hexdigest()

def repeated_pictures(nb): # A notebook, as JSON
    "The ids of cells whose outputs show one picture more than once"
    res = []
    for c in nb['cells']:
        ps = list(pictures(c))
        if len(ps) != len(set(ps)): res.append(c.get('id'))
    return res

def test_the_notebook_checks_see_what_they_look_for():
    "A check of the checks, on small made-up notebooks"
    png = base64.b64encode(b'\x89PNG a picture').decode()
    html = {'data': {'text/html': f'<div><img src="data:image/png;base64,{png[:8]}\n{png[8:]}"/></div>'}}
    twice = {'cells': [{'id': 'a', 'outputs': [{'data': {'image/png': png}}, {'data': {'image/png': png + '\n'}}]},
                       {'id': 'b', 'outputs': [{'data': {'image/png': png}}, html]},
                       {'id': 'c', 'outputs': [{'data': {'image/png': png}}]}, {'id': 'd', 'outputs': [html]}]}
    assert repeated_pictures(twice) == ['a', 'b']
    assert widget_state({'metadata': {'widgets': {'state': {}}}}) and widget_state({'metadata': {}}) is None

@pytest.mark.parametrize('p', NBS, ids=lambda p: p.name)
def test_no_widget_state(p):
    "No notebook carries widget state: nbdev_clean keeps it (nbdev 2.4.14), so notebooks must be run without storing it"
    assert widget_state(_nb(p)) is None, f"{p.name} carries metadata.widgets: run it with /work/brief/run_nb.py-style store_widget_state=False, or delete the key"

@pytest.mark.parametrize('p', NBS, ids=lambda p: p.name)
def test_no_picture_shown_twice(p):
    "No cell shows the same picture twice (a figure returned by a cell and shown again by pyplot at its end, say)"
    assert not repeated_pictures(_nb(p)), f"{p.name}: cells {repeated_pictures(_nb(p))} show a picture twice"

"""The convolution explorers of the strides chapter cannot disagree with the course.

The HTML/JS widget (`miniconv/assets/conv_explorer.js`, embedded by `explorer_html`) is driven in headless Chromium
through its own sliders over a grid of settings. For each one the test reads from the page the output size, the
formula and, at every step, the input cells the window covers and the output cell it fills; it compares them with
`conv_out_size`, `conv_formula` and `conv_steps`, and those with the shapes of `F.conv2d` and the index sets of
`F.unfold`. Settings PyTorch refuses must be refused on the page with `conv_out_size`'s reason. Other tests check
the keyboard, a phone-sized touch screen, the words for screen readers, and that the page fetches nothing.
The ipywidgets explorer, and the settings both explorers accept, are checked in Python, without a browser."""
import functools, itertools, json
from pathlib import Path

import pytest
from cdp import served_page
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from miniconv.plotting import asset_text, drawn_output
from miniconv.strides_padding import (EXPLORER_RANGES, FORMULA, conv_explorer, conv_formula, conv_out_size, conv_steps,
                                      explorer_html, _demo)

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py
slow = pytest.mark.slow  # Chromium, or many figures: `make check` skips these

# H, W, ks, stride, padding, dilation, set with the sliders: dilation > 1, padding > 0, strides that do not divide
# evenly, kernel spans larger than the padded input, and each slider's one invalid notch (stride 0, padding -1, dilation 0)
SIZES = ((4, 5), (7, 8), (6, 3), (5, 9))
GRID = ([(h, w, ks, s, p, d) for (h, w), ks, s, p, d in itertools.product(SIZES, (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2))] +
        [(h, w, ks, *bad) for (h, w), ks, bad in itertools.product(SIZES, (2, 3), ((0, 1, 1), (2, -1, 1), (2, 1, 0)))])
# Values no slider reaches, set through the widget's script interface: PyTorch's and our words still agree
ODD = [(0, 5, 3, 1, 0, 1), (5, 0, 3, 1, 0, 1), (5, 5, 0, 1, 0, 1), (5, 5, -2, 1, 0, 1), (5, 5, 3, -1, 0, 1),
       (5, 5, 3, 1, -3, 1), (5, 5, 3, 1, 0, -2), (2.5, 5, 3, 1, 0, 1), (5, 5, 3, 1.5, 0, 1), (5, 5, 3, 1, 0.5, 1),
       (1, 1, 9, 1, 4, 1), (10, 10, 7, 4, 3, 4), (3, 9, 3, 1, 0, 2)]
KEYS = ('h', 'w', 'ks', 'stride', 'padding', 'dilation')


@functools.lru_cache(maxsize=None, typed=True)  # the grid test asks up to four times per setting; callers only read it
def expected(h, w, ks, s, p, d):
    "What the page must show, from the chapter's functions: the error, or the sizes, formulas and windows"
    try: oh, ow = conv_out_size(h, ks, s, p, d), conv_out_size(w, ks, s, p, d)  # rows first, as conv_steps asks
    except ValueError as e: return dict(error=str(e))
    steps = conv_steps(torch.zeros(h, w), torch.zeros(ks, ks), s, p, d)
    return dict(outH=oh, outW=ow, rows=conv_formula(h, ks, s, p, d), cols=conv_formula(w, ks, s, p, d),
                steps=[dict(i=t.i, j=t.j, taps=sorted([r, c] for r in t.rows for c in t.cols)) for t in steps])


def pytorch_agrees(h, w, ks, s, p, d, exp):
    "The chapter's answer `exp` against PyTorch: the output shape of `F.conv2d`, and what `F.unfold` puts in each window"
    x, k = torch.zeros(1, 1, h, w), torch.zeros(1, 1, ks, ks)
    if 'error' in exp:
        with pytest.raises(RuntimeError): F.conv2d(x, k, stride=s, padding=p, dilation=d)
        return
    assert F.conv2d(x, k, stride=s, padding=p, dilation=d).shape[-2:] == (exp['outH'], exp['outW'])
    ids = torch.arange(1., h*w + 1).reshape(1, 1, h, w)  # cell (r, c) holds 1 + r*w + c; the padding reads as 0
    cols = F.unfold(ids, ks, dilation=d, padding=p, stride=s)[0].T.long()  # one row per window, row by row
    assert len(cols) == len(exp['steps'])
    for got, t in zip(cols.tolist(), exp['steps']):
        inside = sorted([(v - 1)//w + p, (v - 1) % w + p] for v in got if v)  # padded coordinates of the input cells seen
        assert inside == [[r, c] for r, c in t['taps'] if p <= r < p + h and p <= c < p + w]
        assert len(got) == len(t['taps'])  # and as many taps, the padding ones included


@pytest.fixture(scope='module')
def page(browser, tmp_path_factory):
    "A tiny page with `explorer_html()`'s output, served from 127.0.0.1; `browser` has it loaded"
    with served_page(browser, tmp_path_factory.mktemp('explorer'), 'Convolution explorer', explorer_html(5, 5, 3, stride=2, padding=1).data) as base:
        yield browser, base + 'index.html'


# One call per setting: move each slider as a user does (value, then an `input` event), then every step with the
# step slider, and read what the page shows: the SVG cells marked as taps and the output cell marked current.
DRIVE = """((cfg, api) => {
  const fig = document.querySelector('figure.mc-explorer'), d = fig.dataset;
  const slide = (key, v) => { const e = fig.querySelector(`input[data-key="${key}"]`); e.value = v;
                              e.dispatchEvent(new Event('input', {bubbles: true})); };
  if (api) fig.explorer.set(cfg); else for (const k of Object.keys(cfg)) slide(k, cfg[k]);
  const shown = fig.querySelector('.mc-formula').textContent;
  if (d.error) return {error: d.error, axis: d.errorAxis, shown, reason: fig.querySelector('.mc-reason').textContent,
                       cells: fig.querySelectorAll('svg rect').length};
  const res = {outH: +d.outH, outW: +d.outW, rows: d.formulaRows, cols: d.formulaCols, shown, steps: [],
               nOut: fig.querySelectorAll('svg rect.out').length};
  for (let k = 1; k <= +d.steps; k++) {
    slide('step', k);
    const cur = fig.querySelectorAll('svg rect.out.current');
    res.steps.push({i: +cur[0].dataset.i, j: +cur[0].dataset.j, n: cur.length, step: +d.step,
                    taps: Array.from(fig.querySelectorAll('svg rect.tap'), r => [+r.dataset.r, +r.dataset.c])
                               .sort((a, b) => a[0] - b[0] || a[1] - b[1])});
  }
  slide('step', 1);  // back to the first window
  return res;
})"""


def read_page(cdp, cfg, api=False):
    return cdp.js(f"{DRIVE}({json.dumps(dict(zip(KEYS, cfg)))}, {json.dumps(api)})")


def check(cdp, cfg, api=False):
    exp, got = expected(*cfg), read_page(cdp, cfg, api)
    if 'error' in exp:
        assert got.get('error') == exp['error'], (cfg, got, exp)
        assert exp['error'] in got['shown'] and got['reason'] == exp['error'] and got['cells'] == 0
        return 'refused', 0
    assert 'error' not in got, (cfg, got)
    assert (got['outH'], got['outW'], got['nOut']) == (exp['outH'], exp['outW'], exp['outH']*exp['outW']), cfg
    assert (got['rows'], got['cols']) == (exp['rows'], exp['cols']), cfg
    assert FORMULA in got['shown'] and exp['rows'] in got['shown'] and exp['cols'] in got['shown']
    assert len(got['steps']) == len(exp['steps']), cfg
    for k, (g, e) in enumerate(zip(got['steps'], exp['steps'])):
        assert (g['step'], g['n'], g['i'], g['j']) == (k, 1, e['i'], e['j']), (cfg, k, g)
        assert g['taps'] == e['taps'], (cfg, k, g['taps'], e['taps'])
    return 'drawn', len(got['steps'])


@slow
def test_grid_agrees_with_course_and_pytorch(page):
    "Every setting of the grid, through the sliders; and the odd ones, through the script interface"
    cdp = page[0]
    seen = {'drawn': 0, 'refused': 0, 'windows': 0}
    for cfg, api in [(g, False) for g in GRID] + [(g, True) for g in ODD]:
        what, n = check(cdp, cfg, api)
        seen[what] += 1; seen['windows'] += n
    for cfg in GRID + ODD:
        if all(isinstance(v, int) for v in cfg) and min(cfg[:3]) >= 1: pytorch_agrees(*cfg, expected(*cfg))
    n = len(GRID) + len(ODD)
    print(f"\nexplorer: {n} settings: {seen['drawn']} drawn and compared at each of their {seen['windows']} steps, {seen['refused']} refused")
    assert n >= 200 and seen['drawn'] >= 150 and seen['refused'] >= 40
    # the grid has the hard cases
    ok = [g for g in GRID if 'error' not in expected(*g)]
    assert any(g[5] > 1 for g in ok) and any(g[4] > 0 for g in ok)
    assert any((g[0] + 2*g[4] - g[5]*(g[2] - 1) - 1) % g[3] for g in ok)  # a stride that does not divide evenly
    errors = [expected(*g).get('error', '') for g in GRID]
    for start in ('stride must', 'padding must', 'dilation must', 'output size'): assert any(e.startswith(start) for e in errors), start


@slow
def test_js_arithmetic_matches_python(page):
    "The script's `outSize` on every setting of one axis the sliders reach, and one below each: the same size and formula, or reason"
    cdp = page[0]
    cases = list(itertools.product(*(range(lo - 1, hi + 1) for lo, hi in map(EXPLORER_RANGES.get, ('h', 'ks', 'stride', 'padding', 'dilation')))))
    got = cdp.js(f"""{json.dumps(cases)}.map(a => {{ try {{ return window.MiniconvExplorer.outSize(...a).formula; }}
                                                   catch (e) {{ return 'refused: ' + e.message; }} }})""")
    for a, g in zip(cases, got):
        try: exp = conv_formula(*a)
        except ValueError as e: exp = f'refused: {e}'
        assert g == exp, (a, g, exp)


@slow
def test_keyboard(page):
    "Every control can be reached with Tab and has a label; the arrow keys, Home and End move the window"
    cdp = page[0]
    read_page(cdp, (5, 5, 3, 2, 1, 1))
    ctl = cdp.js("""Array.from(document.querySelectorAll('figure.mc-explorer input, figure.mc-explorer button'))
                    .map(e => [e.tabIndex, e.disabled, (e.labels && e.labels[0] ? e.labels[0].textContent : '') || e.getAttribute('aria-label') || ''])""")
    assert len(ctl) == 9 and all(t >= 0 and not dis and lab for t, dis, lab in ctl), ctl
    cdp.js("document.querySelector('.mc-drawing').focus()")
    assert cdp.js("document.activeElement.className") == 'mc-drawing'
    def key(k, code):
        for t in ('rawKeyDown', 'keyUp'): cdp('Input.dispatchKeyEvent', type=t, key=k, code=k, windowsVirtualKeyCode=code)
        return int(cdp.js("document.querySelector('figure.mc-explorer').dataset.step"))
    assert key('ArrowRight', 39) == 1 and key('ArrowDown', 40) == 2 and key('ArrowLeft', 37) == 1
    assert key('End', 35) == 8 and key('ArrowRight', 39) == 8 and key('Home', 36) == 0
    # a slider moves with the arrow keys too, as any range input does
    cdp.js("document.querySelector('input[data-key=\"padding\"]').focus()")
    key('ArrowRight', 39)
    assert cdp.js("document.querySelector('figure.mc-explorer').dataset.outH") == str(conv_out_size(5, 3, 2, 2))


@slow
@pytest.mark.parametrize('column', [736, 833], ids=['page', 'jupyterlab'])
def test_sliders_have_room(page, column):
    """In a page's column, and at JupyterLab's default output width, the six settings sit in two columns of sliders, each
    with a track of at least 100 px (three columns squeezed them there)"""
    cdp = page[0]
    m = cdp.js(f"""(() => {{ document.querySelector('main').style.maxWidth = '{column}px';
      const m = Array.from(document.querySelectorAll('figure.mc-explorer .mc-controls input'),
                           e => {{ const r = e.getBoundingClientRect(); return [Math.round(r.left), r.width]; }});
      document.querySelector('main').style.maxWidth = ''; return m; }})()""")
    assert len(m) == 6 and len({left for left, _ in m}) == 2 and min(w for _, w in m) >= 100, m


@slow
def test_phone_touch(page):
    "At 375 px wide nothing overflows, targets are finger-sized, and taps move the window"
    cdp, url = page
    cdp('Emulation.setDeviceMetricsOverride', width=375, height=740, deviceScaleFactor=2, mobile=True)
    cdp('Emulation.setTouchEmulationEnabled', enabled=True, maxTouchPoints=1)
    try:
        cdp.goto(url)
        read_page(cdp, (7, 7, 3, 1, 1, 2))
        m = cdp.js("""(() => { const f = document.querySelector('figure.mc-explorer').getBoundingClientRect(),
                                     s = document.querySelector('.mc-drawing svg').getBoundingClientRect();
          return {doc: document.documentElement.scrollWidth, fig: [f.left, f.right], svg: [s.left, s.right, s.width],
                  targets: Array.from(document.querySelectorAll('figure.mc-explorer input, figure.mc-explorer button'),
                                      e => e.getBoundingClientRect().height)}; })()""")
        assert m['doc'] <= 375 and m['fig'][0] >= 0 and m['fig'][1] <= 375 and m['svg'][1] <= 375, m
        assert m['svg'][2] >= 250 and min(m['targets']) >= 44, m  # the drawing uses the width; finger-sized targets
        def tap(sel):  # scroll `sel` into view, tap its middle, and return the step the page shows
            x, y = cdp.js(f"""(() => {{ const e = document.querySelector('{sel}'); e.scrollIntoView({{block: 'center'}});
                                        const r = e.getBoundingClientRect(); return [r.x + r.width/2, r.y + r.height/2]; }})()""")
            cdp('Input.dispatchTouchEvent', type='touchStart', touchPoints=[dict(x=x, y=y)])
            cdp('Input.dispatchTouchEvent', type='touchEnd', touchPoints=[])
            return int(cdp.js("document.querySelector('figure.mc-explorer').dataset.step"))
        assert tap('button.mc-next') == 1 and tap('button.mc-next') == 2 and tap('button.mc-prev') == 1
        assert tap('svg rect.out[data-i="2"][data-j="1"]') == 2*conv_out_size(7, 3, 1, 1, 2) + 1
    finally:
        cdp('Emulation.setTouchEmulationEnabled', enabled=False)
        cdp('Emulation.setDeviceMetricsOverride', width=1280, height=900, deviceScaleFactor=1, mobile=False)
        cdp.goto(url)


@slow
def test_words_for_screen_readers(page):
    "A caption, a described drawing whose words follow the window, and refusals announced"
    cdp = page[0]
    read_page(cdp, (5, 5, 3, 2, 1, 1))
    cdp.js("document.querySelector('figure.mc-explorer').explorer.set({step: 4})")
    w = cdp.js("""(() => { const f = document.querySelector('figure.mc-explorer'), g = f.querySelector('.mc-drawing');
      return {cap: f.querySelector('figcaption').textContent, role: g.getAttribute('role'), label: g.getAttribute('aria-label'),
              live: f.querySelector('.mc-status').getAttribute('aria-live'), status: f.querySelector('.mc-status').textContent,
              svgHidden: g.querySelector('svg').getAttribute('aria-hidden')}; })()""")
    t = conv_steps(torch.zeros(5, 5), torch.zeros(3, 3), 2, 1)[4]
    assert 'Convolution explorer' in w['cap'] and w['role'] == 'img' and w['live'] == 'polite' and w['svgHidden'] == 'true'
    assert w['status'].startswith('Step 5 of 9') and f"output cell ({t.i}, {t.j})" in w['status'] and w['status'] in w['label']
    assert f"rows {', '.join(map(str, t.rows[:-1]))} and {t.rows[-1]}" in w['status']
    got = read_page(cdp, (3, 5, 5, 1, 0, 1))
    assert cdp.js("document.querySelector('.mc-error').getAttribute('role')") == 'alert' and 'n=3' in got['reason']


@slow
def test_page_fetches_nothing(page):
    "Everything the explorer needs is inlined: no request leaves 127.0.0.1, and no script error"
    events = page[0].events  # everything since the page first loaded, through every test above
    reqs = [e['params']['request']['url'] for e in events if e.get('method') == 'Network.requestWillBeSent']
    assert reqs and all(u.startswith(('http://127.0.0.1:', 'data:')) for u in reqs), reqs
    assert not [e for e in events if e.get('method') == 'Runtime.exceptionThrown']


def test_explorer_html_refuses_non_integers():
    "Only integers go into the page's attributes"
    with pytest.raises(ValueError, match='padding=1.5'): explorer_html(padding=1.5)
    with pytest.raises(ValueError, match='h='): explorer_html(h='5" onload="alert(1)')


@pytest.mark.parametrize('key', list(EXPLORER_RANGES))
def test_explorers_accept_what_their_sliders_reach(key):
    "Both explorers take any setting their sliders reach, and refuse one beyond, in one message with the value and the bound"
    lo, hi = EXPLORER_RANGES[key]
    for v in (lo, hi): assert f'data-{key}="{v}"' in explorer_html(**{key: v}).data
    for v, bound in ((lo - 1, f'{key} must be'), (hi + 1, f'at most {hi}'), (1000, f'at most {hi}')):
        for f in (explorer_html, lambda **a: conv_explorer(**a, live=False)):
            with pytest.raises(ValueError) as e: f(**{key: v})
            assert str(e.value).endswith(f'got {key}={v}') and bound in str(e.value) and '\n' not in str(e.value), str(e.value)


@slow
def test_static_explorer_without_kernel():
    "No Jupyter kernel (a script, pytest, nbdev_test): one figure of the chosen step, drawn by `show_conv`, with alt text"
    fig = conv_explorer(6, 7, ks=3, stride=2, padding=1, dilation=2, step=-1)
    assert isinstance(fig, Figure)
    x, k = _demo(6, 7, 3)
    assert torch.equal(drawn_output(fig.axes[0]), F.conv2d(x[None, None], k[None, None], stride=2, padding=1, dilation=2)[0, 0])
    assert conv_formula(6, 3, 2, 1, 2) in fig.get_suptitle() and conv_formula(7, 3, 2, 1, 2) in fig.get_suptitle()
    assert fig.miniconv_alt.startswith('Step 6 of 6')
    with pytest.raises(ValueError, match='stride=0'): conv_explorer(stride=0)


@slow
def test_widget_explorer():
    "The sliders redraw with the chapter's functions; refused settings show the reason; the display carries a picture"
    ex = conv_explorer(5, 5, 3, stride=2, padding=1, step=3, live=True)
    assert ex.step.value == 4 and ex.step.max == 9
    assert conv_formula(5, 3, 2, 1) in ex.text.value
    # the formula shows once: in words under the sliders (general, rows, columns), not again in the figure's title
    assert ex.text.value.count('⌊') == 3 and '⌊' not in ex.figure.get_suptitle() and '→ 3×3 output' in ex.figure.get_suptitle()
    # room to slide in JupyterLab: settings in columns at least 24em wide, each slider filling its column, labels 8em
    grid = ex.children[0]
    assert 'minmax(24em, 1fr)' in grid.layout.grid_template_columns and list(grid.children) == list(ex.sliders.values())
    assert all(s.layout.width == 'auto' and s.style.description_width == '8em' for s in [*ex.sliders.values(), ex.step])
    ex.sliders['dilation'].value = 2
    assert ex.step.max == conv_out_size(5, 3, 2, 1, 2)**2 and conv_formula(5, 3, 2, 1, 2) in ex.text.value
    data, md = ex._repr_mimebundle_()
    assert 'application/vnd.jupyter.widget-view+json' in data and data['image/png'] and md['image/png']['alt'].startswith('Step')
    ex.sliders['stride'].value = 0
    with pytest.raises(ValueError) as e: conv_out_size(5, 3, 0, 1, 2)
    assert str(e.value) in ex.text.value and ex.png is None and ex.step.disabled
    assert 'image/png' not in ex._repr_mimebundle_()
    ex.sliders['stride'].value = 1
    assert not ex.step.disabled and ex.step.max == conv_out_size(5, 3, 1, 1, 2)**2


def test_saved_output_current():
    "The chapter's saved output, which the site shows, holds today's explorer: the shared styles and helpers, then its own"
    d = json.loads((Path(__file__).resolve().parents[1]/'nbs'/'06_strides_padding.ipynb').read_text(encoding='utf-8'))
    outs = [h for c in d['cells'] for o in c.get('outputs', []) for h in [''.join(o.get('data', {}).get('text/html', ''))]
            if '<figure class="mc-explorer"' in h]
    assert len(outs) == 1, f"{len(outs)} outputs with the explorer"
    assert all(asset_text(a) in outs[0] for a in ('widget_base.css', 'conv_explorer.css', 'widget_base.js', 'conv_explorer.js')), \
        "06_strides_padding.ipynb is older than its assets: re-run it"

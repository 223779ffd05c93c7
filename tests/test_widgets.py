"""The page widgets cannot disagree with the course: each is driven in headless Chromium and compared with PyTorch and
with the chapter functions it copies.

- the live CNN (`live_cnn`, cnn chapter): on 200 real validation digits the page's forward pass gives every layer's
  activations within 1e-4 of PyTorch's, and the same class; on synthetic pen strokes its preprocessing gives exactly
  `mnist_style` (and `shrink_drawing` when unticked) of the ink on its canvas; a mouse, a pen and a finger all draw;
- the receptive-field picker (`field_picker`, receptive-field chapter): for every unit of every layer, the boxes it
  draws are `unit_fields`'; a click and the keyboard reach units;
- the kernel playground (`kernel_playground`, kernels chapter): for the chapter's kernels and 50 random ones typed
  into its boxes, its response is `F.conv2d`'s, on a colour scale centred on 0 (matplotlib's RdBu_r).

All three share one page, loaded once. Other tests: the widgets fit a 390 px phone, have captions and text for screen
readers, fetch nothing outside the page's folder, and their assets stay small."""
import base64, json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import miniconv
from cdp import served_page
from miniconv.cnn import (LIVE_WEIGHTS, cnn_from_weights, digit_strokes, draw_strokes, live_cnn, mnist_style,
                          shrink_drawing, train)
from miniconv.data import load_mnist
from miniconv.kernels import diag1_edge, diag2_edge, kernel_playground, left_edge, top_edge
from miniconv.plotting import image_b64
from miniconv.receptive_field import field_picker, unit_fields
from miniconv.cnn import simple_cnn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_thread')]  # Chromium: `make check` skips it

ASSETS = Path(miniconv.__file__).parent/'assets'
NEW_ASSETS = ('widget_base.css', 'widget_base.js', 'widgets.css', 'kernel_playground.js', 'live_cnn.js', 'field_picker.js', LIVE_WEIGHTS)
KERNELS = dict(top_edge=top_edge, left_edge=left_edge, diag1_edge=diag1_edge, diag2_edge=diag2_edge,
               sym=torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]))

@pytest.fixture(scope='module')
def data(): return load_mnist(verbose=False)

@pytest.fixture(scope='module')
def weights(): return json.loads((ASSETS/LIVE_WEIGHTS).read_text(encoding='utf-8'))

@pytest.fixture(scope='module')
def page(browser, data, weights, tmp_path_factory):
    "One page with the three widgets, served from 127.0.0.1 and loaded in `browser`; yields (browser, base address, requests)"
    x, y = data.x_valid.view(-1, 28, 28), data.y_valid
    body = (live_cnn(x[:20], y[:20], weights).data + kernel_playground({'3': x[18], '7': x[21]}, KERNELS).data +
            field_picker(simple_cnn(), x[0]).data)
    with served_page(browser, tmp_path_factory.mktemp('widgets'), 'Widgets', body, 'font-family: sans-serif; margin: 0') as base:
        yield browser, base, list(browser.events)

def f32(b64): return torch.frombuffer(bytearray(base64.b64decode(b64)), dtype=torch.float32)

def test_no_script_errors(page):
    _, _, ev = page
    assert not [e for e in ev if e.get('method') == 'Runtime.exceptionThrown'], ev

def test_offline(page):
    "The page loads nothing but itself: the widgets' scripts, styles and data are inline, and nothing is fetched"
    _, base, ev = page
    urls = [e['params']['request']['url'] for e in ev if e.get('method') == 'Network.requestWillBeSent']
    assert urls, "no request was recorded: is Network.enable on?"
    assert not [u for u in urls if not (u.startswith(base) or u.startswith('data:'))], urls

def test_assets_small():
    "The new assets together stay within 300 KB (the weights are float32 in base64: 4/3 bytes per byte)"
    sizes = {n: (ASSETS/n).stat().st_size for n in NEW_ASSETS}
    assert sum(sizes.values()) <= 300*1024, sizes

# ---- the live CNN

def test_weights_are_a_simple_cnn(weights):
    "The asset holds a whole `simple_cnn`: every parameter, at its shape"
    model = cnn_from_weights(weights)
    test = simple_cnn()
    assert [p.shape for p in model.parameters()] == [p.shape for p in test.parameters()]
    assert sum(p.numel() for p in model.parameters()) == 5_274

def test_forward_matches_pytorch(page, data, weights):
    "On 200 validation digits, the page's forward pass gives every layer within 1e-4 of PyTorch's, and the same class"
    cdp = page[0]
    x = data.x_valid[:200]
    got = cdp.js(f"""(xs => {{ const w = document.querySelector('figure.mc-live_cnn').liveCnn;
      return xs.map(x => {{ const r = w.forward(x), a = [];
        for (const l of r.acts) for (const v of l.data) a.push(v);
        return btoa(String.fromCharCode(...new Uint8Array(new Float32Array(a).buffer))); }}); }})({json.dumps(x.tolist())})""")
    model = cnn_from_weights(weights)
    acts, h = [], x.view(-1, 1, 28, 28)
    with torch.no_grad():
        for block in model[:-1]:
            h = block(h); acts.append(h.flatten(1))
    ref = torch.cat(acts, 1)
    js = torch.stack([f32(g) for g in got])
    assert js.shape == ref.shape, (js.shape, ref.shape)
    worst = (js - ref).abs().max().item()
    assert worst < 1e-4, f"largest difference {worst:.2e}"
    assert torch.equal(js[:, -10:].argmax(1), ref[:, -10:].argmax(1))
    print(f"\nlive CNN: 200 digits, every layer within {worst:.1e} of PyTorch, same class for all")

STROKES = [(d, s) for s in range(100, 103) for d in range(10)]  # 30 drawings, three of each digit

def test_preprocessing_matches(page):
    "On 30 drawings made of synthetic pen strokes, the page's preprocessing of its own canvas is `mnist_style`, or `shrink_drawing` unticked"
    cdp = page[0]
    got = cdp.js(f"""(all => {{ const w = document.querySelector('figure.mc-live_cnn').liveCnn;
      const res = all.map(s => {{ w.clear(true); const st = w.draw(s), a = w.alpha();
        return {{alpha: btoa(String.fromCharCode(...a)), centred: st.input, raw: w.preprocess(a, false), probs: st.probs}}; }});
      w.pick(0); return res; }})({json.dumps([digit_strokes(d, s) for d, s in STROKES])})""")
    worst, near = 0., []
    for (d, s), g in zip(STROKES, got):
        ink = torch.frombuffer(bytearray(base64.b64decode(g['alpha'])), dtype=torch.uint8).view(280, 280) >= 128
        assert ink.any(), (d, s)
        for mine, ref in ((g['centred'], mnist_style(ink)), (g['raw'], shrink_drawing(ink))):
            worst = max(worst, (torch.tensor(mine, dtype=torch.float64).view(28, 28) - ref).abs().max().item())
        # the notebook measures drawn digits with `draw_strokes`: its ink must give nearly the page's digit
        near.append((mnist_style(draw_strokes(digit_strokes(d, s))) - mnist_style(ink)).abs().mean().item())
    assert worst < 1e-9, f"largest difference {worst:.1e}"
    assert sum(near)/len(near) < .02 and max(near) < .1, near  # at most a pixel's shift of the centre, now and then

@pytest.mark.parametrize('kind', ['mouse', 'pen', 'touch'])
def test_draw_with_pointer(page, kind):
    "A stroke drawn through the browser's own input events (mouse, pen, finger) inks the canvas and changes the answer"
    cdp = page[0]
    r = cdp.js("""(() => { const w = document.querySelector('figure.mc-live_cnn').liveCnn; w.clear();
      w.canvas.scrollIntoView({block: 'center', behavior: 'instant'}); const b = w.canvas.getBoundingClientRect();
      return [b.left, b.top, b.width]; })()""")
    x0, y0, s = r
    pts = [(x0 + s*(.5 + .01*k), y0 + s*(.2 + .06*k)) for k in range(11)]  # a slanted line down the middle: a 1
    if kind == 'touch':
        cdp('Emulation.setTouchEmulationEnabled', enabled=True)
        for i, (x, y) in enumerate(pts):
            cdp('Input.dispatchTouchEvent', type='touchStart' if i == 0 else 'touchMove', touchPoints=[dict(x=x, y=y)])
        cdp('Input.dispatchTouchEvent', type='touchEnd', touchPoints=[])
        cdp('Emulation.setTouchEmulationEnabled', enabled=False)
    else:
        for i, (x, y) in enumerate(pts):
            cdp('Input.dispatchMouseEvent', type='mousePressed' if i == 0 else 'mouseMoved', x=x, y=y, button='left',
                buttons=1, clickCount=1, pointerType=kind)
        cdp('Input.dispatchMouseEvent', type='mouseReleased', x=pts[-1][0], y=pts[-1][1], button='left', clickCount=1, pointerType=kind)
    st = cdp.wait("""(() => { const w = document.querySelector('figure.mc-live_cnn').liveCnn;
      return w.alpha().some(v => v >= 128) && w.state().input.some(v => v > 0) && w.state(); })()""", timeout=5)
    assert st['picked'] is None and abs(sum(st['probs']) - 1) < 1e-9
    assert st['pred'] == 1, f"a {kind} stroke straight down reads as {st['pred']}"

# ---- the receptive-field picker

def test_fields_match_unit_fields(page):
    "Every unit of every layer, selected in the page: the boxes drawn are `unit_fields`' blocks, in the input and every layer before"
    cdp = page[0]
    got = cdp.js("""(() => { const p = document.querySelector('figure.mc-field_picker').picker, res = [];
      for (const g of p.grids.slice(1)) for (let i = 0; i < g.h; i++) for (let j = 0; j < g.w; j++) res.push(p.select(g.name, i, j));
      return {names: p.grids.map(g => g.name), units: res}; })()""")
    model, n, names, got = simple_cnn(), 0, got['names'], got['units']
    assert len(names) == 6 and len(got) == 196 + 49 + 16 + 4 + 1, names
    for g in got:
        f = unit_fields(model, 28, g['layer'], g['i'], g['j'])
        want = {k: [*f[k][0], *f[k][1]] for k in names[:names.index(g['layer'])]}
        assert g['boxes'] == want, (g['layer'], g['i'], g['j'], g['boxes'], want)
        n += 1
    print(f"\nfield picker: {n} units, every box as unit_fields gives it")

def test_picker_click_and_keys(page):
    "A click selects the unit under it; from the keyboard, Tab reaches a layer and the arrow keys every unit of it"
    cdp = page[0]
    names = cdp.js("document.querySelector('figure.mc-field_picker').picker.grids.map(g => g.name)")
    x, y = cdp.js(f"""(() => {{ const r = document.querySelector('figure.mc-field_picker svg[data-grid="{names[2]}"] rect[data-i="5"][data-j="2"]');
      r.scrollIntoView({{block: 'center', behavior: 'instant'}}); const b = r.getBoundingClientRect(); return [b.left + b.width/2, b.top + b.height/2]; }})()""")
    for t in ('mousePressed', 'mouseReleased'): cdp('Input.dispatchMouseEvent', type=t, x=x, y=y, button='left', clickCount=1)
    assert cdp.js("Object.assign({}, document.querySelector('figure.mc-field_picker').dataset)") == dict(layer=names[2], i='5', j='2')
    assert cdp.js("document.activeElement.dataset.grid") == names[2]
    key = lambda k: [cdp('Input.dispatchKeyEvent', type=t, key=k, code=k, windowsVirtualKeyCode=dict(Home=36, ArrowDown=40, ArrowRight=39, ArrowLeft=37, Tab=9)[k])
                     for t in ('rawKeyDown', 'keyUp')]
    key('Tab')  # on to the next layer's grid
    assert cdp.js("document.activeElement.dataset.grid") == names[3]
    key('Home')
    seen = set()
    for i in range(4):  # a snake through the 4x4 grid
        for j in range(4):
            d = cdp.js("Object.assign({}, document.querySelector('figure.mc-field_picker').dataset)")
            seen.add((d['layer'], int(d['i']), int(d['j'])))
            if j < 3: key('ArrowRight' if i % 2 == 0 else 'ArrowLeft')
        key('ArrowDown')
    assert seen == {(names[3], i, j) for i in range(4) for j in range(4)}

# ---- the kernel playground

def test_playground_matches_conv2d(page, data):
    "The chapter's kernels picked from the list, and 50 random kernels typed into the boxes: the response is `F.conv2d`'s"
    cdp = page[0]
    g = torch.Generator().manual_seed(0)
    typed = [torch.randn(3, 3, generator=g, dtype=torch.float64).round(decimals=3)*(10**torch.randint(-1, 2, (1,), generator=g)) for _ in range(50)]
    got = cdp.js(f"""((names, typed) => {{ const f = document.querySelector('figure.mc-kernel_playground'), p = f.playground, res = [];
      for (const n of names) {{ const s = f.querySelector('select'); s.value = n; s.dispatchEvent(new Event('change'));
        res.push([p.weights(), p.response()]); }}
      for (const k of typed) {{ p.inputs.forEach((inp, i) => {{ inp.value = String(k[i]); inp.dispatchEvent(new Event('input')); }});
        res.push([p.weights(), p.response()]); }}
      return res; }})({json.dumps(list(KERNELS))}, {json.dumps([k.flatten().tolist() for k in typed])})""")
    assert len(got) >= 55
    img = torch.frombuffer(bytearray(base64.b64decode(image_b64(data.x_valid[18].view(28, 28)))), dtype=torch.uint8).view(28, 28).double()/255
    for k, (w, resp) in zip([*KERNELS.values(), *typed], got):
        assert w == k.flatten().tolist(), (w, k)
        ref = F.conv2d(img[None, None], k.double().view(1, 1, 3, 3))[0, 0]
        assert torch.allclose(torch.tensor(resp, dtype=torch.float64).view(26, 26), ref, atol=1e-9), w

def test_playground_colours(page):
    "The response is drawn on matplotlib's RdBu_r, centred on 0: blue below, white at 0, red above"
    from matplotlib import colormaps
    cdp = page[0]
    got = cdp.js("""(() => { const p = document.querySelector('figure.mc-kernel_playground').playground;
      return [-1, -.5, -.1, 0, .1, .5, 1].map(t => p.colour(t * p.vmax)); })()""")
    for t, c in zip([-1, -.5, -.1, 0, .1, .5, 1], got):
        ref = [round(255*v) for v in colormaps['RdBu_r']((t + 1)/2)[:3]]
        assert max(abs(a - b) for a, b in zip(c, ref)) <= 6, (t, c, ref)
    assert got[3] == [247, 247, 247]

# ---- for people

def test_captions_and_words(page):
    "Each widget has a caption, and each picture it draws says in words what it shows"
    cdp = page[0]
    r = cdp.js("""Array.from(document.querySelectorAll('figure.mc-widget')).map(f => ({cls: f.className,
      cap: (f.querySelector('figcaption') || {}).textContent || '',
      unlabelled: Array.from(f.querySelectorAll('[role=img]')).filter(e => !(e.getAttribute('aria-label') ||
        e.getAttribute('aria-labelledby'))).length,
      status: (f.querySelector('[aria-live]') || {}).textContent || ''}))""")
    assert len(r) == 3
    for w in r:
        assert len(w['cap']) > 100 and w['unlabelled'] == 0 and w['status'], w

def test_phone(page):
    "At 390 px the widgets fit the screen, their text is at least 12 px and their controls are finger-sized"
    cdp = page[0]
    with cdp.viewport(390, 844, scale=2):
        r = cdp.js("""(() => { const vw = document.documentElement.clientWidth;
          const figs = Array.from(document.querySelectorAll('figure.mc-widget')).map(f => {
            const all = Array.from(f.querySelectorAll('*'));
            return {cls: f.className, right: Math.max(...all.map(e => e.getBoundingClientRect().right)), wide: f.scrollWidth - f.clientWidth,
                    small: all.filter(e => e.childNodes.length && Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())
                                       && parseFloat(getComputedStyle(e).fontSize) < 12).map(e => e.textContent.slice(0, 30)),
                    tiny: Array.from(f.querySelectorAll('button, select, input')).filter(e => (e.closest('label') || e).getBoundingClientRect().height < 44)
                            .map(e => e.outerHTML.slice(0, 60))}; });
          const unit = document.querySelector('figure.mc-field_picker svg[data-grid="0.0"] rect.mc-unit').getBoundingClientRect().width;
          const pad = document.querySelector('figure.mc-live_cnn canvas.mc-draw').getBoundingClientRect().width;
          return {vw, page: document.documentElement.scrollWidth, figs, unit, pad}; })()""")
        SHOTS = Path(__file__).resolve().parents[1]/'screenshots'
        SHOTS.mkdir(exist_ok=True)
        cdp.screenshot(SHOTS/'widgets-390.jpg')
    assert r['page'] <= r['vw'], r
    for f in r['figs']:
        assert f['right'] <= r['vw'] and f['wide'] <= 1 and not f['small'] and not f['tiny'], f
    assert r['unit'] >= 20 and r['pad'] >= 250, r

# ---- the asset is the chapter's model

def test_weights_reproducible(weights, data):
    "Training as the chapter does (`simple_cnn`, batches of 32, seed 0, one thread) gives the asset's model again"
    small = data.x_train[:4000], data.y_train[:4000], data.x_valid[:1000], data.y_valid[:1000]
    model, _ = train('simple', bs=32, seed=0, data=small, progress='none')
    ours = cnn_from_weights(weights)
    with torch.no_grad(): a, b = model(small[2].view(-1, 1, 28, 28)).argmax(1), ours(small[2].view(-1, 1, 28, 28)).argmax(1)
    diff = max((p - q).abs().max().item() for p, q in zip(model.parameters(), ours.parameters()))
    print(f"\nretrained: largest weight difference from the asset {diff:.1e}, same answer on {(a == b).float().mean():.1%} of 1,000 digits")
    assert (a == b).float().mean() >= .99 and diff < 1e-3, diff

# ---- the saved pages

@pytest.mark.parametrize('nb,name', [('05_kernels.ipynb', 'kernel_playground'), ('08_cnn.ipynb', 'live_cnn'),
                                     ('09_receptive_field.ipynb', 'field_picker')])
def test_saved_output_current(nb, name, weights):
    "The chapter's saved output, which the site shows, holds today's script and styles (and, for the live CNN, the asset's weights)"
    from miniconv.plotting import asset_text
    d = json.loads((Path(__file__).resolve().parents[1]/'nbs'/nb).read_text(encoding='utf-8'))
    outs = [h for c in d['cells'] for o in c.get('outputs', []) for h in [''.join(o.get('data', {}).get('text/html', ''))]
            if f'<figure class="mc-widget mc-{name}">' in h.split('<script>\n')[0]]
    assert len(outs) == 1, f"{nb}: {len(outs)} outputs with the {name} widget"
    assert all(asset_text(a) in outs[0] for a in ('widget_base.css', 'widgets.css', 'widget_base.js', f'{name}.js')), \
        f"{nb} is older than its assets: re-run it"
    if name == 'live_cnn':
        data = json.loads(outs[0].split('class="mc-data">')[1].split('</script>')[0])
        assert data['net'] == weights, f"{nb}'s page holds other weights than {LIVE_WEIGHTS}"

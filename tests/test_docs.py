"""The docs build: `tools/build_docs.py` makes a page per notebook from nbdev's processed notebooks, with an API
reference (show_doc and its docments) for every exported function, figures with their alt text, nothing loaded from
the network, and README.md is what index.ipynb makes.

The site is built once per test run into pytest's temporary folder; `test_browser.py` loads the same build, also
when pytest-xdist runs the two files on different workers."""
import html, importlib, inspect, json, os, re, subprocess, sys, time
from pathlib import Path

import pytest
from fastcore.script import Param, store_true  # noqa: F401  (the annotations of `_f_cli` below name them)

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
sys.path.insert(0, str(ROOT/'tools'))
import build_docs  # noqa: E402  (tools/ is no package)

pytestmark = pytest.mark.slow  # the site build: `make test` runs it, `make check` does not

SOLUTIONS = 'solutions'  # the sub-folder of nbs/ whose notebooks the sidebar lists under "Solutions"

def notebooks():
    "The notebooks the site renders, relative to nbs/: the chapters and nbs/solutions/*, skipping names that start with `_` or `.` as nbdev does"
    return sorted(p.relative_to(NBS).as_posix() for p in NBS.rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))

def solutions():
    "The solutions notebooks, relative to nbs/"
    return [nb for nb in notebooks() if Path(nb).parent.as_posix() == SOLUTIONS]

def page_of(nb): # A notebook's path relative to nbs/
    "Its page, named as nbdev names it: the number prefix dropped (`06a_spreadsheet.ipynb` -> `spreadsheet.html`), in the same folder"
    p = Path(nb)
    return (p.parent/(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.stem.lower()) + '.html')).as_posix()

def nb_json(nb): return json.loads((NBS/nb).read_text(encoding='utf-8'))
def src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def nb_title(nb): # A notebook's file name
    "The title the notebook gives itself: the `# Heading` of its first markdown cell"
    for c in nb_json(nb)['cells']:
        if c['cell_type'] == 'markdown':
            m = re.match(r'#\s+(.+)', src(c).strip())
            return m.group(1).strip() if m else None

def page_text(path): # An HTML file
    "The visible text of a page: tags removed, entities decoded, white space collapsed"
    h = Path(path).read_text(encoding='utf-8')
    h = re.sub(r'(?s)<(script|style)\b.*?</\1>', ' ', h)
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', ' ', h)).split())

def page_ids(path): return set(re.findall(r'\bid="([^"]+)"', Path(path).read_text(encoding='utf-8')))

_BUILT = {}

def built_site(tmp_path_factory): # pytest's `tmp_path_factory`
    """Run the docs build once per test run (as `make docs` does, but into pytest's temporary folder); return (folder,
    seconds, output). The folder is the run's, shared by pytest-xdist's workers: the first to take the lock builds, the
    others (`test_docs.py` and `test_browser.py` run on different workers) wait and reuse its build."""
    if _BUILT: return _BUILT['res']
    from filelock import FileLock  # a dependency of torch
    tmp = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): tmp = tmp.parent  # the run's folder, above the workers' own
    tmp = tmp/'miniconv_docs'
    with FileLock(f'{tmp}.lock'):
        done = tmp/'build.json'
        if not done.exists():
            cmd = [sys.executable, str(ROOT/'tools'/'build_docs.py'), '--no_quarto',
                   '--doc_path', str(tmp/'_docs'), '--readme_out', str(tmp/'README.md')]
            t = time.perf_counter()
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
            secs = time.perf_counter() - t
            assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            done.write_text(json.dumps(dict(secs=secs, out=r.stdout)), encoding='utf-8')
        d = json.loads(done.read_text(encoding='utf-8'))
    _BUILT['res'] = tmp, d['secs'], d['out']
    return _BUILT['res']

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    tmp, secs, out = built_site(tmp_path_factory)
    print(f"\ndocs build: {secs:.1f}s (this run's one build)\n{out}")
    return tmp/'_docs'

def test_notebooks_found():
    assert 'index.ipynb' in notebooks() and len(notebooks()) >= 2, notebooks()
    assert solutions(), f"no notebooks in nbs/{SOLUTIONS}/"
    assert page_of(f'{SOLUTIONS}/05_kernels_solutions.ipynb') == f'{SOLUTIONS}/kernels_solutions.html'
    assert build_docs.page_name(Path(f'{SOLUTIONS}/05_kernels_solutions.ipynb')).as_posix() == f'{SOLUTIONS}/kernels_solutions.html'  # as nbdev names it

@pytest.mark.parametrize('nb', notebooks())
def test_page_per_notebook(site, nb):
    page = site/page_of(nb)
    assert page.exists(), f"{nb} has no page {page_of(nb)}; pages: {site_pages(site)}"
    title = re.search(r'<title>(.*?)</title>', page.read_text(encoding='utf-8')).group(1)
    want = nb_title(nb)
    assert want and html.unescape(title).startswith(want), (title, want)

def site_pages(site): # The built site
    "Its pages, relative to the site's root, without the theme's own files"
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if 'site_libs' not in p.relative_to(site).parts)

def test_no_extra_pages(site):
    "Pages are named by nbdev's `output-file`, so no page keeps a notebook's number prefix"
    assert site_pages(site) == sorted(page_of(nb) for nb in notebooks())

def sidebar_sections(html_text): # A page of the site
    "{section title: [hrefs of the links inside it]} of the page's sidebar"
    res = {}
    for m in re.finditer(r'(?s)<li class="sidebar-item sidebar-item-section">(.*?)</ul>\s*</li>', html_text):
        title = re.search(r'<span class="menu-text">(.*?)</span>', m.group(1))
        res[html.unescape(title.group(1)).strip() if title else ''] = re.findall(r'<a href="([^"]+)"', m.group(1))
    return res

def test_solutions_section(site):
    "nbdev's sidebar makes nbs/solutions/ a section, titled 'Solutions', holding exactly the solutions pages, after every chapter"
    import yaml
    sb = yaml.safe_load((NBS/'sidebar.yml').read_text())['website']['sidebar']['contents']
    secs = [c for c in sb if isinstance(c, dict)]
    assert [c['section'] for c in secs] == ['Solutions'], secs
    assert secs[0]['contents'] == solutions(), secs[0]['contents']
    assert sb[-1] is secs[0], "the Solutions section should come after the chapters"
    for page in ('index.html', page_of(solutions()[0])):
        h = (site/page).read_text(encoding='utf-8')
        got = sidebar_sections(h)
        assert list(got) == ['Solutions'], f"{page}: sidebar sections {list(got)}"
        here = Path(page).parent
        links = sorted(os.path.normpath((here/u).as_posix()).replace(os.sep, '/') for u in got['Solutions'])
        assert links == sorted(page_of(nb) for nb in solutions()), (page, links)

def test_solutions_titled(site):
    "Each solutions notebook answers a chapter that exists, and its title says which"
    for nb in solutions():
        chapter = Path(nb).name.replace('_solutions', '')
        assert (NBS/chapter).exists(), f"{nb} has no chapter nbs/{chapter}"
        assert nb_title(nb).startswith('Solutions: '), nb_title(nb)

@pytest.mark.parametrize('nb', notebooks())
def test_hidden_cells_stay_hidden(site, nb):
    "The site is rendered from nbdev's processed notebooks: no directives, export calls or hidden test imports"
    text = page_text(site/page_of(nb))
    for bad in ('#| export', '#| hide', 'nbdev_export()', 'from fastcore.test import', '#| default_exp'):
        assert bad not in text, f"{page_of(nb)} shows {bad!r}"

def exported():
    "(module, name, page, anchor) for every public function and class the notebooks export, from nbdev's index"
    d = importlib.import_module('miniconv._modidx').d['syms']
    res = []
    for mod, syms in d.items():
        m = importlib.import_module(mod)
        for name in getattr(m, '__all__', []):
            o = getattr(m, name, None)
            if not callable(o) or getattr(o, '__module__', None) != mod: continue
            page, _, anchor = syms[f'{mod}.{name}'][0].partition('#')
            res.append((mod, name, page, anchor))
    return res

def _exported_ids():
    try: return [f'{m}.{n}' for m, n, _, _ in exported()]
    except Exception as e: return [f'index-error-{type(e).__name__}']

def own_params(o): # A function or class
    "The parameters `o`'s own code declares (not those `@fc.delegates` adds to its signature), or None"
    f = o
    if inspect.isclass(o):
        f = next((getattr(o.__dict__[k], '__func__', o.__dict__[k]) for k in ('__init__', '__new__') if k in o.__dict__), None)
    return build_docs.own_args(f) if f is not None else None

@pytest.mark.parametrize('sym', _exported_ids())
def test_show_doc_for_every_export(site, sym):
    "Each exported function has a show_doc heading, its signature and the docments of its own parameters"
    from fastcore.docments import docments
    mod, name, page, anchor = next(e for e in exported() if f'{e[0]}.{e[1]}' == sym)
    f = site/page
    assert f.exists(), f"{sym} is documented on {page}, which was not built"
    assert anchor in page_ids(f), f"{page} has no anchor #{anchor} for {sym}"
    text = page_text(f)
    assert re.search(rf'\b{re.escape(name)}\b', text)
    o = getattr(importlib.import_module(mod), name)
    try: docs = docments(o, full=False)
    except (TypeError, ValueError): docs = {}
    own = own_params(o)
    for arg, doc in docs.items():
        if doc and arg != 'return' and (own is None or arg in own):
            assert ' '.join(doc.split()) in text, f"{page}: the description of {name}({arg}) is missing: {doc!r}"

def api_blocks(path): # A page of the site
    "{show_doc heading id: the text of the signature block under it}"
    h = Path(path).read_text(encoding='utf-8')
    res = {}
    for m in re.finditer(r'<h[2-4][^>]*\sid="([^"]+)"[^>]*>.*?</h[2-4]>', h, re.S):  # not a section's data-anchor-id
        rest = h[m.end():]
        nxt = re.search(r'<h[1-6]\b', rest)
        code = re.search(r'<code\b[^>]*>(.*?)</code>', rest[:nxt.start() if nxt else len(rest)], re.S)
        if not code: continue
        text = html.unescape(re.sub(r'<[^>]+>', '', code.group(1))).strip()
        if re.match(r'(async )?(def|class) ', text): res[m.group(1)] = text
    return res

NOISE = {'NoneType': 'a bare `=None` shown as `:NoneType=None`', 'VAR_POSITIONAL': '`*args` shown as `args:VAR_POSITIONAL`',
         'VAR_KEYWORD': '`**kwargs` shown as `kwargs:VAR_KEYWORD`', 'Param(': "a command's `Param(...)` shown raw"}

@pytest.mark.parametrize('nb', notebooks())
def test_api_blocks_clean(site, nb):
    "No API block on the page shows inspect's or fastcore's internals; the failure names the functions"
    bad = {f'{sym}: {why}' for sym, sig in api_blocks(site/page_of(nb)).items() for word, why in NOISE.items() if word in sig}
    assert not bad, f"{page_of(nb)}: " + '; '.join(sorted(bad))

def _forwarding():
    "(module, name, forwarded parameter names) for each exported function whose signature `@fc.delegates` extended"
    res = []
    try: ex = exported()
    except Exception: return res
    for mod, name, page, anchor in ex:
        o = getattr(importlib.import_module(mod), name)
        own = own_params(o)
        if own is None or inspect.isclass(o): continue
        extra = [k for k in inspect.signature(o).parameters if k not in own]
        if extra: res.append((mod, name, page, anchor, extra))
    return res

def test_forwarding_found():
    "The check below has something to check: some exported functions forward keywords with `@fc.delegates`"
    assert _forwarding(), "no exported function forwards keywords with @fc.delegates"

@pytest.mark.parametrize('fwd', _forwarding(), ids=lambda f: f'{f[0]}.{f[1]}')
def test_forwarded_keywords_hidden(site, fwd):
    "A function that forwards keywords (`@fc.delegates`) lists its own parameters, not the callee's"
    mod, name, page, anchor, extra = fwd
    sig = api_blocks(site/page).get(anchor)
    assert sig, f"{page} has no API block for {name}"
    shown = [k for k in extra if re.search(rf'(?m)(^|[(,]\s*){re.escape(k)}\s*[:=,)]', sig)]
    assert not shown, f"{page}: {name} lists forwarded keywords {shown}:\n{sig}"

def test_exception_classes(site):
    "An exported exception class reads `class E(ValueError): ...` (its bases), not as a function of `*args, **kwargs`"
    found = 0
    for mod, name, page, anchor in exported():
        o = getattr(importlib.import_module(mod), name)
        if not (inspect.isclass(o) and issubclass(o, BaseException)): continue
        found += 1
        sig = api_blocks(site/page).get(anchor, '')
        assert re.match(rf'class {name}\([\w., ]+\):', sig), f"{page}: {name} shows {sig!r}"
    assert found, "no exported exception class to check"

# The rendering rules themselves, on small functions, so that they are checked whatever the chapters export today.
def _f_none(x, ax=None, n:int=3): # Input; An axis; A count
    "Example"
def _f_own(a, b:int=1, **kwargs): pass
@__import__('fastcore').meta.delegates(_f_own)
def _f_fwd(x, # The input
           **kwargs): pass
class _E(ValueError): "An error"
def _f_cli(arch:'Param("Model", str)'='better', quick:'store_true'=False, *args, **kw): pass

def test_api_signature_rules():
    "`api_signature` on small examples: a bare `=None`, forwarded keywords, an exception, a command's `Param`s"
    sig = build_docs.api_signature(_f_none)
    assert 'ax=None' in sig and 'NoneType' not in sig and 'n:int=3' in sig, sig
    sig = build_docs.api_signature(_f_fwd)
    assert 'b:int' not in sig and '**kwargs, # Passed on to `_f_own`' in sig and 'x, # The input' in sig, sig
    assert build_docs.api_signature(_E) == 'class _E(ValueError): ...'
    sig = build_docs.api_signature(_f_cli)
    assert "arch:str='better', # Model" in sig and 'quick:bool=False' in sig and '*args, **kw' in sig, sig
    assert 'Param(' not in sig and 'VAR_' not in sig, sig

def test_exports_found():
    "The check above has something to check: the notebooks export at least one documented function"
    assert exported(), "nbdev's index lists no public functions"

def test_search_index(site):
    "smalldocs wrote its search index, with an entry for every page"
    idx = json.loads((site/'search.json').read_text(encoding='utf-8'))
    hrefs = {e['href'].partition('#')[0] for e in idx}
    assert {page_of(nb) for nb in notebooks()} <= hrefs

def test_readme_current(site):
    "README.md is what the build makes from nbs/index.ipynb (run `make docs` and commit README.md when this fails)"
    made = (site.parent/'README.md').read_text(encoding='utf-8')
    assert (ROOT/'README.md').exists(), "README.md is missing: run make docs"
    assert (ROOT/'README.md').read_text(encoding='utf-8') == made

def test_readme_fences(site):
    "Every code fence in README.md names its language (nbconvert's exporter only does so when told)"
    lines = (site.parent/'README.md').read_text(encoding='utf-8').splitlines()
    fences = [l for l in lines if l.startswith('```')]
    openers = fences[0::2]
    assert openers, "README.md has no code block"
    assert all(len(l.strip('`').strip()) for l in openers), openers
    assert '```python' in openers
    assert lines[0] == f"# {nb_title('index.ipynb')}"

def _figures(nb): # A notebook's file name
    "[(alt, width)] of its image outputs that carry metadata, in order"
    res = []
    for c in nb_json(nb)['cells']:
        for o in c.get('outputs', []):
            for mime, m in (o.get('metadata') or {}).items():
                if mime.startswith('image/') and mime in o.get('data', {}) and isinstance(m, dict) and m:
                    res.append((m.get('alt'), m.get('width')))
    return res

@pytest.mark.parametrize('nb', notebooks())
def test_figures_keep_alt_and_width(site, nb):
    "A figure's alt text and display width, saved in its output's metadata (`retina_png`), reach its <img> on the page"
    h = (site/page_of(nb)).read_text(encoding='utf-8')
    imgs = [dict(re.findall(r'\s(alt|width)="([^"]*)"', t)) for t in re.findall(r'<img\b[^>]*>', h)]
    have = [(html.unescape(i.get('alt', '')), i.get('width')) for i in imgs]
    for alt, width in _figures(nb):
        want = (' '.join(str(alt).split()) if alt else '', str(width) if width else None)
        assert any(a == want[0] and (want[1] is None or w == want[1]) for a, w in have), \
            f"{page_of(nb)}: no <img> with alt {want[0]!r} and width {want[1]}"

def test_nothing_remote(site):
    "No page or stylesheet of the site refers to another host for something the browser fetches (fonts, scripts, CSS)"
    assert not build_docs.remote_refs(site), build_docs.remote_refs(site)

def test_site_ships_its_assets(site):
    "The maths font (with its licence) and the favicon are files of the site"
    assert (site/'fonts'/build_docs.MATH_FONT).stat().st_size > 100_000
    assert (site/'fonts'/'DejaVuMathTeXGyre-LICENSE.txt').exists()
    assert (site/'favicon.svg').read_text().startswith('<svg')
    assert 'fonts/' + build_docs.MATH_FONT in (site/'styles.css').read_text(encoding='utf-8')

def test_signatures_from_fastcore():
    "API blocks are fastcore's `sig2str` layout (`DocmentText`) with a few fixes, not a copy of its formatting code"
    from fastcore.docments import DocmentText
    assert issubclass(build_docs.ApiSig, DocmentText)
    assert not hasattr(build_docs, '_fmt_sig') and not hasattr(build_docs, '_fmt_default')
    assert build_docs.api_signature(_f_none).startswith('def _f_none(\n    x, ax=None')
    def _f_empty(): pass
    assert build_docs.api_signature(_f_empty) == 'def _f_empty():'

def _f_long(epochs:int, # Passes over the data
            sep:str=' # ', # A separator with a hash in it, and a comment long enough to wrap on any phone and on most desktops too
           ): pass

def test_sig_html():
    "An API block is HTML with a line per parameter and its comment in a column of its own; its text is the signature, from the first line"
    sig = build_docs.api_signature(_f_long)
    h = build_docs.sig_html(sig)
    body = re.search(r'<code class="sourceCode python">(.*)</code>', h, re.S).group(1)
    assert body.startswith('<span class="mc-sig-line">'), body[:80]  # no empty first line
    assert html.unescape(re.sub(r'<[^>]+>', '', body)).rstrip('\n') == sig
    lines = re.findall(r'<span class="mc-sig-line"[^>]*>(.*?)\n</span>', body, re.S)
    assert len(lines) == len(sig.splitlines()) == 4, lines
    assert '<span class="co"># A separator with a hash' in lines[2] and "&#x27; # &#x27;" in lines[2], lines[2]  # the string's # is code
    assert '<span class="kw">def</span> <span class="fu">_f_long</span>' in lines[0]
    assert re.search(r'style="--ind: 4ch"><span class="mc-sig-code"><span class="mc-ind">    </span>epochs', body), body  # the indent, kept apart

@pytest.mark.parametrize('nb', notebooks())
def test_api_blocks_start_with_code(site, nb):
    "On the pages, every API block is a `sig_html` block that starts with its `def` or `class` line: no empty line before it"
    h = (site/page_of(nb)).read_text(encoding='utf-8')
    blocks = re.findall(r'<div class="sourceCode mc-sig"><pre[^>]*><code[^>]*>(.*?)</code>', h, re.S)
    assert len(blocks) >= len(api_blocks(site/page_of(nb))), f"{page_of(nb)}: API blocks not written by sig_html"
    bad = [b[:60] for b in blocks if not re.match(r'<span class="mc-sig-line"><span class="mc-sig-code"><span class="kw">(async|def|class)', b)]
    assert not bad, bad

def test_keep_numbers():
    "A table's number ranges stay whole (Chromium broke '[0.0618-/0.0776]' in resnet's table); tags, words and minus signs are left alone"
    t = '<table><tr><td class="a-1">0.0717 [0.0618-0.0776]</td><td>1-D, -0.0044, 3 - 4</td></tr></table>'
    test = build_docs.keep_numbers(t)
    assert test == ('<table><tr><td class="a-1">0.0717 <span class="mc-nobr">[0.0618-0.0776]</span></td>'
                    '<td>1-D, -0.0044, 3 - 4</td></tr></table>'), test
    assert '.mc-nobr' in (NBS/'styles.css').read_text(encoding='utf-8')

def test_primes_upright():
    "A prime (o') is drawn beside its letter at full size, not as a superscript that shrinks it to a faint tick"
    from latex2mathml.converter import convert
    for tex in ("o' = s(i' - 1) + k", r"x_i' + f''"):
        ml = build_docs.upright_primes(convert(tex))
        assert not re.search(r'<msup>|<msubsup>', ml), ml
        assert ml.count('<mo lspace="0" rspace="0">&#x0203') == 2, ml

def test_site_primes(site):
    "No formula on the site keeps a prime as a superscript"
    bad = [(p.name, m.group()[:80]) for p in site.rglob('*.html')
           for m in re.finditer(r'<msup>(?:(?!</msup>).)*&#x0203[234];(?:(?!</msup>).)*</msup>', p.read_text(encoding='utf-8'), re.S)]
    assert not bad, bad

def test_tables_wrapped(site):
    "Every table of the site sits in a div.mc-table, which scrolls when the table is wider than the column"
    n = 0
    for p in site.rglob('*.html'):
        h = p.read_text(encoding='utf-8')
        n += h.count('<table')
        assert h.count('<table') == h.count('<div class="mc-table"><table'), p.name
    assert n, "the site has no table"
    css = (site/'styles.css').read_text(encoding='utf-8')
    assert 'overflow-wrap: anywhere' not in css and '.mc-table' in css

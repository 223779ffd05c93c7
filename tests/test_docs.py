"""The docs build: `tools/build_docs.py` makes a page per notebook from nbdev's processed notebooks, with an API
reference (show_doc and its docments) for every exported function, and README.md is what index.ipynb makes.

The site is built once per session into a temporary folder; `test_browser.py` loads the same build."""
import atexit, functools, html, importlib, json, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'

def notebooks():
    "The notebooks the site renders: nbs/*.ipynb, skipping names that start with `_` or `.` as nbdev does"
    return sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))

def page_of(nb): # A notebook's file name
    "Its page, named as nbdev names it: the number prefix dropped (`06a_spreadsheet.ipynb` -> `spreadsheet.html`)"
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb).stem.lower()) + '.html'

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

@functools.cache
def built_site():
    "Run the docs build once (as `make docs` does, but into a temporary folder); return (folder, seconds, output)"
    tmp = Path(tempfile.mkdtemp(prefix='miniconv_docs_test_'))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    cmd = [sys.executable, str(ROOT/'tools'/'build_docs.py'), '--no_quarto',
           '--doc_path', str(tmp/'_docs'), '--readme_out', str(tmp/'README.md')]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    secs = time.perf_counter() - t
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return tmp, secs, r.stdout

@pytest.fixture(scope='module')
def site():
    tmp, secs, out = built_site()
    print(f"\ndocs build: {secs:.1f}s\n{out}")
    return tmp/'_docs'

def test_notebooks_found():
    assert 'index.ipynb' in notebooks() and len(notebooks()) >= 2, notebooks()

@pytest.mark.parametrize('nb', notebooks())
def test_page_per_notebook(site, nb):
    page = site/page_of(nb)
    assert page.exists(), f"{nb} has no page {page.name}; pages: {sorted(p.name for p in site.glob('*.html'))}"
    title = re.search(r'<title>(.*?)</title>', page.read_text(encoding='utf-8')).group(1)
    want = nb_title(nb)
    assert want and html.unescape(title).startswith(want), (title, want)

def test_no_extra_pages(site):
    "Pages are named by nbdev's `output-file`, so no page keeps a notebook's number prefix"
    assert sorted(p.name for p in site.glob('*.html')) == sorted(page_of(nb) for nb in notebooks())

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

@pytest.mark.parametrize('sym', _exported_ids())
def test_show_doc_for_every_export(site, sym):
    "Each exported function has a show_doc heading, its signature and the docments of its parameters"
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
    for arg, doc in docs.items():
        if doc and arg != 'return':
            assert ' '.join(doc.split()) in text, f"{page}: the description of {name}({arg}) is missing: {doc!r}"

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

def test_readme_fences():
    "Every code fence in README.md names its language (nbconvert's exporter only does so when told)"
    text, _, _ = built_site()
    lines = (text/'README.md').read_text(encoding='utf-8').splitlines()
    fences = [l for l in lines if l.startswith('```')]
    openers = fences[0::2]
    assert openers, "README.md has no code block"
    assert all(len(l.strip('`').strip()) for l in openers), openers
    assert '```python' in openers
    assert lines[0] == f"# {nb_title('index.ipynb')}"

"""Build the docs site into `_docs/` and `README.md` from the notebooks, without Quarto.

Glue only; each step is a public nbdev, smalldocs or nbconvert call:
1. nbdev 2 processes `nbs/` into `_proc/`: `refresh_quarto_yml`, `nbdev_sidebar` and `nbdev.serve.proc_nbs`, the steps
   of `nbdev_proc_nbs` without its attempt to `sudo`-install Quarto and `pip install -e .` again when Quarto is missing
   (`make docs` runs `nbdev_export` first, which writes `_modidx.py` for the doc links);
2. with `quarto` on PATH, `nbdev_docs` renders the site as on GitHub; otherwise smalldocs renders a copy of `_proc/`
   whose notebooks are renamed to their nbdev `output-file` (`01_data.ipynb` -> `data.ipynb`), so that nbdev's
   cross-reference links resolve; links to the published site become relative links to the local pages;
   maths becomes MathML (latex2mathml), so it shows offline too;
3. nbconvert's Markdown exporter turns the processed `nbs/index.ipynb` into `README.md`.

Usage: `python tools/build_docs.py` (site and README), `python tools/build_docs.py --readme_only --readme_out F`.
"""
import html, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path, PurePosixPath

import yaml
from fastcore.script import call_parse

# nbdev re-runs import and `#| export` cells to render show_doc; they must never reach the network.
os.environ['MINICONV_OFFLINE'] = '1'
os.environ.setdefault('MPLBACKEND', 'Agg')

from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor
from nbdev.processors import FilterDefaults
from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs

def _cfg(): return get_config()

def site_url(cfg=None): # nbdev's config, default: the current project's
    "The published site's address, with a trailing slash (nbdev's doc links start with it)"
    cfg = cfg or _cfg()
    return f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'

def chapter_nbs(cfg=None): # nbdev's config, default: the current project's
    "The notebooks nbdev renders, relative to `nbs_path`, in nbdev's order"
    cfg = cfg or _cfg()
    return sorted(Path(p).relative_to(cfg.nbs_path) for p in nbglob(cfg.nbs_path))

def page_name(nb:Path, cfg=None): # A notebook path relative to `nbs_path`
    "The page nbdev (and Quarto) make of `nb` (`01_data.ipynb` -> `data.html`), as nbdev's front-matter step names it"
    cfg = cfg or _cfg()
    p = NBProcessor(cfg.nbs_path/nb, procs=[FrontmatterProc])
    p.process()
    return Path(nb).with_name(p.nb.frontmatter_['output-file'])

def frontmatter(nb): # A processed notebook (dict-like)
    "The YAML front matter nbdev put in the first raw cell, as a dict"
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.strip().startswith('---'):
            return yaml.safe_load(src.strip().strip('-')) or {}
    return {}

_re_link = re.compile(r'(\]\(|href=["\'])([^)"\'\s#]+)')

def _relink(text, page, names, url): # Markdown or HTML; the page's path; old -> new file names; site address
    "Point links at the renamed pages: published-site links become relative, `00_data.ipynb` becomes `data.ipynb`"
    up = '../' * (len(PurePosixPath(page).parts) - 1)
    text = text.replace(url, up)
    def _sub(m):
        tgt = m.group(2)
        return m.group(1) + names.get(tgt, tgt)
    return _re_link.sub(_sub, text)

_re_fence = re.compile(r'(?ms)^(```+)[^\n]*\n.*?^\1[ \t]*$')
_re_code_link = re.compile(r'\[(`[^`\n]+`)\]\([^)\s]+\)')

def _unlink_code(md): # Markdown
    "Undo the links nbdev's `add_links` puts inside code fences (show_doc's docments comments), which show as raw text"
    return _re_fence.sub(lambda m: _re_code_link.sub(r'\1', m.group(0)), md)

_re_doc_head = re.compile(r'(?m)^#{2,4}\s+(\S+)\s*$')
_re_sym_link = re.compile(r'(\[`[^`\n]+`(?:\(\))?\]\()([^)\s#]*\.html)#([^)\s]+)\)')

def _documented(d): # A processed notebook (dict)
    "The lower-cased names that have a show_doc heading in the notebook's outputs"
    res = set()
    for c in d['cells']:
        for o in c.get('outputs', []):
            v = o.get('data', {}).get('text/markdown')
            if v: res |= {n.lower() for n in _re_doc_head.findall(''.join(v) if isinstance(v, list) else v)}
    return res

def _drop_dead_anchors(md, page, docs): # Markdown; its page's path; {page path: names with show_doc}
    "nbdev links every symbol in backticks to `page#name`, private helpers too, which have no show_doc: link the page"
    def _sub(m):
        tgt = (PurePosixPath(page).parent/m.group(2)).as_posix()
        tgt = os.path.normpath(tgt).replace(os.sep, '/')
        if tgt in docs and m.group(3).lower() not in docs[tgt]: return f'{m.group(1)}{m.group(2)})'
        return m.group(0)
    return _re_sym_link.sub(_sub, md)

def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def render_copy(proc:Path, dest:Path, out:Path, cfg=None): # `_proc/`; the folder to fill; the site's output-dir
    "Copy `proc` into `dest` with notebooks renamed to their `output-file`, ready for smalldocs"
    cfg = cfg or _cfg()
    url, nbs = site_url(cfg), chapter_nbs(cfg)
    names = {}  # old name -> new name, for .ipynb and .html links, relative to nbs_path
    for nb in nbs:
        new = page_name(nb, cfg)
        names[nb.as_posix()] = new.with_suffix('.ipynb').as_posix()
        names[nb.with_suffix('.html').as_posix()] = new.as_posix()
    for f in proc.rglob('*'):
        rel = f.relative_to(proc)
        if f.is_dir() or rel.parts[0] in ('_docs', '_site', '.quarto') or f.suffix == '.ipynb': continue
        (dest/rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest/rel)
    pages = {}
    for nb in nbs:
        src = proc/nb
        if not src.exists(): raise FileNotFoundError(f"{src} is missing: nbdev did not process {cfg.nbs_path/nb}")
        d = json.loads(src.read_text(encoding='utf-8'))
        fm = frontmatter(d).get('output-file')
        if fm and fm != Path(names[nb.with_suffix('.html').as_posix()]).name: raise ValueError(f"{nb}: output-file {fm!r} differs from nbdev's front matter")
        pages[names[nb.as_posix()]] = d
    docs = {PurePosixPath(new).with_suffix('.html').as_posix(): _documented(d) for new, d in pages.items()}
    def _fix(text, new, md=True):
        text = _relink(text, new, names, url)
        return _drop_dead_anchors(_unlink_code(text), new, docs) if md else text
    for new, d in pages.items():
        for c in d['cells']:
            if c['cell_type'] == 'raw' and _src(c).startswith('---'):  # the file name now says what output-file said
                c['source'] = re.sub(r'(?m)^output-file:.*\n', '', _src(c))
            if c['cell_type'] == 'markdown': c['source'] = _fix(_src(c), new)
            for o in c.get('outputs', []):
                for mime in ('text/markdown', 'text/html'):
                    if mime in o.get('data', {}):
                        v = o['data'][mime]
                        o['data'][mime] = _fix(''.join(v) if isinstance(v, list) else v, new, mime == 'text/markdown')
        (dest/new).parent.mkdir(parents=True, exist_ok=True)
        (dest/new).write_text(json.dumps(d, indent=1, ensure_ascii=False), encoding='utf-8')
    sb = dest/'sidebar.yml'
    if sb.exists():
        sb.write_text(_relink_yml(sb.read_text(), names))
    qy = dest/'_quarto.yml'  # drop the Quarto-only formats smalldocs warns about
    if qy.exists():
        q = yaml.safe_load(qy.read_text()) or {}
        fmt = q.get('format') or {}
        fmt.pop('commonmark', None)
        if isinstance(fmt.get('html'), dict): fmt['html'].pop('keep-md', None)
        qy.write_text(yaml.safe_dump(q, sort_keys=False))
    ny = dest/'nbdev.yml'
    meta = yaml.safe_load(ny.read_text()) if ny.exists() else {}
    meta.setdefault('project', {})['output-dir'] = str(out.resolve())
    ny.write_text(yaml.safe_dump(meta, sort_keys=False))

def _relink_yml(text, names): # sidebar.yml text; old -> new names
    "Rename the notebooks listed in `sidebar.yml`"
    return re.sub(r'(?m)^(\s*-\s*)(\S+\.ipynb)\s*$', lambda m: m.group(1) + names.get(m.group(2), m.group(2)), text)

_re_math = re.compile(r'<span class="math (inline|display)">\\[(\[](.*?)\\[)\]]</span>', re.S)
_re_katex = re.compile(r'<link[^>]*katex[^>]*>|<script[^>]*katex[^>]*>\s*</script>')

def mathml_pages(out:Path): # The rendered site
    "Turn the TeX that smalldocs leaves for KaTeX (loaded from a CDN) into MathML, which browsers draw offline"
    try: from latex2mathml.converter import convert
    except ImportError: return print("note: latex2mathml is missing, so maths needs KaTeX from its CDN", file=sys.stderr)
    for f in out.rglob('*.html'):
        h = f.read_text(encoding='utf-8')
        if 'class="math ' not in h: continue
        def _sub(m):
            tex = html.unescape(m.group(2))
            try: ml = convert(tex, display='block' if m.group(1) == 'display' else 'inline')
            except Exception as e: print(f"note: {f.name}: maths left to KaTeX ({type(e).__name__}): {tex}", file=sys.stderr); return m.group(0)
            return f'<span class="math {m.group(1)}" data-tex="{html.escape(tex)}">{ml}</span>'
        h = _re_math.sub(_sub, h)
        if not _re_math.search(h): h = _re_katex.sub('', h)  # every formula converted: no CDN needed
        f.write_text(h, encoding='utf-8')

def render_smalldocs(proc:Path, out:Path, cfg=None): # `_proc/`; the site's folder
    "Render the site into `out` with smalldocs, from a renamed copy of `proc`"
    from smalldocs.cli import main as smalldocs
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix='miniconv_site_') as tmp:
        render_copy(proc, Path(tmp), out, cfg)
        rc = smalldocs(['render', tmp, '--quiet'])
    if rc: sys.exit(f"smalldocs render failed (exit {rc})")
    mathml_pages(out)

def readme_md(nb, cfg=None): # A processed index notebook
    "README text from the processed index notebook: nbconvert's Markdown exporter, code fences tagged `python`"
    import nbformat
    from execnb.nbio import nb2str
    from nbconvert import MarkdownExporter
    cfg = cfg or _cfg()
    d = nbformat.reads(json.dumps(nb) if type(nb) is dict else nb2str(nb), as_version=4)
    fm = frontmatter(d)
    d.cells = [c for c in d.cells if not (c.cell_type == 'raw' and _src(c).strip().startswith('---'))]
    d.metadata['language_info'] = {'name': 'python'}  # the exporter tags fences with this language
    body, res = MarkdownExporter(exclude_raw=True).from_notebook_node(d)
    if res.get('outputs'): raise ValueError(f"the index notebook has image outputs ({', '.join(res['outputs'])}); README.md takes text only")
    head = f"# {fm.get('title', cfg.title)}\n\n"
    if fm.get('description'): head += f"> {' '.join(str(fm['description']).split())}\n\n"
    # Relative page links (`data.html`, or the notebook `00_data.ipynb`) point at the published site from a README.
    url = site_url(cfg)
    body = re.sub(r'\]\((?![a-z]+:|#|/)([^)\s]+\.ipynb)\)', lambda m: f']({page_name(Path(m.group(1)), cfg)})', body)
    body = re.sub(r'\]\((?![a-z]+:|#|/)([^)\s]+\.html[^)\s]*)\)', lambda m: f']({url}{m.group(1)})', body)
    return re.sub(r'\n{3,}', '\n\n', head + body).strip() + '\n'

def proc_nb(nb_path): # A notebook in `nbs/`
    "One notebook processed in memory by nbdev's docs processors, as `proc_nbs` writes it into `_proc/`"
    from execnb.nbio import read_nb
    nb = read_nb(nb_path)
    old, os.environ['IN_TEST'] = os.environ.get('IN_TEST'), '1'  # as nbdev.serve_drv does
    try: FilterDefaults()(nb)
    finally:
        if old is None: del os.environ['IN_TEST']
        else: os.environ['IN_TEST'] = old
    return nb

def process(n_workers:int=0, force:bool=False): # Worker processes (0: this one); reprocess every notebook
    "Process `nbs/` into `_proc/` as `nbdev_proc_nbs` does, without its Quarto install and `pip install -e .`"
    cfg = _cfg()
    refresh_quarto_yml()                # nbs/nbdev.yml from settings.ini
    nbdev_sidebar(path=cfg.nbs_path)    # nbs/sidebar.yml lists every notebook (custom_sidebar=False)
    return proc_nbs(cfg.nbs_path, n_workers=n_workers, force=force)

def write_readme(dest='README.md', proc:Path=None, cfg=None): # Where to write; `_proc/` if just built
    "Write `dest` from `nbs/index.ipynb` (processed by nbdev)"
    cfg = cfg or _cfg()
    if proc is not None and (proc/'index.ipynb').exists():
        nb = json.loads((proc/'index.ipynb').read_text(encoding='utf-8'))
    else: nb = proc_nb(cfg.nbs_path/'index.ipynb')
    Path(dest).write_text(readme_md(nb, cfg), encoding='utf-8')

@call_parse
def main(
    readme_only:bool=False, # Only write the README, from nbs/index.ipynb
    readme_out:str='README.md', # Where to write the README
    doc_path:str=None, # Where to write the site; default settings.ini's doc_path (_docs)
    n_workers:int=0, # Worker processes for nbdev's processing; 0 runs it here, fastest here as torch loads once
    force:bool=False, # Process every notebook again, ignoring nbdev's _proc cache
    no_quarto:bool=False, # Use smalldocs even when quarto is on PATH
):
    "Build `_docs/` and README.md from the notebooks"
    cfg = _cfg()
    out = Path(doc_path).resolve() if doc_path else cfg.doc_path
    readme_out = Path(readme_out).resolve()
    os.chdir(cfg.config_path)
    t0 = time.perf_counter()
    if readme_only:
        write_readme(readme_out, cfg=cfg)
        return print(f"wrote {readme_out} in {time.perf_counter()-t0:.1f}s")
    if shutil.which('quarto') and not no_quarto:
        subprocess.run([str(Path(sys.executable).parent/'nbdev_docs'), '--n_workers', str(n_workers)], check=True)
        proc = cfg.config_path/'_proc'
        if out != cfg.doc_path: shutil.rmtree(out, ignore_errors=True); shutil.copytree(cfg.doc_path, out)
    else:
        try: proc = process(n_workers=n_workers, force=force)
        except Exception as e: sys.exit(f"nbdev could not process the notebooks: {e}")
        t1 = time.perf_counter()
        render_smalldocs(proc, out, cfg)
        print(f"processed notebooks in {t1-t0:.1f}s, rendered {out} in {time.perf_counter()-t1:.1f}s")
    write_readme(readme_out, proc=proc, cfg=cfg)
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.html'))
    print(f"built {len(pages)} pages and {readme_out} in {time.perf_counter()-t0:.1f}s: {' '.join(pages)}")

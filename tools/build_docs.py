"""Build the docs site into `_docs/` and `README.md` from the notebooks, offline, with or without Quarto.

Glue only; each step is a public nbdev, fastcore, smalldocs or nbconvert call, or a plain rewrite of their files:
1. nbdev 2 processes `nbs/` into `_proc/`: `refresh_quarto_yml`, `nbdev_sidebar` and `nbdev.serve.proc_nbs`, the steps
   of `nbdev_proc_nbs` without its attempt to `sudo`-install Quarto and `pip install -e .` again when Quarto is missing
   (`make docs` runs `nbdev_export` first, which writes `_modidx.py` for the doc links). `nbdev_sidebar` makes a sidebar
   section of each sub-folder (`nbs/solutions/`), titled by the folder's name; `title_sections` capitalises it;
2. `render_copy` makes a copy of `_proc/` ready to render:
   - notebooks renamed to their nbdev `output-file` (`01_data.ipynb` -> `data.ipynb`: smalldocs ignores `output-file`)
     and links to the published site made relative, so that nbdev's cross-references resolve offline;
   - API blocks (show_doc's signatures) written again from the live objects by `api_signature`: fastcore's `sig2str`
     layout (`ApiSig`, a `DocmentText`) with the fixes it lacks: a bare `x=None` without `:NoneType`, no keywords
     that `@fc.delegates` forwards, `*`/`/` markers, an exception as `class E(ValueError)`, a `Param(...)` as its
     type with its help as the comment; `sig_html` writes the block as HTML, a line per parameter with its comment in
     a column of its own, so that a long comment wraps under itself (and no empty line opens the block);
   - figures as `<img>` with the alt text and display width that their outputs carry (`miniconv.plotting.retina_png`);
   - a favicon drawn by code (`favicon_svg`);
3. smalldocs renders the copy, or `quarto render` when `quarto` is on PATH (not `nbdev_docs`: it renders `_proc/`
   itself, so step 2 could not come between);
4. `offline_site` makes the site load nothing from the network: the theme's Google-font `@import` goes (the system
   font stack takes over), TeX becomes MathML (latex2mathml, with primes beside their letter: `upright_primes`), and
   `tools/assets/` adds a maths font (OpenType MATH table, so that brackets stretch) that `nbs/styles.css` selects for
   `<math>`; `wrap_tables` puts every table in a box that scrolls sideways when the table is wider than the column;
5. nbconvert's Markdown exporter turns the processed `nbs/index.ipynb` into `README.md`.

Usage: `python tools/build_docs.py` (site and README), `python tools/build_docs.py --readme_only --readme_out F`.
"""
import html, inspect, importlib, json, os, re, shutil, subprocess, sys, tempfile, time
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
from fastcore.docments import DocmentText

ASSETS = Path(__file__).resolve().parent/'assets'
MATH_FONT = 'DejaVuMathTeXGyre.woff'  # nbs/styles.css loads it from `fonts/` at the site's root

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

# ---- API blocks: show_doc's signature, written again from the object it documents

def _param_help():
    "fastcore's `Param` and its flag types, which `@call_parse` commands use as annotations"
    from fastcore.script import Param, bool_arg, store_false, store_true
    return Param, (store_true, store_false, bool_arg)

def own_args(f): # A function
    "The parameter names `f`'s own code declares, or None: `@fc.delegates` adds the forwarded ones to its signature only"
    code = getattr(inspect.unwrap(f), '__code__', None)
    if code is None: return None
    n = code.co_argcount + code.co_kwonlyargcount
    n += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return set(code.co_varnames[:n])

def _fmt_anno(raw, ev): # The annotation as written (a string under `from __future__ import annotations`); evaluated
    "How an annotation reads in an API block: as written; a `Param` as its type; `store_true` as bool; NoneType as none"
    Param, flags = _param_help()
    if isinstance(ev, Param):
        t = ev.type
        return t.__name__ if isinstance(t, type) else 'bool' if ev.action in ('store_true', 'store_false') else ''
    if ev in flags: return 'bool'
    if raw is inspect.Parameter.empty or ev is type(None) or raw in ('NoneType', 'None'): return ''
    return raw if isinstance(raw, str) else inspect.formatannotation(raw)

def _bases(cls):
    "The base classes of `cls` as they read in its `class` line"
    def nm(b):
        mod = b.__module__.lstrip('_')  # `_pickle.Unpickler` is `pickle.Unpickler`
        return b.__qualname__ if mod in ('builtins', cls.__module__) else f'{mod}.{b.__qualname__}'
    return ', '.join(nm(b) for b in cls.__bases__ if b is not object)

def _params(f, fmt, docs, skip_first=False): # A function; fastcore's `DocmentText._fmt_param`; `{parameter: comment}`; drop the first parameter (`self`)
    "[(text, comment)] for `f`'s parameters as a caller passes them, with the markers `/` and `*` Python needs"
    Param, _ = _param_help()
    P = inspect.Parameter
    sig = inspect.signature(f)
    try: ev = inspect.signature(f, eval_str=True).parameters
    except Exception: ev = {}
    own = own_args(f)
    res, kinds, forwarded = [], [], False
    for i, (k, p) in enumerate(sig.parameters.items()):
        if skip_first and i == 0: continue
        if own is not None and k not in own: forwarded = True; continue  # @fc.delegates: the callee documents it
        e = ev[k].annotation if k in ev else p.annotation
        doc = docs.get(k) or (e.help if isinstance(e, Param) else None)
        star = {P.VAR_POSITIONAL: '*', P.VAR_KEYWORD: '**'}.get(p.kind, '')
        txt = star + k if star else fmt(k, dict(anno=_fmt_anno(p.annotation, e) or p.empty, default=p.default))
        res.append((txt, ' '.join(str(doc).split()) if doc else None)); kinds.append(p.kind)
    code = getattr(inspect.unwrap(f), '__code__', None)
    if forwarded and P.VAR_KEYWORD not in kinds and code is not None and code.co_flags & inspect.CO_VARKEYWORDS:
        k = code.co_varnames[code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & inspect.CO_VARARGS)]
        to = getattr(getattr(f, '__delwrap__', None), '__qualname__', '').removesuffix('.__init__')
        doc = docs.get(k) or (f'Passed on to `{to}`' if to else None)
        res.append((f'**{k}', ' '.join(str(doc).split()) if doc else None)); kinds.append(P.VAR_KEYWORD)
    if P.KEYWORD_ONLY in kinds and P.VAR_POSITIONAL not in kinds:
        i = kinds.index(P.KEYWORD_ONLY); res.insert(i, ('*', None)); kinds.insert(i, None)
    if P.POSITIONAL_ONLY in kinds:
        i = len(kinds) - kinds[::-1].index(P.POSITIONAL_ONLY); res.insert(i, ('/', None)); kinds.insert(i, None)
    return res

class ApiSig(DocmentText):
    "fastcore's `sig2str` layout (a `DocmentText`), with what it lacks here: the parameters a caller passes (`_params`), and `f()` with none"
    def __init__(self, f, name:str=None, skip_first:bool=False, maxline:int=110): # A function; its name; drop `self`; line length
        super().__init__(f, maxline=maxline, docstring=False)
        self.name, self.skip_first = name, skip_first

    @property
    def params(self): return _params(self.obj, self._fmt_param, {k: v.get('docment') for k, v in self.dm.items()}, self.skip_first)

    def __str__(self):
        s = super().__str__().rstrip().replace('(\n    \n)', '()', 1)
        if self.name: s = re.sub(r'^((?:async )?def )[\w.]+', lambda m: m.group(1) + self.name, s, count=1)
        return s

def api_signature(sym, name:str=None): # A function or class; the name to show
    "The signature block of `sym` for its API docs: what a caller passes, with each parameter's docments comment"
    name = name or sym.__name__
    if not inspect.isclass(sym): return str(ApiSig(sym, name))
    bases = _bases(sym)
    head = f"class {name}({bases}):" if bases else f"class {name}:"
    for k in ('__init__', '__new__'):
        ctor = sym.__dict__.get(k)
        ctor = getattr(ctor, '__func__', ctor)  # `__new__` is a staticmethod
        if inspect.isfunction(ctor): break
    else: return head + ' ...'  # an exception, or a subclass that keeps its base's constructor
    sig = ApiSig(ctor, k, skip_first=True, maxline=106)
    first = 'cls' if k == '__new__' else 'self'
    sig = re.sub(rf'^def {k}\(\n    ', f'def {k}(\n    {first}, ', str(sig).replace(f'def {k}()', f'def {k}({first})'), count=1)
    return head + '\n' + '\n'.join('    ' + l for l in sig.splitlines()) + ' ...'

_re_doc_src = re.compile(r'\[source\]\([^)]*?/blob/[^/)]+/([^)#]+)\.py(?:#[^)]*)?\)')
_re_py_fence = re.compile(r'(?s)```python\n.*?\n```')

def _doc_symbol(md, lib:str): # show_doc's Markdown; the package's name
    "The object a show_doc output documents, from its `[source]` link and heading; None if it can't be found"
    head, src = _re_doc_head.search(md), _re_doc_src.search(md)
    if not (head and src) or not src.group(1).startswith(lib + '/'): return None
    try: o = importlib.import_module(src.group(1).replace('/', '.'))
    except Exception: return None
    for part in head.group(1).split('.'):
        o = getattr(o, part, None)
        if o is None: return None
    return o

_re_sig_tok = re.compile(r"""(?P<st>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<kw>\b(?:async|def|class)\b)"""
                         r"|(?P<fu>(?<=def )\w+|(?<=class )\w+)|(?P<cn>\b(?:None|True|False)\b)|(?P<dv>\b\d+(?:\.\d+)?\b)")

def _split_comment(line): # A line of a signature block
    "(code, comment): the comment starts at the first ` #` outside a string"
    q = None
    for i, ch in enumerate(line):
        if q: q = None if ch == q and line[i-1] != '\\' else q
        elif ch in '\'"': q = ch
        elif ch == '#' and line[i-1:i] == ' ': return line[:i], line[i:]
    return line, ''

def _highlight(code): # Python code, one line
    "HTML of `code`, with the token classes Pandoc's highlighting uses (`kw`, `fu`, `cn`, `dv`, `st`), so the theme colours them"
    res, at = [], 0
    for m in _re_sig_tok.finditer(code):
        res += [html.escape(code[at:m.start()]), f'<span class="{m.lastgroup}">{html.escape(m.group())}</span>']
        at = m.end()
    return ''.join(res) + html.escape(code[at:])

def _ind(spaces): return f'<span class="mc-ind">{spaces}</span>' if spaces else ''

def sig_html(sig:str): # A signature block from `api_signature`
    "The signature block as HTML: a line per parameter, each comment in a column of its own beside the code, so that a long comment wraps under itself"
    lines = []
    for l in sig.splitlines():
        code, com = _split_comment(l)
        com = f'<span class="co">{html.escape(com)}</span>' if com else ''
        n = len(code) - len(code.lstrip(' '))  # the indent: a margin on the page (spaces could wrap onto a line of their own)
        ind = f' style="--ind: {n}ch"' if n else ''
        lines.append(f'<span class="mc-sig-line"{ind}><span class="mc-sig-code">{_ind(code[:n])}{_highlight(code[n:])}</span>{com}\n</span>')
    return ('<div class="mc-api"><div class="sourceCode mc-sig"><pre class="sourceCode python"><code class="sourceCode python">'
            + ''.join(lines) + '</code></pre></div></div>')

def fix_show_doc(md, lib:str): # A show_doc output (Markdown); the package's name
    "Write the signature block of a show_doc output again with `api_signature`; a `:NoneType=None` never survives"
    if not md.startswith('---'): return md
    sym = _doc_symbol(md, lib)
    head = _re_doc_head.search(md)
    if sym is not None and callable(sym):
        try: sig = api_signature(sym, head.group(1))
        except (TypeError, ValueError): sig = None
        if sig:
            m = _re_py_fence.search(md, head.end())
            if m: md = md[:m.start()] + sig_html(sig) + md[m.end():]
    return re.sub(r':NoneType(?=\s*=\s*None\b)', '', md)

# ---- figures: alt text and display size from the output's metadata

def figure_output(o): # A notebook output (dict), changed in place
    "An image output whose metadata has `alt`, `width` or `height` becomes an HTML `<img>` carrying them"
    data, meta = o.get('data', {}), o.get('metadata', {})
    if 'text/html' in data: return o
    for mime in ('image/png', 'image/jpeg', 'image/gif'):
        if mime not in data: continue
        m = meta.get(mime) if isinstance(meta.get(mime), dict) else {}
        attrs = ''.join(f' {k}="{html.escape(str(m[k]))}"' for k in ('alt', 'width', 'height') if m.get(k) not in (None, ''))
        if not attrs: return o
        b64 = ''.join(data[mime]) if isinstance(data[mime], list) else data[mime]
        o['data'] = {'text/html': f'<img src="data:{mime};base64,{b64.strip()}"{attrs} class="img-fluid">',
                     **({'text/plain': data['text/plain']} if 'text/plain' in data else {})}
        return o
    return o

def favicon_svg():
    "The site's icon: a 3x3 kernel on a diverging colour map, as the kernels chapter draws them"
    w = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]  # Sobel x
    col = {-2: '#2166ac', -1: '#92c5de', 0: '#f7f7f7', 1: '#f4a582', 2: '#b2182b'}
    cells = ''.join(f'<rect x="{2+10*j}" y="{2+10*i}" width="10" height="10" fill="{col[v]}"/>'
                    for i, row in enumerate(w) for j, v in enumerate(row))
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 34 34">'
            f'{cells}<rect x="2" y="2" width="30" height="30" fill="none" stroke="#333" stroke-width="2"/></svg>\n')

def render_copy(proc:Path, dest:Path, out:Path, cfg=None, quarto:bool=False): # `_proc/`; the folder to fill; the site's output-dir; for Quarto
    "Copy `proc` into `dest` with notebooks renamed to their `output-file` and their API blocks and figures fixed"
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
                figure_output(o)
                for mime in ('text/markdown', 'text/html'):
                    if mime in o.get('data', {}):
                        v = o['data'][mime]
                        v = ''.join(v) if isinstance(v, list) else v
                        if mime == 'text/markdown': v = fix_show_doc(v, cfg.lib_name)
                        o['data'][mime] = _fix(v, new, mime == 'text/markdown')
        (dest/new).parent.mkdir(parents=True, exist_ok=True)
        (dest/new).write_text(json.dumps(d, indent=1, ensure_ascii=False), encoding='utf-8')
    sb = dest/'sidebar.yml'
    if sb.exists():
        sb.write_text(_relink_yml(sb.read_text(), names))
    (dest/'favicon.svg').write_text(favicon_svg())  # `website.favicon` in nbs/_quarto.yml names it
    qy = dest/'_quarto.yml'
    if qy.exists() and not quarto:  # drop the Quarto-only formats smalldocs warns about
        q = yaml.safe_load(qy.read_text()) or {}
        fmt = q.get('format') or {}
        fmt.pop('commonmark', None)
        if isinstance(fmt.get('html'), dict):
            for k in ('keep-md', 'html-math-method'): fmt['html'].pop(k, None)  # smalldocs: MathML by `mathml_pages`
        qy.write_text(yaml.safe_dump(q, sort_keys=False))
    ny = dest/'nbdev.yml'
    meta = yaml.safe_load(ny.read_text()) if ny.exists() else {}
    meta.setdefault('project', {})['output-dir'] = '_docs' if quarto else str(out.resolve())
    ny.write_text(yaml.safe_dump(meta, sort_keys=False))

def _relink_yml(text, names): # sidebar.yml text; old -> new names
    "Rename the notebooks listed in `sidebar.yml`"
    return re.sub(r'(?m)^(\s*-\s*)(\S+\.ipynb)\s*$', lambda m: m.group(1) + names.get(m.group(2), m.group(2)), text)

# ---- a site that loads nothing from the network

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
            try: ml = upright_primes(convert(tex, display='block' if m.group(1) == 'display' else 'inline'))
            except Exception as e: print(f"note: {f.name}: maths left to KaTeX ({type(e).__name__}): {tex}", file=sys.stderr); return m.group(0)
            return f'<span class="math {m.group(1)}" data-tex="{html.escape(tex)}">{ml}</span>'
        h = _re_math.sub(_sub, h)
        if not _re_math.search(h): h = _re_katex.sub('', h)  # every formula converted: no CDN needed
        f.write_text(h, encoding='utf-8')

_prime = r'(?:<mrow>)?<mi>(&#x0203[234];)</mi>(?:</mrow>)?'
_re_prime_sup = re.compile(rf'<msup>(<m[ion]>[^<]*</m[ion]>){_prime}</msup>')
_re_prime_subsup = re.compile(rf'<msubsup>(<m[ion]>[^<]*</m[ion]><m[ion]>[^<]*</m[ion]>){_prime}</msubsup>')

def upright_primes(ml:str): # MathML from latex2mathml
    "Primes as a font draws them, beside the letter: latex2mathml makes `o'` a superscript, which shrinks the prime to a faint tick"
    ml = _re_prime_sup.sub(r'<mrow>\1<mo lspace="0" rspace="0">\2</mo></mrow>', ml)
    return _re_prime_subsup.sub(r'<mrow><msub>\1</msub><mo lspace="0" rspace="0">\2</mo></mrow>', ml)

_re_table = re.compile(r'(?s)<table\b.*?</table>')

_re_text = re.compile(r'>([^<]+)<')  # the text between two tags
_re_num_hyphen = re.compile(r'[^\s<>]*\d-\d[^\s<>]*')  # a token with a hyphen between digits: "0.0618-0.0776", "3-4"

def keep_numbers(table:str): # The HTML of a table
    "`table` with every token that has a hyphen between digits in a `span.mc-nobr`: Chromium may end a line after that hyphen"
    nobr = lambda m: _re_num_hyphen.sub(r'<span class="mc-nobr">\g<0></span>', m.group(1))
    return _re_text.sub(lambda m: f'>{nobr(m)}<', table)

def wrap_tables(out:Path): # The rendered site
    "Put every table in a `div.mc-table`, which scrolls sideways when the table is wider than the column (`nbs/styles.css`)"
    for f in out.rglob('*.html'):
        h = f.read_text(encoding='utf-8')
        new = _re_table.sub(lambda m: f'<div class="mc-table">{keep_numbers(m.group())}</div>', h)
        if new != h: f.write_text(new, encoding='utf-8')

# `@import url(https://...);` (the URL itself may hold `;`) or `@import "https://...";`, with any media list after it
_re_css_import = re.compile(r'@import\s+(?:url\(\s*["\']?(?:https?:)?//[^)]*\)|["\'](?:https?:)?//[^"\']*["\'])[^;]*;')
_re_remote = re.compile(r'''(?:<(?:link|script|img|iframe|source)\b[^>]*?\s(?:href|src)=["']|url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s]+)''')

def remote_refs(out:Path): # The rendered site
    "Every reference in the site's HTML and CSS that a browser would fetch from another host: (file, address)"
    res = []
    for f in sorted(out.rglob('*')):
        if f.suffix not in ('.html', '.css'): continue
        text = f.read_text(encoding='utf-8', errors='replace')
        if f.suffix == '.html': text = re.sub(r'(?is)<a\b[^>]*>', '', text)  # links are followed only when clicked
        res += [(f.relative_to(out).as_posix(), u) for u in _re_remote.findall(text)]
    return res

def offline_site(out:Path): # The rendered site
    "Make `out` load nothing from the network: no remote font imports, MathML for maths, the maths font beside it"
    for f in out.rglob('*.css'):  # the Bootswatch theme imports its font from Google: the system font stack takes over
        css = f.read_text(encoding='utf-8')
        if _re_css_import.search(css): f.write_text(_re_css_import.sub('', css), encoding='utf-8')
    mathml_pages(out)
    wrap_tables(out)
    (out/'fonts').mkdir(exist_ok=True)
    for f in ASSETS.glob('DejaVu*'): shutil.copy2(f, out/'fonts'/f.name)
    for page, u in remote_refs(out): print(f"warning: {page} loads {u} from the network", file=sys.stderr)

def render_smalldocs(proc:Path, out:Path, cfg=None): # `_proc/`; the site's folder
    "Render the site into `out` with smalldocs, from a fixed copy of `proc`"
    from smalldocs.cli import main as smalldocs
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix='miniconv_site_') as tmp:
        render_copy(proc, Path(tmp), out, cfg)
        rc = smalldocs(['render', tmp, '--quiet'])
    if rc: sys.exit(f"smalldocs render failed (exit {rc})")

def render_quarto(proc:Path, out:Path, cfg=None): # `_proc/`; the site's folder
    "Render the site into `out` with Quarto, from the same fixed copy of `proc` (`nbdev_docs` would render `_proc/` as is)"
    with tempfile.TemporaryDirectory(prefix='miniconv_site_') as tmp:
        render_copy(proc, Path(tmp), out, cfg, quarto=True)
        subprocess.run(['quarto', 'render', tmp, '--no-cache'], check=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(Path(tmp)/'_docs', out)

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

def title_sections(sidebar:Path): # `sidebar.yml` as `nbdev_sidebar` wrote it
    "Capitalise the title of each section `nbdev_sidebar` made from a folder: `section: solutions` -> `section: Solutions`"
    text = Path(sidebar).read_text(encoding='utf-8')
    new = re.sub(r'(?m)^(\s*-\s*section:\s*)(\S.*)$', lambda m: m.group(1) + m.group(2)[:1].upper() + m.group(2)[1:], text)
    if new != text: Path(sidebar).write_text(new, encoding='utf-8')
    return new

def process(n_workers:int=0, force:bool=False): # Worker processes (0: this one); reprocess every notebook
    "Process `nbs/` into `_proc/` as `nbdev_proc_nbs` does, without its Quarto install and `pip install -e .`"
    cfg = _cfg()
    refresh_quarto_yml()                # nbs/nbdev.yml from settings.ini
    nbdev_sidebar(path=cfg.nbs_path)    # nbs/sidebar.yml lists every notebook (custom_sidebar=False), a section per sub-folder
    title_sections(cfg.nbs_path/'sidebar.yml')
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
    try: proc = process(n_workers=n_workers, force=force)
    except Exception as e: sys.exit(f"nbdev could not process the notebooks: {e}")
    t1 = time.perf_counter()
    quarto = bool(shutil.which('quarto')) and not no_quarto
    (render_quarto if quarto else render_smalldocs)(proc, out, cfg)
    offline_site(out)
    print(f"processed notebooks in {t1-t0:.1f}s, rendered {out} with {'Quarto' if quarto else 'smalldocs'} in {time.perf_counter()-t1:.1f}s")
    write_readme(readme_out, proc=proc, cfg=cfg)
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.html'))
    print(f"built {len(pages)} pages and {readme_out} in {time.perf_counter()-t0:.1f}s: {' '.join(pages)}")

if __name__ == '__main__':  # `call_parse` has run `main` by now, and every file is written and closed
    # nbdev's processing leaves an IPython shell per notebook: at exit each one runs a full garbage collection, and
    # then the interpreter tears torch down; on a busy 2-core machine that took longer than the build itself.
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)

"""nbdev 2's notebook processing for the docs, as `nbdev_proc_nbs` does it but without its side effects.

`nbdev_proc_nbs` first tries to `sudo`-install Quarto and `pip install -e .` the project again when Quarto is missing;
`proc_nbs` here runs the same steps (nbdev.yml, _modidx.py, sidebar.yml, then nbdev.serve's processing into `_proc/`)
without that. One change to nbdev's processors, see `exec_imports_show_docs`.
A module of its own (not a script) so that spawned worker processes can import `_proc_one`."""
import ast, os, shutil, sys
from pathlib import Path

from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.processors import FilterDefaults, exec_show_docs, cell_lang, _show_docs

# nbdev runs each cell that holds an import, in full and without the cells before it, to render show_doc; a cell
# that also uses earlier variables then fails (nbdev warns "Found cells containing imports and other code").
# Our processor runs only the imports of such a cell, and keeps its saved outputs.
_run_dirs = {'export', 'exports', 'exporti', 'exec_doc'}

def _imports_only(cell): # A notebook cell, as nbdev's processors see it
    "The import statements of a code cell that mixes imports with other code, else None"
    if cell.cell_type != 'code' or cell_lang(cell) != 'python' or not cell.source: return None
    if cell.directives_.keys() & _run_dirs or 'nbdev_export'+'()' in cell.source: return None
    try: trees = cell.parsed_()
    except SyntaxError: return None
    if not trees or _show_docs(trees): return None
    imps = [t for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
    if not imps or len(imps) == len(trees): return None
    return '\n'.join(ast.unparse(t) for t in imps)

class exec_imports_show_docs(exec_show_docs):
    "nbdev's `exec_show_docs`, except that a cell mixing imports with other code runs only its imports"
    def __call__(self, cell):
        if not self.nb.has_docs_ or not hasattr(self, 'k'): return
        imps = _imports_only(cell)
        if imps is None: return super().__call__(cell)
        if cell.directives_.get('eval:', [''])[0].lower() == 'false': return
        name = Path(getattr(self.nb, 'path_', 'notebook')).name
        print(f"note: {name} cell {cell.idx_} mixes imports with other code; ran its imports only "
              "(nbdev_docs would run the whole cell)", file=sys.stderr)
        self.k.run(imps)
        if self.k.exc: raise Exception(f"Error in {getattr(self.nb, 'path_', 'notebook')} cell {cell.idx_}:\n{imps}") from self.k.exc

class DocsFilter(FilterDefaults):
    "nbdev's notebook processors for the docs, with `exec_imports_show_docs` for `exec_show_docs`"
    def base_procs(self): return [exec_imports_show_docs if p is exec_show_docs else p for p in super().base_procs()]

def _proc_one(o): # (source, destination, processor class) from nbdev.serve._proc_file
    "Process one notebook as nbdev.serve_drv.main does, with `DocsFilter`"
    import nbdev.serve_drv
    src, dst, x = o
    nbdev.serve_drv.main((src, dst, DocsFilter if x is FilterDefaults else x))

def proc_nbs(n_workers:int=0, force:bool=False): # Worker processes (0: this one); reprocess every notebook
    "Process `nbs/` into `_proc/` as `nbdev_proc_nbs` does, without its Quarto install and `pip install -e .`"
    from fastcore.parallel import parallel
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.doclinks import _build_modidx
    from nbdev.serve import _proc_file
    refresh_quarto_yml()               # nbs/nbdev.yml from settings.ini
    _build_modidx()                    # miniconv/_modidx.py, for the doc links
    nbdev_sidebar.__wrapped__()        # nbs/sidebar.yml lists every notebook (custom_sidebar=False)
    # The rest is nbdev.serve.proc_nbs, with `_proc_one` for its worker.
    cfg = get_config()
    cache, path = cfg.config_path/'_proc', cfg.nbs_path
    files = nbglob(path, func=Path, file_glob='', file_re='')
    for f in ('_quarto.yml', '_brand.yml'):
        if (path/f).exists(): files.append(path/f)
    chk_mtime = max(cfg.config_file.stat().st_mtime, Path(__file__).stat().st_mtime)
    cache.mkdir(parents=True, exist_ok=True)
    cache_mtime = cache.stat().st_mtime
    if force or cache_mtime < chk_mtime: shutil.rmtree(cache); cache.mkdir()
    files = files.map(_proc_file, mtime=cache_mtime, cache=cache, path=path).filter()
    parallel(_proc_one, files, n_workers=n_workers, pause=0.01, method='spawn')
    cache.touch()
    return cache

def proc_nb(nb_path): # A notebook in `nbs/`
    "One notebook processed in memory, as `proc_nbs` writes it into `_proc/`"
    from execnb.nbio import read_nb
    nb = read_nb(nb_path)
    old, os.environ['IN_TEST'] = os.environ.get('IN_TEST'), '1'  # as nbdev.serve_drv does
    try: DocsFilter()(nb)
    finally:
        if old is None: del os.environ['IN_TEST']
        else: os.environ['IN_TEST'] = old
    return nb

"""The course's shape, kept: one notebook = one module = one page, and a notebook uses only what earlier notebooks export.

`NN_name.ipynb` says `#| default_exp name`, and no cell of it (hidden ones included) imports a `miniconv` module that a
later notebook exports (its own module it may import, as a test cell that patches it does). The solutions notebooks come after every chapter, so they may import any module."""
import json, re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1]/'nbs'
CHAPTERS = sorted(p for p in NBS.glob('[0-9][0-9]_*.ipynb'))

def cells(p): return [''.join(c['source']) for c in json.loads(p.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
def name_of(p): return re.sub(r'^\d+_', '', p.stem)

def exported(p):
    "The module a notebook exports, from its `#| default_exp` line, or None"
    for code in cells(p):
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', code, re.M)
        if m: return m.group(1)

def imported(code):
    "The `miniconv` modules a cell imports: `from miniconv.x import ...`, `import miniconv.x`, `from miniconv import x`"
    mods = set(re.findall(r'^\s*(?:from|import)\s+miniconv\.(\w+)', code, re.M))
    for names in re.findall(r'^\s*from\s+miniconv\s+import\s+\(?([\w\s,]+)\)?', code, re.M):
        mods |= {n.strip() for n in names.split(',') if n.strip()}
    return mods

def test_chapters_found():
    assert len(CHAPTERS) >= 10, CHAPTERS

@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.name)
def test_module_is_named_after_the_notebook(nb):
    assert exported(nb) == name_of(nb), f"{nb.name} exports miniconv.{exported(nb)}, not miniconv.{name_of(nb)}"
    assert (NBS.parent/'miniconv'/f'{name_of(nb)}.py').exists()

@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.name)
def test_uses_only_earlier_notebooks(nb):
    later = {name_of(p) for p in CHAPTERS if p.name > nb.name}
    used = set().union(*map(imported, cells(nb)))
    assert not used & later, f"{nb.name} imports miniconv.{sorted(used & later)}, exported by a later notebook"

def test_the_import_scan_sees_all_three_forms():
    "A check of the check: each way of importing a module is seen"
    assert imported("from miniconv.im2col import conv2d\nimport miniconv.data as d\nfrom miniconv import cnn, layers") == \
        {'im2col', 'data', 'cnn', 'layers'}

IMPORT = re.compile(r'(from \S+ import |import )\S')
def mixed_import_cells(p):
    "Code cells, outside `#| export`, that hold an import and other code: nbdev's docs build runs each such cell alone and fails on its other names"
    for src in cells(p):
        lines = [l for l in src.splitlines() if l.strip() and not l[0].isspace() and not l.startswith('#')]  # indented: inside a statement
        if src.startswith('#| export') or 'show_doc' in src or not lines: continue
        imps = [l for l in lines if IMPORT.match(l)]
        if imps and len(imps) < len(lines): yield lines[0]

@pytest.mark.parametrize('nb', sorted(NBS.glob('**/*.ipynb')), ids=lambda p: str(p.relative_to(NBS)))
def test_imports_have_cells_of_their_own(nb):
    assert not list(mixed_import_cells(nb)), f"{nb.name}: split the import from the code (nbdev runs import cells on their own when it builds the docs): {list(mixed_import_cells(nb))}"

def test_the_mixed_import_scan_finds_one(tmp_path):
    p = tmp_path/'x.ipynb'
    p.write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': ['import torch\n', 'x = torch.ones(2)']},
                                       {'cell_type': 'code', 'source': ['import torch']}]}))
    assert list(mixed_import_cells(p)) == ['import torch']

"""A number in a chapter's prose that comes from a run is rendered from code.

The scan reads the markdown cells of every chapter and solutions notebook, the text a learner reads as written, and finds
percentages, ratios (`1.3×`, `2x`) and times (`26.8 ms`, `3 s`). Each must be either rendered by a code cell (an
`IPython.display.Markdown` output or printed text, which the scan never sees, because it reads markdown cells only) or
listed in `ALLOWED`: a setting or a definition, not a result, with the cell that shows it."""
import json, re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1]/'nbs'
NOTEBOOKS = [p.relative_to(NBS).as_posix() for p in sorted(NBS.glob('[0-9][0-9]_*.ipynb')) + sorted(NBS.glob('solutions/*.ipynb'))]

RUN_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*"                     # a number, then
                        r"(?:\s?%"                                         # a percentage: 97.5%, 10 %
                        r"|\s?×(?!\s?\d)|x(?!\w)"                         # a ratio: 1.3×, 2x; not a size (3×3, 28 × 28, 3x3)
                        r"|\s?(?:ms|µs)\b|\s(?:s|seconds?|milliseconds?|minutes?)\b)")  # a time: 26.8 ms, 3 s; not "7s"

# Numbers no cell renders, because they are settings or definitions, not results. Each entry:
# (notebook, a phrase of its prose holding the number, text of one of its code cells, source or output, that shows it).
ALLOWED = [
    ('02_plotting.ipynb', 'saved at 2× with its display size', 'png_width//2'),           # retina figures: checked by test_eq
    ('08_cnn.ipynb', 'a zoom of up to 10%', 'scale=0.1'),                                 # augment's default
    ('08_cnn.ipynb', 'over the first 30% of the steps', 'peak, at'),                      # OneCycleLR's default; the cell prints the peak's step
    ('14_layers.ipynb', 'within 1.3× of the same step', 'target = 1.3'),                  # the course's speed target
    ('17_cli.ipynb', "The course's target is 1.3×", 'STEP_TARGET = 1.3'),                 # the same target, as the bench reports it
    ('solutions/11_color_solutions.ipynb', 'comes out 10% brighter', '1.1*gauss'),       # a kernel scaled by 1.1; the means are printed
]

def prose(md:str) -> str:
    "Markdown without what a reader takes as code: fenced blocks, inline code, and link targets"
    md = re.sub(r'```.*?```', ' ', md, flags=re.S)
    md = re.sub(r'`[^`\n]*`', ' ', md)
    return re.sub(r'\]\([^)]*\)', ']', md)

def run_numbers(md:str) -> list:
    "The percentages, ratios and times in the prose of `md`"
    return [m.group() for m in RUN_NUMBER.finditer(prose(md))]

@cache
def cells(nb:str) -> tuple:
    "`(cell_type, source, outputs as text)` of each cell of notebook `nb`"
    def text(o): return ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))
    return tuple((c['cell_type'], ''.join(c['source']), ''.join(map(text, c.get('outputs', []))))
                 for c in json.loads((NBS/nb).read_text())['cells'])

def unexplained(nb:str) -> list:
    "`(number, context)` of each run number in `nb`'s markdown that no `ALLOWED` entry covers"
    found = []
    for kind, src, _ in cells(nb):
        if kind != 'markdown': continue
        text = prose(src)
        hits = list(RUN_NUMBER.finditer(text))
        left = Counter(m.group() for m in hits) - Counter(n for f, phrase, _ in ALLOWED if f == nb and phrase in src for n in run_numbers(phrase))
        found += [(m.group(), text[max(0, m.start()-60):m.end()+20]) for m in hits if left[m.group()] > 0]
    return found

@pytest.mark.parametrize('text,hit', [('it reaches 97.5% after 4 epochs', '97.5%'), ('our step is 1.3× slower', '1.3×'),
                                      ('a step takes 26.8 ms', '26.8 ms'), ('2x faster than before', '2x'), ('it takes 3 s', '3 s'),
                                      ('within 0.31 seconds', '0.31 seconds'), ('about 50 % of the time', '50 %'),
                                      ('a ratio of 1.31x, above', '1.31x'), ('1,200 ms in all', '1,200 ms')])
def test_scanner_catches(text, hit): assert run_numbers(text) == [hit]

@pytest.mark.parametrize('text', ['a 3×3 kernel on 28×28 pixels', '15 × 35 entries', 'a 3x3 kernel', 'stride 2 halves the size',
                                  'tell 1s from 7s', 'format it with `{:.1%}`', '```\nacc = 97.5%\n```', 'see [the table](speed.html#1.3x)',
                                  'seeds 0, 1 and 2', 'nbdev 2.4, 5 steps', 'k×k times the data'])
def test_scanner_ignores(text): assert run_numbers(text) == []

@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_run_numbers_rendered(nb):
    "Every percentage, ratio and time in a notebook's markdown is rendered from code, or is a listed setting"
    assert not unexplained(nb), f"{nb}: numbers typed into the prose; render them from the variables that hold them:\n" + \
        '\n'.join(f"  {n!r} in ...{ctx}..." for n, ctx in unexplained(nb))

@pytest.mark.parametrize('nb,phrase,shown', ALLOWED, ids=[f"{nb}:{phrase}" for nb, phrase, _ in ALLOWED])
def test_allowed_entries_hold(nb, phrase, shown):
    "Each entry is still needed, names a number, and names a code cell that shows it"
    assert run_numbers(phrase), f"{phrase!r} holds no percentage, ratio or time"
    assert any(kind == 'markdown' and phrase in src for kind, src, _ in cells(nb)), f"{nb}: no markdown cell says {phrase!r} any more"
    assert any(kind == 'code' and (shown in src or shown in out) for kind, src, out in cells(nb)), f"{nb}: no code cell shows {shown!r}"

"""The conv spreadsheet, checked from outside: its formulas evaluated (by a few lines here, and by the independent
`formulas` engine) and compared with PyTorch, its precedents followed by a regex parser and compared with
`receptive_field`, its errors, and its atomic save (its command is tested in test_cli.py)."""
import errno, os, re, subprocess, sys

os.environ['MINICONV_OFFLINE'] = '1'
import formulas, numpy as np, pytest, torch
import torch.nn.functional as F
from openpyxl import Workbook, load_workbook
from openpyxl.utils import column_index_from_string
from torch import nn
from torch.testing import assert_close

from miniconv.data import load_mnist
from miniconv.receptive_field import field_bounds, receptive_field
from miniconv import spreadsheet
from miniconv.spreadsheet import conv_spreadsheet

# A reference is an optional $, 1-3 letters, optional $, digits; optionally ':' and a second one.
REF = re.compile(r"(?<![A-Za-z0-9_])\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?(?![A-Za-z0-9_(])")

def cells_of(ref_match):
    "All (row, col) cells of one regex match"
    c0, r0, c1, r1 = ref_match.groups()
    c1, r1 = c1 or c0, r1 or r0
    return {(r, c) for r in range(int(r0), int(r1)+1)
            for c in range(column_index_from_string(c0), column_index_from_string(c1)+1)}

def refs(ws, rc):
    "(row, col) cells the formula at `rc` reads, found with a regex (independent of miniconv.spreadsheet.precedents)"
    v = ws.cell(*rc).value
    if not (isinstance(v, str) and v.startswith('=')): return set()
    return set().union(*(cells_of(m) for m in REF.finditer(v)))

def region(wb, name):
    "2-D array of (row, col) cells of the workbook-level name `name`"
    (sheet, ref), = wb.defined_names[name].destinations
    m = REF.fullmatch(ref)
    rows = sorted({r for r, c in cells_of(m)}); cols = sorted({c for r, c in cells_of(m)})
    return [[(r, c) for c in cols] for r in rows]

def evaluate(path):
    "{(row, col): value} of every cell, as the `formulas` package computes them"
    sol = formulas.ExcelModel().loads(str(path)).finish().calculate()
    res = {}
    for k, v in sol.items():
        m = re.fullmatch(r"'\[[^\]]+\]CONV'!([A-Z]+)(\d+)", str(k))
        x = np.asarray(v.value).ravel()[0]
        if m and isinstance(x, (int, float, np.number)): res[(int(m[2]), column_index_from_string(m[1]))] = float(x)
    return res

def torch_convs(img, k1, k2, stride, padding):
    "conv1 and conv2 (float64) as PyTorch computes them: F.conv2d then ReLU, twice"
    c1 = F.relu(F.conv2d(img[None, None].double(), k1[None, None].double(), stride=stride, padding=padding))
    c2 = F.relu(F.conv2d(c1, k2[None, None].double(), stride=stride, padding=padding))
    return c1[0, 0], c2[0, 0]

def values(ev, wb, name): return torch.tensor([[ev[rc] for rc in row] for row in region(wb, name)], dtype=torch.float64)

FORMULA = re.compile(r"=MAX\(0,SUMPRODUCT\(([^,()]+),([^,()]+)\)\)")

def block(ref):
    "The (row, col) cells of an A1 range, row by row, as SUMPRODUCT pairs them"
    m = REF.fullmatch(ref)
    rows, cols = sorted({r for r, c in cells_of(m)}), sorted({c for r, c in cells_of(m)})
    return [(r, c) for r in rows for c in cols]

def evaluate_by_hand(path):
    "{(row, col): value} of the cells of the conv regions, each `=MAX(0,SUMPRODUCT(a,b))` computed here from the cells it reads (blank is 0)"
    wb = load_workbook(path); ws = wb['conv']; memo = {}
    def val(rc):
        if rc not in memo:
            v = ws.cell(*rc).value
            if isinstance(v, str) and v.startswith('='):
                a, b = FORMULA.fullmatch(v).groups()
                v = max(0.0, sum(val(x)*val(y) for x, y in zip(block(a), block(b), strict=True)))
            memo[rc] = float(v or 0)
        return memo[rc]
    return {rc: val(rc) for name in ('conv1', 'conv2') for row in region(wb, name) for rc in row}

@pytest.fixture(scope='module')
def digit():
    xs = load_mnist(verbose=False)
    return xs.x_train[0].view(28, 28)

@pytest.fixture(scope='module')
def kernels():
    "Random kernels (seeded) whose ReLUs both clip some cells and pass others, so neither is a trivial comparison"
    g = torch.Generator().manual_seed(3)
    return torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)

def sheet_matches_torch(path, img, k1, k2, stride, padding, evaluate=evaluate):
    "Write the workbook, evaluate every formula (with `formulas`, unless told otherwise), and assert conv1 and conv2 equal PyTorch's; return (c1, c2)"
    fn = conv_spreadsheet(img, k1, k2, path, stride=stride, padding=padding)
    wb, ev = load_workbook(fn), evaluate(fn)
    c1, c2 = torch_convs(img, k1, k2, stride, padding)
    assert_close(values(ev, wb, 'conv1'), c1, rtol=1e-9, atol=1e-9)
    assert_close(values(ev, wb, 'conv2'), c2, rtol=1e-9, atol=1e-9)
    return c1, c2

@pytest.mark.parametrize('padding', [0, 1])
def test_values_by_hand_match_pytorch(tmp_path, digit, kernels, padding):
    "Every conv1 and conv2 cell, its formula computed here, equals F.conv2d + ReLU applied twice (the fast check; the `formulas` engine's is slow)"
    c1, c2 = sheet_matches_torch(tmp_path/'c.xlsx', digit, *kernels, stride=2, padding=padding, evaluate=evaluate_by_hand)
    wb = load_workbook(tmp_path/'c.xlsx')
    assert all(FORMULA.fullmatch(wb['conv'].cell(*rc).value) for name in ('conv1', 'conv2') for row in region(wb, name) for rc in row)  # never pasted values
    assert (c1 > 0).sum() >= 10 and (c2 > 0).sum() >= 10

def test_values_by_hand_general_shapes(tmp_path):
    "Non-square image and kernels, stride 1, padding 2"
    g = torch.Generator().manual_seed(1)
    img, k1, k2 = torch.rand(9, 11, generator=g), torch.randn(2, 3, generator=g), torch.randn(3, 2, generator=g)
    sheet_matches_torch(tmp_path/'g.xlsx', img, k1, k2, stride=1, padding=2, evaluate=evaluate_by_hand)

@pytest.mark.slow
@pytest.mark.parametrize('padding', [0, 1])
def test_values_match_pytorch(tmp_path, digit, kernels, padding):
    "Every conv1 and conv2 cell, evaluated from its formula by the `formulas` engine, equals F.conv2d + ReLU applied twice"
    k1, k2 = kernels
    c1, c2 = sheet_matches_torch(tmp_path/'c.xlsx', digit, k1, k2, stride=2, padding=padding)
    wb = load_workbook(tmp_path/'c.xlsx')
    ws = wb['conv']
    for name in ('conv1', 'conv2'):  # formulas, never pasted values
        assert all(ws.cell(*rc).value.startswith('=MAX(0,SUMPRODUCT(') for row in region(wb, name) for rc in row)
    assert c2.shape == ((6, 6) if padding == 0 else (7, 7))
    pre2 = F.conv2d(c1[None, None], k2[None, None].double(), stride=2, padding=padding)
    assert (c1 > 0).sum() >= 10 and (c2 > 0).sum() >= 10 and (pre2 < 0).sum() >= 1, "a comparison of mostly zeros would prove little"

@pytest.mark.slow
def test_values_general_shapes(tmp_path):
    "Non-square image and kernels, stride 1, padding 2"
    g = torch.Generator().manual_seed(1)
    img, k1, k2 = torch.rand(9, 11, generator=g), torch.randn(2, 3, generator=g), torch.randn(3, 2, generator=g)
    sheet_matches_torch(tmp_path/'g.xlsx', img, k1, k2, stride=1, padding=2)

def trace_to_input(wb, rc):
    "Input cells (as tensor indices) reached from `rc` by following precedents until only constants remain"
    ws = wb['conv']
    inp = {cell: (i, j) for i, row in enumerate(region(wb, 'input')) for j, cell in enumerate(row)}
    seen, todo = set(), {rc}
    while todo:
        nxt = set().union(*(refs(ws, c) for c in todo)) - seen
        seen |= nxt; todo = nxt
    return {inp[c] for c in seen if c in inp}

@pytest.mark.parametrize('padding', [0, 1])
def test_receptive_field(tmp_path, digit, kernels, padding):
    "Following one conv2 cell's precedents reaches exactly the receptive field receptive_field reports, for every conv2 cell"
    fn = conv_spreadsheet(digit, *kernels, tmp_path/'r.xlsx', stride=2, padding=padding)
    wb = load_workbook(fn)
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=padding), nn.ReLU(),
                          nn.Conv2d(1, 1, 3, stride=2, padding=padding), nn.ReLU())
    rh, rw = receptive_field(model, 28, axis=0).iloc[-1], receptive_field(model, 28, axis=1).iloc[-1]
    assert (rh['size'], rw['size']) == (7, 7)
    conv2 = region(wb, 'conv2')
    for i, row in enumerate(conv2):
        for j, rc in enumerate(row):
            (r0, r1), (c0, c1) = field_bounds(rh, i, 28), field_bounds(rw, j, 28)
            want = {(r, c) for r in range(r0, r1+1) for c in range(c0, c1+1)}
            assert trace_to_input(wb, rc) == want, (i, j)
    # the lesson's picture: an interior conv2 cell reaches a full 7x7 block
    got = trace_to_input(wb, conv2[2][2])
    assert len(got) == 49 and {r for r, c in got} == set(range(min(r for r, c in got), min(r for r, c in got)+7))

def test_bad_input(tmp_path, digit):
    k = torch.ones(3, 3)
    with pytest.raises(ValueError, match=r"k1 must be 2-D, got shape \(1, 3, 3\)"): conv_spreadsheet(digit, k[None], k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"k2 must be 2-D, got shape \(9,\)"): conv_spreadsheet(digit, k, k.flatten(), tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"img is 6x28, too small: conv2's 3x3 kernel doesn't fit in its 2x13 input \(stride 2\)"):
        conv_spreadsheet(digit[:6], k, k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"img is 9x9, too small: conv2's 3x3 kernel doesn't fit in its 2x2 input \(stride 3\)"):
        conv_spreadsheet(digit[:9, :9], torch.ones(5, 5), k, tmp_path/'b.xlsx', stride=3)
    with pytest.raises(ValueError, match=r"img is 2x2, too small: conv1's 3x3 kernel doesn't fit in its 2x2 input \(stride 2\)"):
        conv_spreadsheet(digit[:2, :2], k, k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"stride must be a positive integer, got stride=0"): conv_spreadsheet(digit, k, k, tmp_path/'b.xlsx', stride=0)
    with pytest.raises(ValueError, match=r"padding must be a non-negative integer, got padding=-1"): conv_spreadsheet(digit, k, k, tmp_path/'b.xlsx', padding=-1)
    with pytest.raises(ValueError, match=r"img must be 2-D, got shape \(784,\)"): conv_spreadsheet(digit.flatten(), k, k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"k1 holds 9 NaN or infinite values"): conv_spreadsheet(digit, k*float('nan'), k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"img must be a 2-D array of numbers"): conv_spreadsheet([['a', 'b']], k, k, tmp_path/'b.xlsx')
    with pytest.raises(ValueError, match=r"path must end in .xlsx, got '.*b.csv'"): conv_spreadsheet(digit, k, k, tmp_path/'b.csv')
    assert list(tmp_path.iterdir()) == []
    conv_spreadsheet(digit[:7, :7], k, k, tmp_path/'ok.xlsx')  # without padding, exactly the receptive field is fine: one conv2 cell
    assert len(region(load_workbook(tmp_path/'ok.xlsx'), 'conv2')) == 1

def test_padding_lets_a_smaller_image_through(tmp_path):
    "The size check is PyTorch's, via conv_out_size: with padding 1 a 6x6 image (smaller than the 7x7 field) still gives conv2 cells"
    g = torch.Generator().manual_seed(2)
    img, k1, k2 = torch.rand(6, 5, generator=g), torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)
    c1, c2 = sheet_matches_torch(tmp_path/'s.xlsx', img, k1, k2, stride=2, padding=1, evaluate=evaluate_by_hand)
    assert c2.shape == (2, 2)


# Atomic writes: a failed save leaves the old workbook as it was, and no temporary file; a special file is never replaced
@pytest.fixture
def good_workbook(tmp_path, digit, kernels):
    fn = conv_spreadsheet(digit, *kernels, tmp_path/'conv.xlsx')
    return fn, fn.read_bytes()

def assert_untouched(fn, data):
    assert fn.read_bytes() == data
    assert len(region(load_workbook(fn), 'conv2')) == 6
    assert [p.name for p in fn.parent.iterdir()] == [fn.name]  # no temporary file left beside it

def test_failed_save_keeps_the_old_workbook(good_workbook, digit, kernels, monkeypatch):
    "openpyxl dies half-way through writing (here: a full disk): the good workbook is untouched"
    fn, data = good_workbook
    def half_save(self, filename):
        with open(filename, 'wb') as f: f.write(data[:622])
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(Workbook, 'save', half_save)
    with pytest.raises(OSError, match='No space left'): conv_spreadsheet(digit, *kernels, fn, stride=1)
    assert_untouched(fn, data)

SAVE_UNDER_LIMIT = """
import resource, signal, sys, torch
from miniconv.spreadsheet import conv_spreadsheet
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try: conv_spreadsheet(torch.rand(28, 28), torch.ones(3, 3), torch.ones(3, 3), sys.argv[1])
except OSError as e: print('OSError', e.errno)
"""

@pytest.mark.slow
def test_file_size_limit_keeps_the_old_workbook(good_workbook):
    "A real failed write, in a subprocess: under a 4 KiB file-size limit the save fails, and the good workbook survives whole"
    fn, data = good_workbook
    assert len(data) > 4096
    r = subprocess.run([sys.executable, '-c', SAVE_UNDER_LIMIT, str(fn)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'MINICONV_OFFLINE': '1'})
    assert r.stdout.strip() == f'OSError {errno.EFBIG}', (r.stdout, r.stderr)
    assert_untouched(fn, data)

def test_target_checked_before_any_work(tmp_path, digit, monkeypatch):
    "A bad path fails at once, before the image is read or a workbook built; '~' is expanded"
    def no_work(*a, **k): raise AssertionError('work started before the path was checked')
    monkeypatch.setattr(spreadsheet, '_as2d', no_work)
    k = torch.ones(3, 3)
    (tmp_path/'dir.xlsx').mkdir()
    with pytest.raises(ValueError, match=r"is a folder, not a file name"): conv_spreadsheet(digit, k, k, tmp_path/'dir.xlsx')
    with pytest.raises(ValueError, match=r"the folder .*missing.* does not exist"): conv_spreadsheet(digit, k, k, tmp_path/'missing'/'c.xlsx')
    with pytest.raises(ValueError, match=r"must end in .xlsx"): conv_spreadsheet(digit, k, k, tmp_path/'c.xls')
    monkeypatch.undo()
    monkeypatch.setenv('HOME', str(tmp_path))
    assert conv_spreadsheet(digit, k, k, '~/home.xlsx') == tmp_path/'home.xlsx' and (tmp_path/'home.xlsx').exists()

def test_a_named_pipe_at_the_target_is_left_alone(tmp_path, digit):
    os.mkfifo(tmp_path/'pipe.xlsx')
    with pytest.raises(ValueError, match=r"is a named pipe \(FIFO\), not a regular file"): conv_spreadsheet(digit, torch.ones(3, 3), torch.ones(3, 3), tmp_path/'pipe.xlsx')
    assert (tmp_path/'pipe.xlsx').is_fifo()

def test_trace_precedents_checks_its_depth(tmp_path, digit):
    from miniconv.spreadsheet import trace_precedents
    ws = load_workbook(conv_spreadsheet(digit, torch.ones(3, 3), torch.ones(3, 3), tmp_path/'t.xlsx'))['conv']
    with pytest.raises(ValueError, match='depth must be a non-negative integer, got depth=-1'): trace_precedents(ws, 'A1', depth=-1)
    assert trace_precedents(ws, 'A1', depth=0) == []

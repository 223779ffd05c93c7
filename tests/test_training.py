"The `miniconv_train` command and checkpoints: bad flags, a tiny real run, and damaged or hostile checkpoint files."
import os, pickle, re, subprocess, sys
from pathlib import Path

import pytest
import torch

from miniconv.checkpoint import CheckpointError, load_model, save_model
from miniconv.cnn import simple_cnn

# What the installed console script runs: its return value goes to sys.exit, so a success must return None.
CMD = [sys.executable, '-c', 'import sys; from miniconv.cli import miniconv_train; sys.exit(miniconv_train())']
ENV = {**os.environ, 'MINICONV_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}

def run(*args, timeout=240):
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)

BAD = [
    (['--arch', 'huge'], ["invalid choice: 'huge'"]),
    (['--source', 'web'], ["invalid choice: 'web'"]),
    (['--epochs', 'two'], ["invalid int value: 'two'"]),
    (['--epochs', '0'], ['--epochs', 'positive']),
    (['--bs', '-3'], ['--bs', 'positive']),
    (['--n_train', '0'], ['--n_train', 'positive']),
    (['--lr', '0'], ['--lr', 'positive']),
    (['--lr', 'nan'], ['--lr', 'positive']),
    (['--save', '/no/such/folder/m.pt'], ['--save', '/no/such/folder']),
    (['--frobnicate'], ['unrecognized arguments: --frobnicate']),
]

@pytest.mark.parametrize('args, words', [BAD[0], BAD[3]])
def test_bad_flags_exit_2_with_usage(args, words):
    "End to end, in a fresh process: usage on stderr, exit code 2, no traceback, no work done"
    r = run(*args, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert 'usage:' in r.stderr and 'Traceback' not in r.stderr + r.stdout, r.stderr
    for w in words: assert w in r.stderr, (w, r.stderr)
    assert 'miniconv_train:' not in r.stdout  # stopped before any work

@pytest.mark.parametrize('args, words', BAD)
def test_bad_flags_in_process(monkeypatch, capsys, args, words):
    "Every bad flag, in this process (faster): `miniconv_train` exits with code 2 and the usage, before loading data"
    import miniconv.cli as tr
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', *args])
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: pytest.fail('loaded data despite a bad flag'))
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: miniconv_train'), err
    for w in words: assert w in err, (w, err)

def test_full_source_offline_is_a_clear_error(monkeypatch, capsys):
    import miniconv.cli as tr
    monkeypatch.setenv('MINICONV_OFFLINE', '1')
    monkeypatch.setenv('MINICONV_DATA', '/no/such/dir')
    monkeypatch.setenv('XDG_CACHE_HOME', '/no/such/cache')
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--source', 'full', '--epochs', '1'])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'miniconv_train: error:' in err and 'mnist.pkl.gz' in err and 'MINICONV_OFFLINE' in err, err

def _check_checkpoint(ck, arch, seed):
    model = load_model(ck)
    assert isinstance(model, torch.nn.Module) and not model.training
    x = torch.rand(7, 1, 28, 28)
    with torch.no_grad(): out = model(x)
    assert out.shape == (7, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    saved = torch.load(ck, weights_only=True)
    assert saved['arch'] == arch and saved['meta']['source'] == 'subset' and saved['meta']['seed'] == seed
    # the accuracy the command reported is the loaded model's accuracy on the validation digits
    from miniconv.data import load_mnist
    *_, xv, yv = load_mnist('subset', verbose=False)
    with torch.no_grad(): acc = (model(xv.view(-1, 1, 28, 28)).argmax(1) == yv).float().mean().item()
    assert abs(acc - saved['meta']['accuracy']) < 1e-6

def test_tiny_run_writes_a_checkpoint_load_model_reads(tmp_path):
    "A real 1-epoch run of the command, in a fresh process, on 300 digits"
    ck = tmp_path/'better.pt'
    r = run('--arch', 'better', '--source', 'subset', '--epochs', '1', '--bs', '64', '--n_train', '300', '--seed', '1', '--save', ck)
    assert r.returncode == 0, r.stderr
    assert 'validation accuracy' in r.stdout and '300 train / 1,000 valid' in r.stdout, r.stdout
    _check_checkpoint(ck, 'better', 1)

def test_tiny_simple_run_in_process(tmp_path, monkeypatch, capsys):
    import miniconv.cli as tr
    ck = tmp_path/'simple.pt'
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'simple', '--source', 'subset', '--epochs', '2', '--n_train', '200', '--seed', '3', '--save', str(ck)])
    assert tr.miniconv_train() is None  # the console-script wrapper passes a return value to sys.exit
    out = capsys.readouterr().out
    assert 'saved checkpoint' in out
    _check_checkpoint(ck, 'simple', 3)
    pct = float(re.search(r'validation accuracy ([\d.]+)%', out).group(1))
    assert abs(torch.load(ck, weights_only=True)['meta']['accuracy']*100 - pct) < 0.006

def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such checkpoint'): load_model(tmp_path/'missing.pt')

def test_corrupt_checkpoints(tmp_path):
    good = tmp_path/'good.pt'
    save_model(simple_cnn(), good, 'simple')
    assert load_model(good)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    data = good.read_bytes()
    cases = {'empty.pt': b'', 'text.pt': b'hello, I am not a checkpoint', 'truncated.pt': data[:len(data)//2],
             'flipped.pt': data[:100] + bytes(b ^ 0xff for b in data[100:400]) + data[400:]}
    for name, b in cases.items():
        (tmp_path/name).write_bytes(b)
        with pytest.raises(CheckpointError, match='not a readable miniconv checkpoint'): load_model(tmp_path/name)
    torch.save([1, 2, 3], tmp_path/'list.pt')
    with pytest.raises(CheckpointError, match='not a miniconv checkpoint'): load_model(tmp_path/'list.pt')
    sd = simple_cnn().state_dict()
    torch.save(dict(format='miniconv-checkpoint', version=1, arch='resnet', state_dict=sd, meta={}), tmp_path/'arch.pt')
    with pytest.raises(CheckpointError, match="'resnet'"): load_model(tmp_path/'arch.pt')
    torch.save(dict(format='miniconv-checkpoint', version=1, arch='better', state_dict=sd, meta={}), tmp_path/'mismatch.pt')
    with pytest.raises(CheckpointError, match="don't fit the 'better' model"): load_model(tmp_path/'mismatch.pt')

class _Evil:
    "Unpickling this would create a file: a checkpoint that runs code"
    def __init__(self, fn): self.fn = fn
    def __reduce__(self): return (Path.touch, (Path(self.fn),))

def test_checkpoint_cannot_run_code(tmp_path):
    flag = tmp_path/'pwned'
    evil = tmp_path/'evil.pt'
    torch.save(dict(format='miniconv-checkpoint', version=1, arch='simple', state_dict=simple_cnn().state_dict(), meta={'x': _Evil(flag)}), evil)
    with pytest.raises(CheckpointError, match='not a readable miniconv checkpoint'): load_model(evil)
    assert not flag.exists()
    # and the file really is hostile: a plain unpickle would have run it
    torch.load(evil, weights_only=False)
    assert flag.exists()

def test_load_model_uses_weights_only(monkeypatch, tmp_path):
    seen = {}
    real = torch.load
    def spy(*a, **kw): seen.update(kw); return real(*a, **kw)
    monkeypatch.setattr(torch, 'load', spy)
    save_model(simple_cnn(), tmp_path/'m.pt', 'simple')
    load_model(tmp_path/'m.pt')
    assert seen.get('weights_only') is True

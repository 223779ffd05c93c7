"""The three console commands, run as a user runs them: bad flags exit 2 with the usage and no traceback, before any
work; a tiny real training run writes a checkpoint that `load_model` reads; the spreadsheet command writes its workbook."""
import os, re, subprocess, sys
from pathlib import Path

import pytest
import torch
from openpyxl import load_workbook

from miniconv.checkpoint import load_model
from test_spreadsheet import region

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


# miniconv_sheet
from miniconv.cli import miniconv_sheet

def test_cli_writes_default(tmp_path, monkeypatch, capsys):
    "In-process, as the console script runs it: no flags writes conv-example.xlsx in the current folder"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet'])
    assert miniconv_sheet() is None  # the console-script wrapper passes a return value to sys.exit
    wb = load_workbook(tmp_path/'conv-example.xlsx')
    assert len(region(wb, 'conv2')) == 6 and 'conv-example.xlsx' in capsys.readouterr().out
    ws = wb['conv']
    assert ws.freeze_panes is not None and ws.conditional_formatting and ws.column_dimensions['B'].width > 0

@pytest.mark.parametrize('flags,msg', [(['--stride', '0'], 'stride must be a positive integer, got stride=0'),
                                       (['--padding', '-2'], 'padding must be a non-negative integer, got padding=-2'),
                                       (['--stride', 'two'], "invalid int value: 'two'"),
                                       (['--path', 'x.csv'], 'must end in .xlsx'),
                                       (['--idx', '-1'], 'idx must be a non-negative integer, got idx=-1'),
                                       (['--bogus'], 'unrecognized arguments: --bogus')])
def test_cli_bad_flags(tmp_path, monkeypatch, capsys, flags, msg):
    "In-process: bad flags exit 2 with usage and the reason, before any file is written"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet', *flags])
    with pytest.raises(SystemExit) as e: miniconv_sheet()
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'usage: miniconv_sheet' in err and msg in err, err
    assert list(tmp_path.iterdir()) == []

def test_cli_bad_flag_no_traceback(tmp_path):
    "A real process, started the way a console-script wrapper starts it: exit 2, usage, no traceback, no file"
    # `python -c` would not do: fastcore's call_parse only parses sys.argv when called from a module file
    (tmp_path/'bin').mkdir()
    script = tmp_path/'bin'/'miniconv_sheet'
    script.write_text('import sys\nfrom miniconv.cli import miniconv_sheet\nsys.exit(miniconv_sheet())\n')
    r = subprocess.run([sys.executable, str(script), '--stride', '0'], cwd=tmp_path, env={**os.environ, 'MINICONV_OFFLINE': '1'},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'usage: miniconv_sheet' in r.stderr and 'stride must be' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'conv-example.xlsx').exists()

"""The three console commands, run as a user runs them: bad flags exit 2 with the usage and a one-line reason, no
traceback, before any work; a tiny real training run writes a checkpoint that `load_model` reads; the spreadsheet command
writes its workbook; a closed pipe, a closed stdout and Ctrl-C end the command quietly, leaving any old file whole."""
import os, re, signal, subprocess, sys
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

@pytest.fixture(scope='module')
def subset():
    "The offline subset, loaded once, for the tests that hand it to a stand-in for the training"
    from miniconv.data import load_mnist
    return load_mnist('subset', verbose=False)

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
    (['--lr', 'inf'], ['--lr must be a finite positive number, got --lr=inf']),
    (['--lr=-inf'], ['--lr must be a finite positive number']),
    (['--bs', '100000'], ['--bs must be at most 1024, got --bs=100000']),
    (['--seed', '-1'], ['--seed must be a non-negative integer']),
    (['--save', '/'], ["--save: '/' is a folder, not a file name"]),
    (['--epochs', '0', '--save', '/'], ["--save: '/' is a folder"]),  # the checkpoint path is checked first
    (['--seed', str(2**70)], [f'--seed must be at most {2**64 - 1}, got --seed={2**70}']),  # torch.manual_seed would overflow
    (['--save', 'a'*300 + '.pt'], ['--save: the file name is 303 bytes long, more than the 255 this file system allows']),
    (['--arch', 'huge'], ["invalid choice: 'huge' (choose from 'simple', 'better')"]),
    (['--conv', 'jax'], ["invalid choice: 'jax' (choose from 'torch', 'ours')"]),
    (['--conv', 'ours', '--epochs', '0'], ['--epochs', 'positive']),
]

@pytest.mark.slow
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
    last = err.splitlines()[-1]  # the reason is one line, after the usage
    assert last.startswith('miniconv_train: error: ') and 'Traceback' not in err, err
    for w in words: assert w in last, (w, err)

def test_full_source_offline_is_a_clear_error(monkeypatch, capsys):
    import miniconv.cli as tr
    monkeypatch.setenv('MINICONV_OFFLINE', '1')
    monkeypatch.setenv('MINICONV_DATA', '/no/such/dir')
    monkeypatch.setenv('XDG_CACHE_HOME', '/no/such/cache')
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--source', 'full', '--epochs', '1'])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith('miniconv_train: error:') and '/no/such/dir' in err and 'MINICONV_OFFLINE' in err and 'Traceback' not in err, err

def _check_checkpoint(ck, arch, seed, conv='torch'):
    model = load_model(ck)
    assert isinstance(model, torch.nn.Module) and not model.training
    x = torch.rand(7, 1, 28, 28)
    with torch.no_grad(): out = model(x)
    assert out.shape == (7, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    saved = torch.load(ck, weights_only=True)
    assert saved['arch'] == arch and saved['meta']['source'] == 'subset' and saved['meta']['seed'] == seed and saved['meta']['conv'] == conv
    if conv == 'ours':  # the checkpoint holds weights; the model trained and was measured on our layers
        from miniconv.layers import to_ours
        model = to_ours(model)
    # the accuracy the command reported is the loaded model's accuracy on the validation digits
    from miniconv.data import load_mnist
    *_, xv, yv = load_mnist('subset', verbose=False)
    with torch.no_grad(): acc = (model(xv.view(-1, 1, 28, 28)).argmax(1) == yv).float().mean().item()
    assert abs(acc - saved['meta']['accuracy']) < 1e-6

@pytest.mark.slow
def test_tiny_run_writes_a_checkpoint_load_model_reads(tmp_path):
    "A real 1-epoch run of the command, in a fresh process, on 300 digits"
    ck = tmp_path/'better.pt'
    r = run('--arch', 'better', '--source', 'subset', '--epochs', '1', '--bs', '64', '--n_train', '300', '--seed', '1', '--save', ck)
    assert r.returncode == 0, r.stderr
    assert 'validation accuracy' in r.stdout and '300 train / 1,000 valid' in r.stdout, r.stdout
    _check_checkpoint(ck, 'better', 1)

@pytest.mark.slow
def test_tiny_run_on_our_layers_in_process(tmp_path, monkeypatch, capsys):
    "--conv ours: the same command on our Conv2d; the header says whose layers, and the checkpoint records it"
    import miniconv.cli as tr
    ck = tmp_path/'ours.pt'
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'better', '--conv', 'ours', '--source', 'subset', '--epochs', '1', '--bs', '64',
                                      '--n_train', '200', '--seed', '2', '--save', str(ck)])
    assert tr.miniconv_train() is None
    out = capsys.readouterr().out
    assert 'our layers' in out.splitlines()[0] and 'saved checkpoint' in out, out
    _check_checkpoint(ck, 'better', 2, conv='ours')

def test_conv_flag_picks_the_layers(monkeypatch, capsys, subset):
    "--conv reaches train_on; the default is PyTorch's layers"
    import miniconv.cli as tr
    from miniconv.cnn import simple_cnn
    seen = []
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: subset)
    monkeypatch.setattr(tr, 'train_on', lambda conv, *a, **k: (seen.append(conv), (simple_cnn().eval(), [dict(accuracy=0.5)]))[1])
    for args, conv in [([], 'torch'), (['--conv', 'ours'], 'ours'), (['--conv', 'torch'], 'torch')]:
        monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'simple', '--source', 'subset', *args])
        assert tr.miniconv_train() is None
        assert seen[-1] == conv and ('our layers' if conv == 'ours' else 'PyTorch layers') in capsys.readouterr().out

@pytest.mark.slow
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

@pytest.mark.parametrize('flags,msg', [(['--stride', '0'], '--stride must be a positive integer, got --stride=0'),
                                       (['--padding', '-2'], '--padding must be a non-negative integer, got --padding=-2'),
                                       (['--stride', 'two'], "invalid int value: 'two'"),
                                       (['--path', 'x.csv'], 'must end in .xlsx'),
                                       (['--idx', '-1'], '--idx must be a non-negative integer, got --idx=-1'),
                                       (['--bogus'], 'unrecognized arguments: --bogus'),
                                       (['a'*300 + '.xlsx'], '--path: the file name is 305 bytes long, more than the 255 this file system allows'),
                                       (['a.xlsx', '--path', 'b.xlsx'], "the path is given twice, 'a.xlsx' first and --path 'b.xlsx': give it once"),
                                       (['--path', 'b.xlsx', 'a.xlsx'], "the path is given twice, 'a.xlsx' first and --path 'b.xlsx'"),
                                       ([''], "--path must end in .xlsx, got ''")],
                         ids=['stride-0', 'padding-negative', 'stride-word', 'csv', 'idx-negative', 'unknown-flag', 'long-name', 'two-paths',
                              'two-paths-flag-first', 'empty-first'])
def test_cli_bad_flags(tmp_path, monkeypatch, capsys, flags, msg):
    "In-process: bad flags exit 2 with usage and the reason, before any file is written"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet', *flags])
    with pytest.raises(SystemExit) as e: miniconv_sheet()
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'usage: miniconv_sheet' in err and msg in err.splitlines()[-1], err
    assert list(tmp_path.iterdir()) == []

@pytest.mark.slow
def test_cli_bad_flag_no_traceback(tmp_path):
    "A real process, started the way a console-script wrapper starts it: exit 2, usage, no traceback, no file"
    # `python -c` would not do: fastcore's call_parse only parses sys.argv when called from a module file
    (tmp_path/'bin').mkdir()
    script = tmp_path/'bin'/'miniconv_sheet'
    script.write_text('import sys\nfrom miniconv.cli import miniconv_sheet\nsys.exit(miniconv_sheet())\n')
    r = subprocess.run([sys.executable, str(script), '--stride', '0'], cwd=tmp_path, env={**os.environ, 'MINICONV_OFFLINE': '1'},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'usage: miniconv_sheet' in r.stderr and '--stride must be' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'conv-example.xlsx').exists()


# --save is checked (and ~ expanded) before any work
def test_save_expands_home(tmp_path, monkeypatch, capsys, subset):
    import miniconv.cli as tr
    from miniconv.cnn import simple_cnn
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: subset)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setattr(tr, 'train_on', lambda *a, **k: (simple_cnn().eval(), [dict(accuracy=0.5)]))
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'simple', '--source', 'subset', '--save', '~/m.pt'])
    assert tr.miniconv_train() is None
    assert (tmp_path/'m.pt').is_file() and f"saved checkpoint to {tmp_path/'m.pt'}" in capsys.readouterr().out
    assert load_model(tmp_path/'m.pt') is not None

def test_save_to_an_unwritable_folder(tmp_path, monkeypatch, capsys):
    "A folder we may not write to is refused before any work (root may write anywhere, so there `os.access` plays a user)"
    import miniconv.checks, miniconv.cli as tr
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(miniconv.checks.os, 'access', lambda p, mode: False if Path(p) == ro else real(p, mode))
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--save', str(ro/'m.pt')])
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: pytest.fail('loaded data despite a bad flag'))
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    assert e.value.code == 2 and 'is not writable' in capsys.readouterr().err

# Output to a pipe has no progress-bar frames; a closed pipe is not a traceback
QUICK = ['--arch', 'simple', '--source', 'subset', '--epochs', '4', '--n_train', '500', '--seed', '0']

@pytest.mark.slow
def test_piped_output_has_no_bar_frames():
    r = run(*QUICK, timeout=240)
    assert r.returncode == 0, r.stderr
    assert '\r' not in r.stdout and '█' not in r.stdout, repr(r.stdout[:500])
    lines = r.stdout.splitlines()
    assert lines[1].split() == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time'], lines
    assert [l.split()[0] for l in lines[2:4]] == ['0', '1'] and 'validation accuracy' in lines[-1], lines

@pytest.mark.slow
def test_closed_pipe_is_not_a_traceback():
    "As `miniconv_train ... | head -1`: the reader takes one line and goes away; the command stops quietly"
    # far more epochs than any machine trains before the reader goes, so that a line is always written after it went
    endless = [*QUICK[:4], '--epochs', '10000', *QUICK[6:]]
    p = subprocess.Popen([*CMD, *endless], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    first = p.stdout.readline()
    p.stdout.close()  # what head does after its line
    err = p.stderr.read()
    rc = p.wait(timeout=240)
    assert first.startswith('miniconv_train: simple CNN on subset MNIST'), first
    assert 'Traceback' not in err and 'BrokenPipeError' not in err and 'Exception ignored' not in err, err
    assert rc == 1, (rc, err)

# `Param(...)` values don't show raw in the API docs
@pytest.mark.parametrize('name', ['train_cli', 'bench_cli', 'sheet_cli'])
def test_api_docs_show_no_raw_param(name):
    from nbdev.showdoc import show_doc
    import miniconv.cli as tr
    md = show_doc(getattr(tr, name))._repr_markdown_()
    assert 'Param(' not in md and 'choices=' not in md, md
    assert f'def {name}(' in md

def test_help_lists_the_choices(monkeypatch, capsys):
    import miniconv.cli as tr
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--help'])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    out = capsys.readouterr().out
    assert e.value.code == 0 and '--arch {simple,better}' in out and '--source {auto,full,subset}' in out and '--conv {torch,ours}' in out, out
    assert 'the 5,000-digit subset (4,000 train + 1,000 valid)' in ' '.join(out.split()), out  # what the subset is, as everywhere else

def test_python_callers_get_the_same_checks(capsys):
    "Called from Python, a plain string outside the choices is a usage error too"
    from miniconv.cli import train_cli
    with pytest.raises(SystemExit) as e: train_cli(arch='huge')
    assert e.value.code == 2 and "--arch must be one of ['simple', 'better'], got 'huge'" in capsys.readouterr().err


# miniconv_sheet: the path as the first argument or after --path, bounds checked before MNIST is loaded
def test_sheet_path_as_first_argument(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet', 'digit.xlsx', '--idx', '3'])
    assert miniconv_sheet() is None
    assert (tmp_path/'digit.xlsx').is_file() and not (tmp_path/'conv-example.xlsx').exists()
    assert 'training digit 3' in capsys.readouterr().out
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet', '--path', 'flag.xlsx'])
    assert miniconv_sheet() is None
    assert (tmp_path/'flag.xlsx').is_file()

@pytest.mark.parametrize('flags,msg', [(['--padding', '1000'], '--padding must be at most 2, got --padding=1000'),
                                       (['--padding', '3'], '--padding must be at most 2'),
                                       (['--path', '.'], 'must end in .xlsx'),
                                       (['.'], 'must end in .xlsx'),
                                       (['--path', '/no/such/dir/x.xlsx', '--padding', '1000'], 'does not exist'),
                                       (['~/no/such/dir/x.xlsx'], 'does not exist')])
def test_sheet_bounds_and_path_checked_before_work(tmp_path, monkeypatch, capsys, flags, msg):
    import miniconv.cli as cli
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setattr(cli, 'load_mnist', lambda *a, **k: pytest.fail('loaded data despite a bad flag'))
    monkeypatch.setattr(sys, 'argv', ['miniconv_sheet', *flags])
    with pytest.raises(SystemExit) as e: miniconv_sheet()
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'usage: miniconv_sheet' in err and msg in err, err
    assert list(tmp_path.iterdir()) == []

def test_failed_save_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, subset):
    import miniconv.cli as tr
    from miniconv.cnn import simple_cnn
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: subset)
    def full_disk(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 5248 vs 5144')
    monkeypatch.setattr(tr, 'train_on', lambda *a, **k: (simple_cnn().eval(), [dict(accuracy=0.5)]))
    monkeypatch.setattr(tr, 'save_model', full_disk)
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--source', 'subset', '--save', str(tmp_path/'m.pt')])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith(f"miniconv_train: error: could not write {tmp_path/'m.pt'}") and len(err.splitlines()) == 1, err


# Words for people: one epoch is singular
@pytest.mark.parametrize('n', [1, 2], ids=['one-epoch', 'two-epochs'])
def test_epochs_counted_in_words(monkeypatch, capsys, subset, n):
    import miniconv.cli as tr
    from miniconv.cnn import simple_cnn
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: subset)
    monkeypatch.setattr(tr, 'train_on', lambda *a, **k: (simple_cnn().eval(), [dict(accuracy=0.5)]*n))
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'simple', '--source', 'subset', '--epochs', str(n)])
    assert tr.miniconv_train() is None
    out = capsys.readouterr().out
    assert f"after {n} {'epoch' if n == 1 else 'epochs'} in " in out, out


# A closed stdout (`>&-`): Python sets sys.stdout to None; the command does its work and exits cleanly
def test_closed_stdout_in_process(monkeypatch, capsys):
    "With sys.stdout None, as Python leaves it for `>&-`: --help exits 0, with no AttributeError from a flush"
    import miniconv.cli as tr
    monkeypatch.setattr(sys, 'stdout', None)
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--help'])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    assert e.value.code == 0

@pytest.mark.slow
def test_closed_stdout_trains_and_saves(tmp_path):
    "The real thing, in a shell: `miniconv_train ... >&-` trains, saves, and exits 0 with nothing on stderr"
    ck = tmp_path/'m.pt'
    r = subprocess.run(['bash', '-c', 'exec "$@" >&-', 'bash', *CMD, '--arch', 'simple', '--source', 'subset', '--epochs', '1', '--n_train', '200', '--save', str(ck)],
                       capture_output=True, text=True, env=ENV, timeout=240)
    assert r.returncode == 0 and r.stderr == '', (r.returncode, r.stderr)
    assert load_model(ck) is not None


# Ctrl-C: one line, exit status 130, and the checkpoint that was there before is whole
@pytest.mark.slow
def test_sigint_mid_training_is_one_line_and_keeps_the_old_checkpoint(tmp_path):
    from miniconv.checkpoint import save_model
    from miniconv.cnn import simple_cnn
    ck = tmp_path/'m.pt'
    save_model(simple_cnn(), ck, 'simple', accuracy=0.5)
    before = ck.read_bytes()
    # far more epochs than any machine trains before the signal arrives, however long this process waits for the CPU
    args = ['--arch', 'simple', '--source', 'subset', '--epochs', '10000', '--seed', '0', '--save', ck]
    # Ctrl-C as a terminal delivers it: a command started in the background (`cmd &`, as CI may run us) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt; the command starts as one typed at a prompt does
    dfl = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen([*CMD, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=dfl) as p:
        lines = [p.stdout.readline() for _ in range(3)]  # the header, the column names, the first epoch
        p.send_signal(signal.SIGINT)
        err, rc = p.stderr.read(), p.wait(timeout=120)
    assert lines[2].split()[0] == '0', lines
    assert rc == 130 and err.splitlines() == ['miniconv_train: interrupted; any file it was writing is left as it was'], (rc, err)
    assert ck.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ['m.pt']


# A reader that goes away while the data loader prints its notices: no "error: [Errno 32] Broken pipe"
CHATTY = """
import sys, miniconv.cli as cli
def chatty(*a, **k):
    "A data loader whose notices go on after the reader has gone (flushed, as a long download's would be)"
    for i in range(100_000): print(f"miniconv: notice {i}", flush=True)
cli.load_mnist = chatty
sys.argv = ['miniconv_train', '--source', 'subset']
cli.miniconv_train()
"""

@pytest.mark.slow
def test_closed_pipe_while_loading_is_quiet():
    p = subprocess.Popen([sys.executable, '-c', CHATTY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    first = p.stdout.readline()
    p.stdout.close()  # what `head -1` does after its line
    err, rc = p.stderr.read(), p.wait(timeout=120)
    assert first == 'miniconv: notice 0\n' and rc == 1 and err == '', (first, rc, err)

def test_a_named_pipe_made_during_training_is_left_alone(tmp_path, monkeypatch, capsys, subset):
    "--save passed its check; while the model trained, a named pipe appeared there: one line, exit 1, the pipe untouched"
    import miniconv.cli as tr
    from miniconv.cnn import simple_cnn
    ck = tmp_path/'m.pt'
    def train_then_fifo(*a, **k):
        os.mkfifo(ck)
        return simple_cnn().eval(), [dict(accuracy=0.5)]
    monkeypatch.setattr(tr, 'load_mnist', lambda *a, **k: subset)
    monkeypatch.setattr(tr, 'train_on', train_then_fifo)
    monkeypatch.setattr(sys, 'argv', ['miniconv_train', '--arch', 'simple', '--source', 'subset', '--save', str(ck)])
    with pytest.raises(SystemExit) as e: tr.miniconv_train()
    err = capsys.readouterr().err
    assert e.value.code == 1 and len(err.splitlines()) == 1 and err.startswith(f"miniconv_train: error: could not write {ck} ("), err
    assert err.endswith(f"{str(ck)!r} is a named pipe (FIFO), not a regular file); any file there before is unchanged\n"), err
    assert ck.is_fifo()

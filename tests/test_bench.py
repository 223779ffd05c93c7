"The `miniconv_bench` command: its JSON parses, its rows are consistent (the training headline first), and bad flags exit 2 with a usage message and no traceback"
import json, subprocess, sys
from pathlib import Path
import pytest
from miniconv.cli import miniconv_bench

def bench_cmd():
    "The installed console script if the venv has it, else the same `call_parse` entry point via `python -m`"
    script = Path(sys.executable).parent/'miniconv_bench'
    return [str(script)] if script.exists() else [sys.executable, '-c', 'import sys; from miniconv.cli import miniconv_bench; sys.exit(miniconv_bench())']

def run(*args):
    "Run the command in a fresh process, as a user would"
    return subprocess.run(bench_cmd() + list(args), capture_output=True, text=True, timeout=300)

def run_here(monkeypatch, capsys, *args):
    "Run the command's argument parsing and body in this process (faster: no new torch import): `(exit code, out, err)`"
    monkeypatch.setattr(sys, 'argv', ['miniconv_bench', *args])
    try: code = miniconv_bench() or 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err

@pytest.mark.slow
def test_json_output_parses():
    r = run('--json', '--quick', '--threads', '1')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['settings']['bs'] == 64 and res['settings']['repeats'] == 3 and res['settings']['threads'] == 1
    rows = {(o['case'], o['pass']): o for o in res['rows']}
    assert len([k for k in rows if k[1] in ('forward', 'fwd+bwd')]) == 1 + 2*5 + 2
    total = rows[('simple_cnn, bs=64', 'fwd+bwd')]
    layers = [o for (c, p), o in rows.items() if p == 'fwd+bwd' and c.startswith('conv ')]
    assert len(layers) == 5
    for m in ('conv2d', 'F.conv2d', 'unfold'): assert total[m] == pytest.approx(sum(o[m] for o in layers))
    assert rows[('one digit 28x28', 'forward')]['loop'] > 0 and total['loop'] is None
    # the headline: the training row, with its thread count; the all-gradients row second
    train = rows[('simple_cnn, bs=64', 'train')]
    first = rows[('conv 1->4, 28x28', 'train')]
    for m in ('conv2d', 'F.conv2d'): assert train[m] == pytest.approx(first[m] + sum(o[m] for o in layers[1:]))
    assert res['headline'] == dict(case='simple_cnn, bs=64', **{'pass': 'train'}, ratio=pytest.approx(train['conv2d']/train['F.conv2d']), threads=1)
    assert res['conv2d_train_ratio'] == res['headline']['ratio']
    assert res['conv2d_fwd_bwd_ratio'] == pytest.approx(total['conv2d']/total['F.conv2d'])
    # a training step of each CNN on our layers and on PyTorch's, and the other operations: printed ratios, not asserted
    assert set(res['train_step']) == {'simple', 'better'} and res['train_step_target'] == 1.3
    for s in res['train_step'].values(): assert s['ours_ms'] > 0 and s['torch_ms'] > 0 and s['ratio'] == pytest.approx(s['ours_ms']/s['torch_ms'])
    assert list(res['ops']) == ['max_pool2d 3x3, stride 2', 'depthwise conv2d 3x3', 'conv_transpose2d 4x4, stride 2']
    for op in res['ops'].values():
        assert list(op) == ['forward', 'fwd+bwd']
        for p in op.values(): assert p['ratio'] == pytest.approx(p['ours_ms']/p['torch_ms'])

@pytest.mark.slow
def test_bad_flag_exits_2_without_traceback():
    r = run('--repeats', '2', '--bogus')
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert 'usage:' in r.stderr and 'unrecognized arguments: --bogus' in r.stderr
    assert 'Traceback' not in r.stderr and r.stdout == ''

@pytest.mark.slow
def test_table_output(monkeypatch, capsys):
    "A quick real run: the headline first, then the speed table with the unit of each column, then the training steps and the other operations"
    code, out, err = run_here(monkeypatch, capsys, '--quick', '--threads', '1', '--clock', 'cpu')
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith('conv2d as training runs it') and lines[0].endswith('F.conv2d, 1 thread(s)'), lines[0]   # the headline comes first
    assert lines[1].startswith('conv2d with every gradient') and lines[1].endswith('1 thread(s)'), lines[1]
    assert 'conv2d / F.conv2d' in out and 'simple_cnn, bs=64' in out and 'clock=cpu' in out
    assert 'training step of the CNN on our layers / on nn.Conv2d at bs=64, 1 thread(s), target 1.3x: simple' in out and 'better' in out
    for op in ('max_pool2d', 'depthwise conv2d', 'conv_transpose2d'): assert op in out
    header = next(l for l in lines if 'F.conv2d (ms)' in l).split()
    assert header[:4] == ['loop', '(ms)', 'unfold', '(ms)'] and 'conv2d / F.conv2d (x)' in ' '.join(header), header

@pytest.mark.parametrize('args,msg', [(['--repeats', 'abc'], "invalid int value: 'abc'"),
                                      (['--clock', 'sundial'], "invalid choice: 'sundial'"),
                                      (['--repeats', '0'], 'repeats=0'),
                                      (['--bs', '-3'], 'bs=-3'),
                                      (['--threads', '-1', '--quick'], 'threads=-1')])
def test_bad_values_exit_2(monkeypatch, capsys, args, msg):
    code, out, err = run_here(monkeypatch, capsys, *args)
    assert code == 2, (code, err)
    assert 'usage:' in err and msg in err and out == ''


# Bounds are checked before any timing: a huge --threads count crashed torch
import os

@pytest.mark.slow
def test_huge_thread_count_exits_2_in_a_fresh_process():
    "In a subprocess, so that a regression (a segfault) can't take pytest down"
    r = run('--threads', '100000', '--quick')
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert f'--threads must be at most {os.cpu_count()}, got --threads=100000' in r.stderr and 'Traceback' not in r.stderr

@pytest.mark.parametrize('args,msg', [(['--threads', '100000'], f'threads must be at most {os.cpu_count()}'),
                                      (['--threads', str(os.cpu_count() + 1)], 'threads must be at most'),
                                      (['--bs', '100000'], '--bs must be at most 1024, got --bs=100000'),
                                      (['--bs', '1025', '--quick'], 'bs must be at most 1024')])
def test_bounds_checked_before_timing(monkeypatch, capsys, args, msg):
    import miniconv.cli as cli
    for f in ('speed_table', 'step_times', 'op_speeds'): monkeypatch.setattr(cli, f, lambda *a, **k: pytest.fail('timed despite a bad flag'))
    code, out, err = run_here(monkeypatch, capsys, *args)
    assert code == 2 and 'usage: miniconv_bench' in err and msg in err, (code, err)


# The output's shape, in a blink: the three timers replaced by fixed numbers
def fixed_timings(monkeypatch):
    "Stand-ins for `speed_table`, `step_times` and `op_speeds` in `miniconv.cli`, with round numbers"
    import pandas as pd
    import miniconv.cli as cli
    idx = pd.MultiIndex.from_tuples([('one digit 28x28', 'forward'), ('simple_cnn, bs=64', 'train'), ('simple_cnn, bs=64', 'fwd+bwd')], names=['case', 'pass'])
    df = pd.DataFrame({'loop': [2.0, None, None], 'unfold': [0.1, 3.0, 4.0], 'conv2d': [0.05, 2.0, 3.0], 'F.conv2d': [0.04, 1.6, 2.0]}, index=idx)
    for m in ('loop', 'unfold', 'conv2d'): df[f'{m} / F.conv2d'] = df[m]/df['F.conv2d']
    ops = {'max_pool2d 3x3, stride 2': {'forward': dict(ours_ms=1., torch_ms=.5, ratio=2.), 'fwd+bwd': dict(ours_ms=3., torch_ms=2., ratio=1.5)}}
    monkeypatch.setattr(cli, 'speed_table', lambda *a, **k: df)
    monkeypatch.setattr(cli, 'step_times', lambda *a, **k: {'ours': 0.012, 'torch': 0.010})
    monkeypatch.setattr(cli, 'op_speeds', lambda *a, **k: ops)

def test_table_has_units_and_the_headline_first(monkeypatch, capsys):
    fixed_timings(monkeypatch)
    code, out, err = run_here(monkeypatch, capsys, '--quick', '--threads', '1')
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == 'conv2d as training runs it (no input gradient for layer 1), over the simple_cnn layers at bs=64: 1.25x F.conv2d, 1 thread(s)', lines[0]
    assert lines[1] == 'conv2d with every gradient: 1.50x F.conv2d, 1 thread(s)', lines[1]
    assert lines[3] == 'median milliseconds per call over 3 interleaved repeats, and ratios to F.conv2d:', lines[3]
    assert lines[4].split() == ['loop', '(ms)', 'unfold', '(ms)', 'conv2d', '(ms)', 'F.conv2d', '(ms)', 'loop', '/', 'F.conv2d', '(x)',
                                'unfold', '/', 'F.conv2d', '(x)', 'conv2d', '/', 'F.conv2d', '(x)'], lines[4]
    assert 'target 1.3x: simple 1.20x (12.0 / 10.0 ms), better 1.20x (12.0 / 10.0 ms)' in out
    assert 'max_pool2d 3x3, stride 2 2.00x and 1.50x' in out and lines[-1].startswith('bs=64, repeats=3, clock=wall, threads=1, torch=')

def test_json_keys_stay_plain(monkeypatch, capsys):
    "The JSON keeps the table's own column names (no units in keys), as the notebook documents them"
    fixed_timings(monkeypatch)
    code, out, err = run_here(monkeypatch, capsys, '--quick', '--threads', '1', '--json')
    res = json.loads(out)
    assert code == 0 and res['headline'] == {'case': 'simple_cnn, bs=64', 'pass': 'train', 'ratio': 1.25, 'threads': 1}, res['headline']
    assert set(res['rows'][0]) == {'case', 'pass', 'loop', 'unfold', 'conv2d', 'F.conv2d', 'loop / F.conv2d', 'unfold / F.conv2d', 'conv2d / F.conv2d'}
    assert res['rows'][1]['loop'] is None and res['train_step']['simple'] == {'ours_ms': 12.0, 'torch_ms': 10.0, 'ratio': pytest.approx(1.2)}

@pytest.mark.parametrize('kw, msg', [(dict(bs=0), 'bs must be a positive integer, got bs=0'), (dict(repeats=2.5), 'repeats must be an integer'),
                                     (dict(threads=-1), 'threads must be a non-negative integer'), (dict(clock='sundial'), "clock must be one of ['wall', 'cpu']")],
                         ids=['bs', 'repeats', 'threads', 'clock'])
def test_op_speeds_checks_its_arguments(kw, msg):
    "Called from Python, op_speeds checks what it is given before it times anything"
    from miniconv.cli import op_speeds
    with pytest.raises(ValueError) as e: op_speeds(**kw)
    assert msg in str(e.value), e.value

"The `miniconv_bench` command: its JSON parses, and bad flags exit 2 with a usage message and no traceback"
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

def test_json_output_parses():
    r = run('--json', '--quick', '--threads', '1')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['settings']['bs'] == 64 and res['settings']['repeats'] == 3 and res['settings']['threads'] == 1
    rows = {(o['case'], o['pass']): o for o in res['rows']}
    # the forward and all-gradients rows; other passes (the im2col chapter's training case) may come beside them
    assert len([k for k in rows if k[1] in ('forward', 'fwd+bwd')]) == 1 + 2*5 + 2
    total = rows[('simple_cnn, bs=64', 'fwd+bwd')]
    layers = [o for (c, p), o in rows.items() if p == 'fwd+bwd' and c.startswith('conv ')]
    assert len(layers) == 5
    for m in ('conv2d', 'F.conv2d', 'unfold'): assert total[m] == pytest.approx(sum(o[m] for o in layers))
    assert res['conv2d_fwd_bwd_ratio'] == pytest.approx(total['conv2d'] / total['F.conv2d'])
    assert rows[('one digit 28x28', 'forward')]['loop'] > 0 and total['loop'] is None

def test_bad_flag_exits_2_without_traceback():
    r = run('--repeats', '2', '--bogus')
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert 'usage:' in r.stderr and 'unrecognized arguments: --bogus' in r.stderr
    assert 'Traceback' not in r.stderr and r.stdout == ''

def test_table_output(monkeypatch, capsys):
    code, out, err = run_here(monkeypatch, capsys, '--quick', '--threads', '1', '--clock', 'cpu')
    assert code == 0, err
    assert 'conv2d / F.conv2d' in out and 'simple_cnn, bs=64' in out and 'clock=cpu' in out

@pytest.mark.parametrize('args,msg', [(['--repeats', 'abc'], "invalid int value: 'abc'"),
                                      (['--clock', 'sundial'], "invalid choice: 'sundial'"),
                                      (['--repeats', '0'], 'repeats=0'),
                                      (['--bs', '-3'], 'bs=-3'),
                                      (['--threads', '-1', '--quick'], 'threads=-1')])
def test_bad_values_exit_2(monkeypatch, capsys, args, msg):
    code, out, err = run_here(monkeypatch, capsys, *args)
    assert code == 2, (code, err)
    assert 'usage:' in err and msg in err and out == ''


# Issue 16 §5: bounds checked before any timing; --threads 100000 segfaulted
import os

def test_huge_thread_count_exits_2_in_a_fresh_process():
    "In a subprocess, so that a regression (a segfault) can't take pytest down"
    r = run('--threads', '100000', '--quick')
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert f'threads must be at most {os.cpu_count()}, got threads=100000' in r.stderr and 'Traceback' not in r.stderr

@pytest.mark.parametrize('args,msg', [(['--threads', '100000'], f'threads must be at most {os.cpu_count()}'),
                                      (['--threads', str(os.cpu_count() + 1)], 'threads must be at most'),
                                      (['--bs', '100000'], 'bs must be at most 1024, got bs=100000'),
                                      (['--bs', '1025', '--quick'], 'bs must be at most 1024')])
def test_bounds_checked_before_timing(monkeypatch, capsys, args, msg):
    import miniconv.cli as cli
    monkeypatch.setattr(cli, 'speed_table', lambda *a, **k: pytest.fail('timed despite a bad flag'))
    code, out, err = run_here(monkeypatch, capsys, *args)
    assert code == 2 and 'usage: miniconv_bench' in err and msg in err, (code, err)

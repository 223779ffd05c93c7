"Checkpoints: damaged or hostile checkpoint files are refused with a clear error, and never run code."
import subprocess, sys
from pathlib import Path

import pytest
import torch

from miniconv.checkpoint import CheckpointError, load_model, save_model
from miniconv.cnn import simple_cnn

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


# Issue 16 §4: a failed save loses nothing; what save_model writes, load_model reads
from miniconv.cnn import better_cnn

def _leftovers(folder): return [p.name for p in Path(folder).iterdir() if p.name.endswith('.part')]

@pytest.mark.slow
def test_failed_save_under_a_file_size_limit_keeps_the_old_checkpoint(tmp_path):
    "A real failed write: a process whose file-size limit (RLIMIT_FSIZE) is far below a checkpoint's size"
    ck = tmp_path/'good.pt'
    torch.manual_seed(0)
    save_model(better_cnn(), ck, 'better', accuracy=0.99)
    good = ck.read_bytes()
    assert len(good) > 200_000
    code = f"""
import resource, signal, sys, torch
from miniconv.checkpoint import save_model
from miniconv.cnn import better_cnn
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, a write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))
try: save_model(better_cnn(), {str(ck)!r}, 'better')
except Exception as e: print('failed:', type(e).__name__, e); sys.exit(3)  # torch reports the short write as a RuntimeError
sys.exit(0)
"""
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert ck.read_bytes() == good  # the old checkpoint is whole, not truncated
    assert _leftovers(tmp_path) == []
    assert load_model(ck)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)

def test_save_that_dies_midway_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    ck = tmp_path/'m.pt'
    save_model(simple_cnn(), ck, 'simple')
    good = ck.read_bytes()
    def half_save(obj, f):
        Path(f).write_bytes(good[:len(good)//2])
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(torch, 'save', half_save)
    with pytest.raises(OSError, match='No space'): save_model(simple_cnn(), ck, 'simple')
    assert ck.read_bytes() == good and _leftovers(tmp_path) == []

def test_save_refuses_an_arch_that_does_not_match(tmp_path):
    with pytest.raises(ValueError, match="don't fit arch='better'"): save_model(simple_cnn(), tmp_path/'m.pt', 'better')
    with pytest.raises(ValueError, match="don't fit arch='simple'"): save_model(better_cnn(), tmp_path/'m.pt', 'simple')
    assert list(tmp_path.iterdir()) == []

@pytest.mark.parametrize('value', [torch.tensor(0.5), [0.1, 0.2], {'a': 1}, None, object(), b'bytes'])
def test_save_refuses_meta_load_model_would_refuse(tmp_path, value):
    with pytest.raises(ValueError, match='only numbers and strings'): save_model(simple_cnn(), tmp_path/'m.pt', 'simple', x=value)
    assert list(tmp_path.iterdir()) == []

def test_numpy_numbers_in_meta_are_stored_as_plain_numbers(tmp_path):
    "np.float64 is a number: it is kept, as a float that the safe loader reads"
    import numpy as np
    save_model(simple_cnn(), tmp_path/'m.pt', 'simple', accuracy=np.float64(0.5), epochs=np.int64(3), ok=True, source='subset')
    assert load_model(tmp_path/'m.pt') is not None
    meta = torch.load(tmp_path/'m.pt', weights_only=True)['meta']
    assert meta == {'accuracy': 0.5, 'epochs': 3, 'ok': True, 'source': 'subset'} and type(meta['accuracy']) is float

def test_save_checks_the_path_first(tmp_path):
    with pytest.raises(ValueError, match='is a folder'): save_model(simple_cnn(), tmp_path, 'simple')
    with pytest.raises(ValueError, match='does not exist'): save_model(simple_cnn(), tmp_path/'no'/'m.pt', 'simple')

def test_save_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    save_model(simple_cnn(), '~/m.pt', 'simple')
    assert (tmp_path/'m.pt').is_file() and load_model('~/m.pt') is not None

# Issue 16 §5
@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_unavailable_device_is_not_an_unreadable_file(tmp_path):
    save_model(simple_cnn(), tmp_path/'m.pt', 'simple')
    with pytest.raises(ValueError, match="device='cuda' is not available") as e: load_model(tmp_path/'m.pt', device='cuda')
    assert not isinstance(e.value, CheckpointError), e.value
    with pytest.raises(ValueError, match="device='tpu9'"): load_model(tmp_path/'m.pt', device='tpu9')

@pytest.mark.parametrize('sd', [{0: torch.zeros(1)}, {('0', 'weight'): torch.zeros(1)}, {'0.0.weight': 3.0}])
def test_state_dict_of_non_names_or_non_tensors(tmp_path, sd):
    "A state_dict with a non-string key gave AttributeError from inside torch"
    p = tmp_path/'odd.pt'
    torch.save(dict(format='miniconv-checkpoint', version=1, arch='simple', state_dict=sd, meta={}), p)
    with pytest.raises(CheckpointError, match='must map names to tensors'): load_model(p)

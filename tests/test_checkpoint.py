"""Checkpoints: damaged or hostile checkpoint files are refused with a clear error, and never run code; a changed byte is
caught by the digest; weights are never cast; a save replaces only a regular file, and a failed one loses nothing."""
import os, stat, subprocess, sys
from pathlib import Path

import pytest
import torch
from torch import nn

from miniconv import checkpoint
from miniconv.checkpoint import CheckpointError, load_model, save_model
from miniconv.cnn import simple_cnn

def raw(path, **fields):
    "Write a checkpoint by hand with torch.save: a sound version-2 one of simple_cnn, with `fields` changed; its digest fits its contents"
    ck = dict(format='miniconv-checkpoint', version=2, arch='simple', state_dict=simple_cnn().state_dict(), meta={}) | fields
    if isinstance(ck['state_dict'], dict) and isinstance(ck['arch'], str) and isinstance(ck['meta'], dict):
        try: ck.setdefault('digest', checkpoint._digest(ck['arch'], ck['state_dict'], ck['meta']))
        except Exception: ck.setdefault('digest', '')
    torch.save(ck, path)
    return path

def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such checkpoint'): load_model(tmp_path/'missing.pt')
    with pytest.raises(FileNotFoundError, match='no such checkpoint'): load_model(tmp_path/('a'*300 + '.pt'))  # too long a name to exist

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
    torch.save({'weights': torch.zeros(3)}, tmp_path/'other.pt')
    with pytest.raises(CheckpointError, match='holds a dict, not a miniconv checkpoint'): load_model(tmp_path/'other.pt')
    with pytest.raises(CheckpointError, match="'resnet'"): load_model(raw(tmp_path/'arch.pt', arch='resnet'))
    with pytest.raises(CheckpointError, match="don't fit the 'better' model"): load_model(raw(tmp_path/'mismatch.pt', arch='better'))

class _Evil:
    "Unpickling this would create a file: a checkpoint that runs code"
    def __init__(self, fn): self.fn = fn
    def __reduce__(self): return (Path.touch, (Path(self.fn),))

def test_checkpoint_cannot_run_code(tmp_path):
    flag = tmp_path/'pwned'
    evil = tmp_path/'evil.pt'
    torch.save(dict(format='miniconv-checkpoint', version=2, arch='simple', state_dict=simple_cnn().state_dict(), meta={'x': _Evil(flag)}), evil)
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


# A failed save loses nothing; what save_model writes, load_model reads
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

@pytest.mark.parametrize('value', [torch.tensor(0.5), [0.1, 0.2], {'a': 1}, None, object(), b'bytes'],
                         ids=['tensor', 'list', 'dict', 'none', 'object', 'bytes'])
def test_save_refuses_meta_load_model_would_refuse(tmp_path, value):
    with pytest.raises(ValueError, match='only numbers and strings'): save_model(simple_cnn(), tmp_path/'m.pt', 'simple', x=value)
    assert list(tmp_path.iterdir()) == []

def test_meta_messages_name_the_value_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r'use \.item\(\)'): save_model(simple_cnn(), tmp_path/'m.pt', 'simple', accuracy=torch.tensor(0.5))
    with pytest.raises(ValueError, match=r'meta history=\[0\.1, 0\.2\] is a list'): save_model(simple_cnn(), tmp_path/'m.pt', 'simple', history=[0.1, 0.2])

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

# A device this machine lacks is the caller's mistake, not a damaged file
@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_unavailable_device_is_not_an_unreadable_file(tmp_path):
    save_model(simple_cnn(), tmp_path/'m.pt', 'simple')
    with pytest.raises(ValueError, match="device='cuda' is not available") as e: load_model(tmp_path/'m.pt', device='cuda')
    assert not isinstance(e.value, CheckpointError), e.value
    with pytest.raises(ValueError, match="device='tpu9'"): load_model(tmp_path/'m.pt', device='tpu9')
    with pytest.raises(ValueError, match="device='cuda:99' is not available"): load_model(tmp_path/'m.pt', device='cuda:99')

@pytest.mark.parametrize('sd', [{0: torch.zeros(1)}, {('0', 'weight'): torch.zeros(1)}, {'0.0.weight': 3.0}, {'0.0.weight': torch.zeros(2).to_sparse()}],
                         ids=['int-key', 'tuple-key', 'float-value', 'sparse-value'])
@pytest.mark.filterwarnings('ignore:Validating sparse tensor')
def test_state_dict_of_non_names_or_non_tensors(tmp_path, sd):
    "A state_dict whose keys are not names, or whose values are not plain tensors, is a CheckpointError, not an error from inside torch"
    with pytest.raises(CheckpointError, match='must map names to tensors'): load_model(raw(tmp_path/'odd.pt', state_dict=sd))


# The digest: a changed byte in the weights or the notes is caught, not loaded as a slightly different model
def saved(tmp_path, **meta):
    "A checkpoint of a seeded simple_cnn, with its model and its bytes"
    torch.manual_seed(0)
    m = simple_cnn()
    save_model(m, tmp_path/'m.pt', 'simple', **meta)
    return m, (tmp_path/'m.pt').read_bytes()

def flip(data:bytes, at:int) -> bytes:
    "`data` with the lowest bit of byte `at` flipped"
    b = bytearray(data); b[at] ^= 1
    return bytes(b)

@pytest.mark.parametrize('key', ['0.0.weight', '0.0.bias', '4.weight'])
def test_one_flipped_bit_in_the_weights_is_caught(tmp_path, key):
    m, data = saved(tmp_path)
    at = data.find(m.state_dict()[key].numpy().tobytes())
    assert at > 0
    (tmp_path/'flipped.pt').write_bytes(flip(data, at))
    changed = torch.load(tmp_path/'flipped.pt', weights_only=True)['state_dict'][key]
    assert not torch.equal(changed, m.state_dict()[key])  # torch.load alone takes the damaged weight as it is
    with pytest.raises(CheckpointError, match='is damaged: its contents no longer match the digest saved with them'): load_model(tmp_path/'flipped.pt')

def test_a_changed_note_is_caught(tmp_path):
    import struct
    m, data = saved(tmp_path, accuracy=0.9876)
    at = data.find(struct.pack('>d', 0.9876))  # how pickle stores a float
    (tmp_path/'flipped.pt').write_bytes(flip(data, at + 7))
    assert torch.load(tmp_path/'flipped.pt', weights_only=True)['meta']['accuracy'] != 0.9876
    with pytest.raises(CheckpointError, match='is damaged'): load_model(tmp_path/'flipped.pt')

@pytest.mark.slow
def test_a_flipped_bit_anywhere_is_caught_or_harmless(tmp_path):
    "Every 53rd byte of a checkpoint, flipped in turn: each damaged file is refused, or loads exactly the saved weights (a flip in the zip's own bookkeeping)"
    m, data = saved(tmp_path, accuracy=0.5)
    ref, refused = m.state_dict(), 0
    for at in range(0, len(data), 53):
        (tmp_path/'f.pt').write_bytes(flip(data, at))
        try: sd = load_model(tmp_path/'f.pt').state_dict()
        except CheckpointError: refused += 1; continue
        assert all(torch.equal(sd[k], ref[k]) for k in ref), f"a flip at byte {at} loaded different weights"
    assert refused > 0.8*len(range(0, len(data), 53))

def test_a_checkpoint_without_a_digest_is_refused_with_advice(tmp_path):
    p = raw(tmp_path/'v1.pt', version=1)
    with pytest.raises(CheckpointError, match=r"is a version-1 checkpoint, without the digest that version 2 keeps: load its state_dict"): load_model(p)
    ck = torch.load(p, weights_only=True); del ck['digest']; ck['version'] = 2
    torch.save(ck, p)
    with pytest.raises(CheckpointError, match='has no digest'): load_model(p)


# Weights are never cast: complex, integer and boolean ones are refused when saved, and when loaded
def with_weight(dtype):
    "A simple_cnn whose first kernel holds `dtype` numbers"
    m = simple_cnn()
    conv = m.get_submodule('0.0')
    conv.weight = nn.Parameter(conv.weight.detach().round().to(dtype), requires_grad=dtype.is_floating_point or dtype.is_complex)
    return m

@pytest.mark.parametrize('dtype, kind', [(torch.complex64, 'complex'), (torch.int64, 'integer'), (torch.int8, 'integer'), (torch.bool, 'bool')],
                         ids=['complex64', 'int64', 'int8', 'bool'])
def test_save_refuses_weights_that_would_be_cast(tmp_path, dtype, kind):
    with pytest.raises(ValueError) as e: save_model(with_weight(dtype), tmp_path/'m.pt', 'simple')
    assert f"0.0.weight holds {kind} numbers ({dtype}), where the model's are floating-point (torch.float32)" in str(e.value), e.value
    assert list(tmp_path.iterdir()) == []

@pytest.mark.filterwarnings('ignore:Complex modules')
def test_save_refuses_a_complex_model(tmp_path):
    with pytest.raises(ValueError, match='holds complex numbers'): save_model(simple_cnn().to(torch.complex64), tmp_path/'m.pt', 'simple')

def test_float64_weights_are_floats(tmp_path):
    "A float64 model is a floating-point model: saved, and loaded into the float32 one"
    m = simple_cnn().double()
    save_model(m, tmp_path/'m.pt', 'simple')
    assert torch.allclose(load_model(tmp_path/'m.pt').state_dict()['0.0.weight'].double(), m.state_dict()['0.0.weight'])

@pytest.mark.parametrize('dtype', [torch.complex64, torch.int32, torch.bool], ids=['complex64', 'int32', 'bool'])
def test_load_refuses_weights_that_would_be_cast(tmp_path, dtype):
    "A checkpoint written by hand, its digest right, but a kernel of the wrong kind of number"
    sd = simple_cnn().state_dict()
    sd['1.0.weight'] = sd['1.0.weight'].to(dtype)
    with pytest.raises(CheckpointError, match=rf"don't fit the 'simple' model: 1.0.weight holds \w+ numbers \({dtype}\)"): load_model(raw(tmp_path/'c.pt', state_dict=sd))

def test_an_integer_buffer_stays_an_integer(tmp_path):
    "BatchNorm's num_batches_tracked is an integer in the model itself: the better CNN saves and loads"
    save_model(better_cnn(), tmp_path/'b.pt', 'better')
    assert load_model(tmp_path/'b.pt').state_dict()['0.1.num_batches_tracked'].dtype == torch.int64

@pytest.mark.parametrize('arch', [['simple'], {'simple': 1}, None, 3], ids=['list', 'dict', 'none', 'int'])
def test_an_arch_that_is_not_a_name(tmp_path, arch):
    "arch=['simple'] is a ValueError (saving) or a CheckpointError (loading), not TypeError: unhashable type"
    with pytest.raises(ValueError, match=r"arch must be one of \['simple', 'better'\], got"): save_model(simple_cnn(), tmp_path/'m.pt', arch)
    with pytest.raises(CheckpointError, match=r"is for architecture .*; known ones are \['simple', 'better'\]"): load_model(raw(tmp_path/'a.pt', arch=arch))


# A save replaces only a regular file, or writes a new one
def test_save_leaves_a_named_pipe_alone(tmp_path):
    os.mkfifo(tmp_path/'pipe')
    with pytest.raises(ValueError, match=r"is a named pipe \(FIFO\), not a regular file"): save_model(simple_cnn(), tmp_path/'pipe', 'simple')
    assert stat.S_ISFIFO(os.lstat(tmp_path/'pipe').st_mode)

def test_save_leaves_a_device_node_alone(tmp_path):
    "As root, os.replace would swap a device node (such as /dev/null) for a regular file. A twin of /dev/null made here, never the real one"
    dev = tmp_path/'null'
    try: os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError: pytest.skip('making a device node needs root (CAP_MKNOD)')
    with pytest.raises(ValueError, match=r"is a character device, not a regular file"): save_model(simple_cnn(), dev, 'simple')
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)

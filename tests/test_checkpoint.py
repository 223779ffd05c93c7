"Checkpoints: damaged or hostile checkpoint files are refused with a clear error, and never run code."
import os, pickle, re, subprocess, sys
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

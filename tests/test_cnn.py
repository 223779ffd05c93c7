"""The CNN chapter's training API where a notebook can't show it: defaults only for settings left out, plain lines (no
progress-bar frames) where nothing can redraw a bar, and the table `over_seeds` makes.
The chapter's seed spreads (the recipe's plateau, every seed past 90% with batches of 32) are asserted in its own cells,
which `make test` runs. The error messages for bad settings and empty loaders are checked in the chapter's hidden cells."""
import pytest
import torch
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, TensorDataset

from miniconv.cnn import DEFAULTS, fit, over_seeds, seed_spread, simple_cnn, train

def tiny(n=40, nv=20, seed=0):
    "A few random 'digits' with labels: enough to run `train` in a blink"
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g), torch.rand(nv, 784, generator=g), torch.randint(0, 10, (nv,), generator=g)

def test_train_defaults_only_for_none(one_thread):
    "Left out (None), each setting comes from DEFAULTS; the history has one record per epoch, numbered in order"
    _, hist = train('simple', data=tiny(), bs=8, n_train=8)
    assert [h['epoch'] for h in hist] == list(range(DEFAULTS['simple']['epochs']))
    _, hist = train('simple', data=tiny(), epochs=3, n_train=16)
    assert len(hist) == 3

def test_fit_prints_plain_lines_when_not_a_terminal(capsys, one_thread):
    "Output to a file or pipe gets one line per epoch and no progress-bar frames"
    model = simple_cnn()
    dl = DataLoader(TensorDataset(torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))), batch_size=4)
    fit(2, model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), dl, dl)
    out = capsys.readouterr().out
    assert '\r' not in out and '█' not in out, repr(out)
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].split() == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time'], lines
    assert lines[2].split()[0] == '1' and lines[2].split()[3].endswith('%')
    fit(1, model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), dl, dl, progress='none')
    assert capsys.readouterr().out == ''

def test_over_seeds_table(capsys, one_thread):
    models, runs = over_seeds(lambda seed: train('simple', epochs=2, data=tiny(), seed=seed, progress='none'), seeds=(3, 4))
    assert len(models) == 2 and list(runs.columns[:2]) == ['seed', 'epoch'] and len(runs) == 4
    assert runs.seed.tolist() == [3, 3, 4, 4] and runs.epoch.tolist() == [0, 1, 0, 1]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith('seed 3: accuracy ') and '%' in out[0]
    s = seed_spread(runs)
    last = runs.groupby('seed').accuracy.last()
    assert s == f"{last.mean():.1%} ({last.min():.1%} to {last.max():.1%}, 2 seeds)"


"""The shared argument checks, from outside: pairs and flags read as PyTorch reads them, and the file checks that keep a
save from replacing anything but a regular file (a device node, a named pipe, a socket, a folder) or from failing late on a
name the file system can't hold."""
import os, socket, stat
from pathlib import Path

import numpy as np
import pytest
import torch

from miniconv.checks import as_bool, as_pair, atomic_write, check_out_path

@pytest.mark.parametrize('v, want', [(2, (2, 2)), ((2,), (2, 2)), ([3], (3, 3)), (torch.Size([4]), (4, 4)), ((1, 2), (1, 2)),
                                     ((np.int64(5),), (5, 5))], ids=['int', '1-tuple', '1-list', '1-size', 'pair', 'numpy-1-tuple'])
def test_as_pair_reads_one_number_as_both(v, want):
    "A 1-tuple is one number for both axes, as PyTorch reads `stride=(2,)`"
    assert as_pair(v, 'stride', 1) == want

@pytest.mark.parametrize('v, words', [((), 'stride=()'), ((0,), 'positive integer or a pair of them, got stride=(0,)'),
                                      ((True,), 'stride=(True,)'), ((2.5,), 'stride=(2.5,)')], ids=['empty', 'zero', 'bool', 'float'])
def test_as_pair_refuses(v, words):
    with pytest.raises(ValueError, match=r'^stride must be') as e: as_pair(v, 'stride', 1)
    assert words in str(e.value)

def test_as_pair_bounds_a_1_tuple():
    with pytest.raises(ValueError, match=r'padding must be at most 3, got padding=\(4,\)'): as_pair((4,), 'padding', 0, 3)

def test_as_bool_takes_only_bools():
    assert as_bool(True, 'ceil_mode') is True and as_bool(False, 'ceil_mode') is False

@pytest.mark.parametrize('v', ['yes', 'no', '', 1, 0, 1.0, None, np.bool_(True), torch.tensor(True), [True]],
                         ids=['yes', 'no', 'empty-str', 'one', 'zero', 'float', 'none', 'numpy-bool', 'tensor', 'list'])
def test_as_bool_refuses_with_a_type_error(v):
    "PyTorch raises TypeError for `ceil_mode='yes'`; so do we, naming the value"
    with pytest.raises(TypeError) as e: as_bool(v, 'ceil_mode')
    assert str(e.value) == f"ceil_mode must be True or False, got ceil_mode={v!r}"


# What may be at the target of a save
def fifo(folder):
    p = folder/'pipe'; os.mkfifo(p); return p

def char_device(folder):
    "A character device node like /dev/null (major 1, minor 3), made in `folder`: only root may make one"
    p = folder/'null'
    try: os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError: pytest.skip('making a device node needs root (CAP_MKNOD)')
    return p

def unix_socket(folder):
    p = folder/'sock'
    s = socket.socket(socket.AF_UNIX); s.bind(str(p)); s.close()
    return p

def folder_(folder):
    p = folder/'dir.pt'; p.mkdir(); return p

def link_to_fifo(folder):
    p = folder/'link.pt'; p.symlink_to(fifo(folder)); return p

SPECIAL = {'fifo': (fifo, 'a named pipe (FIFO), not a regular file'), 'char-device': (char_device, 'a character device, not a regular file'),
           'socket': (unix_socket, 'a socket, not a regular file'), 'folder': (folder_, 'a folder, not a file name'),
           'link-to-fifo': (link_to_fifo, 'a named pipe (FIFO), not a regular file')}

def kind(p): return stat.S_IFMT(os.lstat(p).st_mode)

@pytest.mark.parametrize('what', [w for w in SPECIAL if w != 'folder'])  # a folder is among the checks notebook's own examples
def test_check_out_path_refuses_special_files(tmp_path, what):
    make, words = SPECIAL[what]
    p = make(tmp_path)
    with pytest.raises(ValueError) as e: check_out_path(p, '--save')
    assert str(e.value) == f"--save: {str(p)!r} is {words}"

@pytest.mark.parametrize('what', list(SPECIAL))
def test_atomic_write_leaves_special_files_alone(tmp_path, what):
    "Called directly (or after the target changed since it was checked), atomic_write replaces only a regular file"
    p = SPECIAL[what][0](tmp_path)
    before = kind(p)
    with pytest.raises(ValueError, match='atomic_write replaces only a regular file'): atomic_write(p, lambda t: t.write_bytes(b'x'*100))
    assert kind(p) == before and not [q for q in tmp_path.iterdir() if q.name.endswith('.part')]

def test_regular_files_new_names_and_links_to_files_are_fine(tmp_path):
    (tmp_path/'old.pt').write_text('old')
    (tmp_path/'link.pt').symlink_to(tmp_path/'old.pt')
    for name in ('old.pt', 'new.pt', 'link.pt'):
        assert check_out_path(tmp_path/name) == tmp_path/name
        assert atomic_write(tmp_path/name, lambda t: t.write_text('new')).read_text() == 'new'

def test_a_target_that_became_a_fifo_after_the_check(tmp_path):
    "The check at the door passed; by the time of the save a named pipe is there: it is left alone"
    p = check_out_path(tmp_path/'m.pt')
    os.mkfifo(p)
    with pytest.raises(ValueError, match='named pipe'): atomic_write(p, lambda t: t.write_text('x'))
    assert stat.S_ISFIFO(os.stat(p).st_mode)

def test_a_name_too_long_for_the_file_system_is_one_clear_line(tmp_path):
    "A 300-character name: a ValueError that says so, not an OSError from deep inside"
    with pytest.raises(ValueError) as e: check_out_path(tmp_path/('a'*300 + '.xlsx'), '--path', '.xlsx')
    assert str(e.value) == '--path: the file name is 305 bytes long, more than the 255 this file system allows', e.value
    with pytest.raises(ValueError, match=r"^--save: can't use this path: File name too long$"): check_out_path(tmp_path/('d'*300)/'m.pt', '--save')

def test_a_long_name_that_fits_gets_a_temporary_file_that_fits(tmp_path):
    "A 250-character name is legal; the temporary file beside it must not need more than the 255 bytes a name may have"
    p = check_out_path(tmp_path/('b'*247 + '.pt'))
    assert atomic_write(p, lambda t: t.write_text('x')).read_text() == 'x'
    assert [q.name for q in tmp_path.iterdir()] == [p.name]

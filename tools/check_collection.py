"""Two checks that `make test` runs before pytest, because a failure in either stops pytest before a single test:

- **Stable test IDs.** pytest-xdist's workers each collect the suite, and stop the run ("Different tests were collected
  between gw0 and gw1") when any ID differs: a parametrize value holding a time, random bytes or an object's address.
  We collect twice, the second start over a second after the first, with different `PYTHONHASHSEED`s, and compare.
- **The sdist runs its own tests.** The second collection runs in the unpacked sdist, so a file the tests import but
  MANIFEST.in leaves out is an import error there. Building it also shows any packaging warning, which fails the check.

Usage: `python tools/check_collection.py` from the repository root (the `collect-check` make target)."""
import os, re, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What setuptools prints for a badly declared package or licence (the environment's own byte-compile note is not ours)
SCARY = re.compile(r'would be ignored|absent from the `packages`|deprecat|SetuptoolsWarning', re.I)

def build_sdist(out:Path) -> Path:
    "Build the sdist into `out` with the venv's setuptools (no download), failing on any packaging warning"
    r = subprocess.run([sys.executable, '-m', 'build', '--sdist', '--no-isolation', '--outdir', str(out), str(ROOT)],
                       capture_output=True, text=True)
    log = r.stdout + r.stderr
    if r.returncode: sys.exit(f"collect-check: the sdist does not build:\n{log[-3000:]}")
    bad = [l for l in log.splitlines() if SCARY.search(l)]
    if bad: sys.exit("collect-check: building the sdist warns:\n" + '\n'.join(bad[:10]))
    return next(out.glob('*.tar.gz'))

def collect(cwd:Path, seed:int) -> subprocess.Popen:
    "Start `pytest --co -q tests` in `cwd` with PYTHONHASHSEED=`seed`"
    env = dict(os.environ, MINICONV_OFFLINE='1', MPLBACKEND='Agg', PYTHONHASHSEED=str(seed))
    return subprocess.Popen([sys.executable, '-m', 'pytest', '--co', '-q', '-p', 'no:cacheprovider', 'tests'],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def ids(p:subprocess.Popen, where:str) -> list:
    "The test IDs a collection printed, or exit naming where it failed"
    out = p.communicate()[0]
    if p.returncode: sys.exit(f"collect-check: collection failed in {where}:\n{out[-3000:]}")
    return [l for l in out.splitlines() if '::' in l]

def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with tarfile.open(build_sdist(tmp/'dist')) as t: t.extractall(tmp/'src', filter='data')
        sdist = next((tmp/'src').iterdir())
        a = collect(ROOT, 1)
        time.sleep(1.5)
        b = collect(sdist, 2)
        ia, ib = ids(a, 'the repository'), ids(b, f'the unpacked sdist ({sdist.name})')
    if ia != ib:
        diff = sorted(set(ia) ^ set(ib))[:10] or ['(the same IDs in another order)']
        sys.exit("collect-check: test IDs differ between two collections (give such parametrize values readable ids=):\n"
                 + '\n'.join(diff))
    print(f"collect-check: {len(ia)} test IDs, the same in the repository and in the unpacked sdist, "
          f"collected 1.5 s apart with PYTHONHASHSEED 1 and 2; the sdist builds without warnings")

if __name__ == '__main__': main()

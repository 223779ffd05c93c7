"Package set-up for miniconv, read from settings.ini (nbdev 2 style, without pkg_resources)."
import shlex
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

expected = ('version description keywords author author_email license min_python max_python '
            'lib_name lib_path user status audience language').split()
missing = [o for o in expected if o not in cfg]
if missing: raise SystemExit(f"settings.ini is missing: {', '.join(missing)}")

licenses = {'apache2': 'Apache-2.0'}  # settings.ini's name -> the SPDX licence expression setuptools asks for
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
min_python, max_python = cfg['min_python'], cfg['max_python']  # the versions `make test` is run on (README, Makefile)
lo, hi = (int(v.split('.')[1]) for v in (min_python, max_python))
lib = cfg['lib_path']

def reqs(key): return shlex.split(cfg.get(key, ''))
def scripts(): return [o.strip() for o in cfg.get('console_scripts', '').split() if o.strip()]

readme = Path(__file__).parent/'README.md'
setuptools.setup(
    name=cfg['lib_name'],
    license_expression=licenses[cfg['license'].lower()],
    license_files=['LICENSE'],
    classifiers=[f"Development Status :: {statuses[int(cfg['status']) - 1]}",  # status = 3 is '3 - Alpha'
                 f"Intended Audience :: {cfg['audience'].title()}",
                 f"Natural Language :: {cfg['language'].title()}"]
               + [f'Programming Language :: Python :: 3.{v}' for v in range(lo, hi + 1)],
    url=cfg['git_url'],
    # miniconv/assets holds data files only (the subset, the explorers' JS and CSS): a package of data, declared as one
    packages=setuptools.find_packages(include=[lib, f"{lib}.*"]) + [f"{lib}.assets"],
    package_data={f"{lib}.assets": ['*']},
    install_requires=reqs('requirements'),
    extras_require={'dev': reqs('dev_requirements')},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    long_description=readme.read_text(encoding='utf-8') if readme.exists() else cfg['description'],
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': scripts(), 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    version=cfg['version'], description=cfg['description'], keywords=cfg['keywords'],
    author=cfg['author'], author_email=cfg['author_email'])

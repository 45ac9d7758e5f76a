"The project's own contract: notebooks are the source, the README is the index notebook, CI runs the README's test command."
import json, re, shutil, subprocess, sys, tomllib, filecmp
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _readme_commands():
    "The README's first two shell commands (set-up + demo, set-up + tests)."
    return re.findall(r'```(?:bash|sh)\n(.+?)\n```', (ROOT/'README.md').read_text())[:2]

def test_export_in_sync(tmp_path):
    "Running nbdev-export on a copy of the repo changes nothing in ra_inpaint/."
    for p in ('pyproject.toml', 'nbs', 'ra_inpaint'):
        src = ROOT/p
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/p)
    r = subprocess.run(['nbdev-export'], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cmp = filecmp.dircmp(ROOT/'ra_inpaint', tmp_path/'ra_inpaint', ignore=['__pycache__'])
    def diffs(c, pre=''):
        out = [pre + f for f in c.diff_files + c.left_only + c.right_only]
        for name, sub in c.subdirs.items(): out += diffs(sub, pre + name + '/')
        return out
    assert diffs(cmp) == [], f"ra_inpaint/ differs from what nbdev-export makes of nbs/: {diffs(cmp)} (run nbdev-export)"

def test_no_settings_ini():
    assert not (ROOT/'settings.ini').exists(), "nbdev 3 reads [tool.nbdev] in pyproject.toml and refuses a settings.ini"
    cfg = tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['nbdev']
    assert cfg['lib_path'] == 'ra_inpaint' and cfg['nbs_path'] == 'nbs' and set(cfg['tst_flags'].split()) == {'slow', 'cuda'}

def test_notebooks_clean():
    "nbdev-clean was run: no execution counts left in any notebook."
    dirty = [p.name for p in (ROOT/'nbs').glob('*.ipynb') if '"execution_count": ' in p.read_text()
             and re.search(r'"execution_count": [0-9]', p.read_text())]
    assert dirty == [], f"run nbdev-clean on {dirty}"

def _deps(names):
    return sorted({re.split(r'[<>=!~ \[]', n.strip())[0].lower().replace('_', '-') for n in names})

def test_environment_matches_pyproject():
    import yaml
    proj = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']
    extras = proj['optional-dependencies']  # dev names the notebooks extra by the project's own name
    want = [d for d in _deps(proj['dependencies'] + extras['notebooks'] + extras['dev']) if d != 'ra-inpaint']
    env = yaml.safe_load((ROOT/'environment.yml').read_text())
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict) and 'pip' in d)
    got = _deps([p for p in pip if not p.startswith('-e')])
    assert got == want, f"environment.yml and pyproject.toml disagree: only in env {set(got)-set(want)}, only in pyproject {set(want)-set(got)}"

def test_readme_is_index_notebook():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_ci_runs_readme_test_command():
    cmds = _readme_commands()
    assert len(cmds) == 2 and 'ra-inpaint demo' in cmds[0] and 'pytest' in cmds[1]
    ci = (ROOT/'.ci'/'run').read_text()
    assert 'set -euo pipefail' in ci and cmds[1] in ci.splitlines()

def test_notebooks_run():
    "Every chapter runs top to bottom (cells flagged slow/cuda skipped), as nbdev-test runs them."
    r = subprocess.run(['nbdev-test', '--n-workers', '2', '--timing'], cwd=ROOT, capture_output=True, text=True)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]

def test_chapters_open_with_title_and_subtitle():
    "Each chapter: `#| default_exp`, then a markdown cell '# Title' and '> subtitle' (nbdev's module docs)."
    for p in sorted((ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        assert ''.join(cells[0]['source']).startswith('#| default_exp'), p.name
        md = next(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')
        assert re.match(r'# [^#]', md) and '\n> ' in md, f"{p.name}: first markdown cell should be '# Title' + '> subtitle'"

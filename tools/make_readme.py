#!/usr/bin/env python3
"""Render nbs/index.ipynb to README.md (nbdev-readme needs Quarto; this needs nothing).
Markdown cells are copied as they are; code cells become ```python blocks; cells marked `#| hide` are left out."""
import json, sys
from pathlib import Path

def render(nb_path) -> str:
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip('\n')
        if c['cell_type'] == 'markdown': out.append(src)
        elif c['cell_type'] == 'code' and src and not src.lstrip().startswith('#| hide'):
            out.append('```python\n' + src + '\n```')
    return '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook -->\n\n' + '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    root = Path(__file__).resolve().parents[1]
    text = render(root/'nbs'/'index.ipynb')
    if '--check' in sys.argv: sys.exit(0 if (root/'README.md').read_text() == text else 'README.md is out of date: run tools/make_readme.py')
    (root/'README.md').write_text(text)

#!/usr/bin/env python
"""The painter (nbs/13b_painter) in a real browser.

Starts JupyterLab on 127.0.0.1 (a free port, a random token, config/runtime/settings folders of its own under a
temporary folder), opens a small notebook that shows `ra_inpaint.painter.painter` (of this checkout: its root goes first on the kernel's
PYTHONPATH) on the scikit-image coffee photo
(a random-init demo generator by default, `--generator shipped` for the shipped weights), runs it, and in headless
Chromium (Debian's /usr/bin/chromium driven through /usr/bin/chromedriver by Selenium, never a downloaded browser):
draws a stroke with real mouse events, clicks Fill, waits for the fill, saves a screenshot of the widget, switches
to the region maps and back, clicks Save, and checks that the saved mask (white = hole) has its hole where the
stroke was drawn, in image coordinates (the photo is shown scaled). JupyterLab, its kernel and the browser are shut
down whatever happens; the whole check is bounded by `--timeout` seconds.

Exit status 0: passed; 1: a check failed (the reason is printed); 2: this machine cannot run it (see `missing`).
The last line printed is a JSON summary.

    apt-get install -y chromium chromium-driver
    python tools/browser_check.py --screenshot docs/painter.png
"""
from __future__ import annotations
import argparse, importlib.util, io, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
NB_NAME = 'painter_check.ipynb'
STROKE = [(90, 110), (180, 150), (270, 170), (360, 150)]  # display (canvas) pixels; the canvas is 512x341
BRUSH = 20                                                 # the painter's default brush, display pixels


def missing() -> str | None:
    "Why this machine cannot run the check, or None when it can."
    for p, pkg in ((CHROMIUM, 'chromium'), (DRIVER, 'chromium-driver')):
        if not os.access(p, os.X_OK): return f"{p} not found (apt-get install -y {pkg})"
    for mod in ('selenium', 'ipycanvas', 'jupyterlab', 'ipykernel'):
        if importlib.util.find_spec(mod) is None: return f"python package {mod} is not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def write_notebook(work: Path, image: Path, out: Path, generator: str) -> Path:
    gen = ("G = None  # the shipped scene model" if generator == 'shipped' else
           "torch.manual_seed(0)\nG = InpaintGenerator(preset('demo', size=32, base_ch=8, disc_ch=8))  # random init")
    src = ("import torch\ntorch.set_num_threads(1)\nfrom ra_inpaint.core import preset\n"
           "from ra_inpaint.generator import InpaintGenerator\nfrom ra_inpaint.painter import painter\n"
           f"{gen}\np = painter(G, {str(image)!r}, out={str(out)!r})\np")
    nb = dict(nbformat=4, nbformat_minor=5, cells=[dict(cell_type='code', id='painter', metadata={}, source=src,
                                                        outputs=[], execution_count=None)],
              metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')))
    p = work/'root'/NB_NAME
    p.write_text(json.dumps(nb))
    return p


def start_lab(work: Path, port: int, token: str) -> subprocess.Popen:
    "JupyterLab on 127.0.0.1:`port`, its folders under `work`, announcements and update checks off."
    pypath = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p])  # this checkout's ra_inpaint
    env = dict(os.environ, PYTHONPATH=pypath, JUPYTER_CONFIG_DIR=str(work/'cfg'), JUPYTER_RUNTIME_DIR=str(work/'rt'),
               IPYTHONDIR=str(work/'ipy'), JUPYTERLAB_SETTINGS_DIR=str(work/'settings'),
               JUPYTER_DATA_DIR=str(work/'data'), JUPYTERLAB_WORKSPACES_DIR=str(work/'ws'), MPLBACKEND='Agg',
               OMP_NUM_THREADS='1')
    note = work/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(json.dumps(dict(fetchNews='false', checkForUpdates=False)))
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--port-retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work/"root"}', '--ServerApp.allow_remote_access=False',
           '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.extension_manager=readonly',
           '--ServerApp.terminals_enabled=False'] + (['--allow-root'] if os.geteuid() == 0 else [])
    log = open(work/'lab.log', 'wb')
    return subprocess.Popen(cmd, cwd=work/'root', env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_lab(proc, url: str, deadline: float):
    while time.monotonic() < deadline:
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200: return
        except OSError: pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url.split('?')[0]} in time")


def stop(proc, grace: float = 15):
    "SIGTERM (JupyterLab then shuts its kernels down), SIGKILL after `grace` seconds."
    if proc is None or proc.poll() is not None: return
    proc.send_signal(signal.SIGTERM)
    try: proc.wait(grace)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait(5)


def browser(work: Path, timeout: float):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1200,1300',
              '--no-first-run', '--disable-extensions', '--disable-background-networking', '--disable-component-update',
              '--disable-sync', '--disable-default-apps', f'--user-data-dir={work/"chrome"}'):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER, log_output=str(work/'driver.log')), options=opts)
    drv.set_page_load_timeout(timeout); drv.set_script_timeout(timeout)
    return drv


def small_png(png: bytes, limit: int = 300_000) -> bytes:
    "The screenshot as a PNG under `limit` bytes: 256 colours, then smaller if need be."
    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert('RGB')
    while True:
        buf = io.BytesIO(); im.quantize(256).save(buf, format='PNG', optimize=True)
        if buf.tell() < limit or im.width < 200: return buf.getvalue()
        im = im.resize((int(im.width * 0.85), int(im.height * 0.85)), Image.LANCZOS)


def check(drv, base: str, token: str, out: Path, shot: Path | None, shot_regions: Path | None, wait: float) -> dict:
    "Drive the painter; raise AssertionError / TimeoutException on any failure."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait
    W = lambda t=wait: WebDriverWait(drv, t, poll_frequency=0.25)
    t0 = time.monotonic(); times = {}
    def step(what): print(f"[{time.monotonic() - t0:6.1f} s] {what}", file=sys.stderr, flush=True)
    step('open JupyterLab'); drv.get(f"{base}/lab/tree/{NB_NAME}?reset&token={token}")
    W().until(lambda d: d.execute_script(
        "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        f"return !!(w && w.context && w.context.path === {NB_NAME!r} && w.sessionContext);"))
    step('run the notebook'); r = drv.execute_async_script(
        "const done = arguments[arguments.length - 1], app = window.jupyterapp, w = app.shell.currentWidget;"
        "w.sessionContext.ready.then(() => app.commands.execute('notebook:run-all-cells'))"
        ".then(() => done('ok'), e => done('error: ' + e));")
    assert r == 'ok', f"running the notebook failed: {r}"
    status = lambda: drv.execute_script("const e = document.querySelector('.ra-painter .ra-painter-status');"
                                        "return e ? e.textContent : null;") or ''
    def widget_or_error(d):  # an error in the cell (e.g. ra_inpaint without the painter) ends the wait at once
        err = d.execute_script("const e = document.querySelector("
                               "'.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]');"
                               "return e ? e.textContent : null;")
        if err and ('Traceback' in err or 'Error' in err): raise AssertionError(f"the notebook failed:\n{err[-1500:]}")
        return 'stroke' in status()
    step('wait for the widget'); W().until(widget_or_error)
    times['lab_and_widget_s'] = round(time.monotonic() - t0, 1)
    # ipycanvas composites the MultiCanvas layers into one <canvas>; the photo is there once the view drew it
    top = drv.find_element(By.CSS_SELECTOR, '.ra-painter canvas')
    W().until(lambda d: d.execute_script(
        "const c = arguments[0], x = c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data;"
        "return x[3] > 0;", top))
    step('draw a stroke')
    cw, ch, rw, rh = drv.execute_script("const c = arguments[0], r = c.getBoundingClientRect();"
                                        "return [c.width, c.height, r.width, r.height];", top)
    # a stroke with real mouse events: press, drag through the points, release (offsets from the centre, CSS px)
    css = [(x * rw / cw - rw / 2, y * rh / ch - rh / 2) for x, y in STROKE]
    a = ActionChains(drv, duration=50).move_to_element_with_offset(top, int(css[0][0]), int(css[0][1])).click_and_hold()
    for (x0, y0), (x1, y1) in zip(css, css[1:]):
        for k in range(1, 6):  # several moves per segment, as a hand would make
            a = a.move_to_element_with_offset(top, int(x0 + (x1 - x0) * k / 5), int(y0 + (y1 - y0) * k / 5))
    a.release().perform()
    W().until(lambda d: status().startswith('1 stroke,'))
    hole = float(status().split('hole ')[1].split('%')[0])
    assert hole > 0.5, f"the stroke made a hole of {hole}% only: {status()}"
    button = lambda text: drv.find_element(By.XPATH, f"//div[contains(@class,'ra-painter')]//button[normalize-space()='{text}']")
    img_src = lambda: drv.execute_script("const i = document.querySelector('.ra-painter img'); return i ? i.src : '';")
    loaded = lambda d: d.execute_script("const i = document.querySelector('.ra-painter img'); return i.complete && i.naturalWidth > 0;")
    # the painter sends the figure before the status line, so a new status means the figure below it is new too
    before = img_src(); t1 = time.monotonic()
    step('Fill'); button('Fill').click()
    W().until(lambda d: 'filled in' in status() or status().startswith('fill:'))
    assert 'filled in' in status(), f"Fill failed: {status()}"
    assert img_src() != before, "the figure did not change with the fill"
    W().until(loaded)
    times['fill_s'] = round(time.monotonic() - t1, 1)
    panel = drv.find_element(By.CSS_SELECTOR, '.ra-painter')
    drv.execute_script("arguments[0].scrollIntoView({block: 'start'});", panel)
    if shot: shot.parent.mkdir(parents=True, exist_ok=True); shot.write_bytes(small_png(panel.screenshot_as_png))
    fill_src = img_src()
    step('regions'); button('regions').click()
    W().until(lambda d: img_src() not in (fill_src, '') and loaded(d))
    if shot_regions: shot_regions.write_bytes(small_png(panel.screenshot_as_png))
    regions_src = img_src()
    button('fill').click()
    W().until(lambda d: img_src() not in (regions_src, ''))  # the fill figure again
    step('Save'); button('Save').click()
    W().until(lambda d: status().startswith('saved') or 'save:' in status())
    assert status().startswith('saved'), f"Save failed: {status()}"
    # the saved mask's hole lies where the stroke went, in image coordinates
    import numpy as np
    from PIL import Image
    m = np.asarray(Image.open(out/'coffee_mask.png').convert('L')) >= 128
    res = Image.open(out/'coffee_filled.png')
    assert res.size == (m.shape[1], m.shape[0]) == (600, 400), (res.size, m.shape)
    ys, xs = np.nonzero(m)
    k = m.shape[1] / cw  # image px per display px
    xs_d, ys_d = [p[0] for p in STROKE], [p[1] for p in STROKE]
    want = [min(xs_d) - BRUSH / 2, min(ys_d) - BRUSH / 2, max(xs_d) + BRUSH / 2, max(ys_d) + BRUSH / 2]
    got = [xs.min() / k, ys.min() / k, (xs.max() + 1) / k, (ys.max() + 1) / k]
    err = max(abs(g - w) for g, w in zip(got, want))
    assert err <= 3, f"hole bounding box {got} (display px) is not the stroke's {want}"
    return dict(hole_percent=hole, hole_bbox_display=[round(v, 1) for v in got], stroke_bbox_display=want,
                bbox_error_display_px=round(float(err), 2), **times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--screenshot', type=Path, help='PNG of the widget after Fill (< 300 KB)')
    ap.add_argument('--regions-screenshot', type=Path, help='PNG of the widget showing the region maps')
    ap.add_argument('--generator', choices=['random', 'shipped'], default='random')
    ap.add_argument('--timeout', type=float, default=240, help='seconds for the whole check, shutdown included')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder (logs) and print its path')
    args = ap.parse_args(argv)
    why = missing()
    if why: print(json.dumps(dict(ok=False, skipped=why))); return 2
    t0 = time.monotonic()
    deadline = t0 + args.timeout - 25  # leave time to shut everything down
    def _alarm(*_): raise TimeoutError(f"browser check ran past {args.timeout:.0f} s")
    signal.signal(signal.SIGALRM, _alarm); signal.alarm(int(args.timeout - 20))
    import skimage
    image = Path(skimage.__file__).parent/'data'/'coffee.png'
    work = Path(tempfile.mkdtemp(prefix='ra_painter_browser_'))
    (work/'root').mkdir(); out = work/'saved'
    token, port = secrets.token_hex(16), free_port()
    base = f"http://127.0.0.1:{port}"
    lab = drv = None; summary = dict(ok=False); rc = 1
    try:
        write_notebook(work, image, out, args.generator)
        lab = start_lab(work, port, token)
        wait_lab(lab, f"{base}/api/status?token={token}", deadline)
        summary['lab_start_s'] = round(time.monotonic() - t0, 1)
        drv = browser(work, max(5, deadline - time.monotonic()))
        summary.update(check(drv, base, token, out, args.screenshot, args.regions_screenshot,
                             max(5, deadline - time.monotonic())))
        summary['ok'] = True; rc = 0
    except Exception as e:
        summary['error'] = f"{type(e).__name__}: {e}".strip()[:2000]
        if drv is not None:
            shot = (args.screenshot or work/'x.png').with_name('browser_check_failure.png')
            try: drv.save_screenshot(str(shot)); summary['failure_screenshot'] = str(shot)
            except Exception as e2: print(f"no failure screenshot: {e2}", file=sys.stderr)
        log = work/'lab.log'
        if log.exists(): print('--- JupyterLab log (tail) ---\n' + log.read_text(errors='replace')[-4000:], file=sys.stderr)
    finally:
        signal.alarm(0)
        if drv is not None:
            try: drv.quit()
            except Exception as e: print(f"closing the browser: {e}", file=sys.stderr)
        stop(lab)
        summary['seconds'] = round(time.monotonic() - t0, 1)
        if args.screenshot and args.screenshot.exists(): summary['screenshot'] = str(args.screenshot)
        if args.keep: summary['work'] = str(work)
        else: shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))
    return rc


if __name__ == '__main__':
    sys.exit(main())

"""Headless Chromium for the browser tests, driven over the Chrome DevTools protocol (websocket-client): one launcher
and one protocol client, shared by test_browser.py (the docs site) and test_explorer.py (the convolution explorer)."""
import base64, contextlib, functools, http.server, json, os, shutil, socket, subprocess, tempfile, threading, time
import urllib.error, urllib.request
from pathlib import Path

import websocket  # websocket-client

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run',
         # a test never reaches the network: a name other than 127.0.0.1 fails at once (the requests are still recorded)
         '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']

class CDP:
    "A Chrome DevTools protocol session on one page target: send a command, get its result"
    def __init__(self, ws_url, timeout=60):
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True, enable_multithread=True)
        self.n, self.events = 0, []

    def __call__(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({'id': self.n, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == self.n:
                if 'error' in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get('result', {})
            self.events.append(msg)

    def js(self, expr): # A JavaScript expression; a promise is awaited
        "The value of `expr` in the page"
        r = self('Runtime.evaluate', expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f"{expr[:80]}: {r['exceptionDetails']}")
        return r['result'].get('value')

    def wait(self, expr, timeout=20): # A JavaScript condition
        "Poll until `expr` is truthy; return its value"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = self.js(expr)
            if v: return v
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout}s for {expr}")

    def goto(self, url): # A page address
        "Load `url` and wait until the page, its pictures and its fonts are ready"
        self.events.clear()
        self('Page.navigate', url=url)
        self.wait(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")
        self.js("Promise.all([document.fonts.ready, ...Array.from(document.images).map(i => i.decode().catch(() => 0))])")

    def screenshot(self, path, full=True, max_h=16000): # Where to save it (.png or .jpg); whole page or viewport; cap
        "Save a picture of the page (Chromium draws at most 16384 px high)"
        jpg = Path(path).suffix == '.jpg'
        params = dict(format='jpeg' if jpg else 'png', captureBeyondViewport=full, **({'quality': 75} if jpg else {}))
        if full:
            m = self('Page.getLayoutMetrics')['cssContentSize']
            params['clip'] = dict(x=0, y=0, width=m['width'], height=min(m['height'], max_h), scale=1)
        Path(path).write_bytes(base64.b64decode(self('Page.captureScreenshot', **params)['data']))

    @contextlib.contextmanager
    def viewport(self, width, height, scale=1, mobile=True): # CSS pixels; device pixel ratio; a phone
        "Emulate a `width` x `height` screen inside the block; back to the 1280 x 900 desktop after"
        self('Emulation.setDeviceMetricsOverride', width=width, height=height, deviceScaleFactor=scale, mobile=mobile)
        try: yield self
        finally: self('Emulation.setDeviceMetricsOverride', width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def close(self): self.ws.close()

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@contextlib.contextmanager
def chromium(width=1280, height=900): # The viewport, in CSS pixels
    "Headless Chromium with a fresh profile; yields a `CDP` session on its page (Page, Runtime and Network enabled)"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)"
    prof = tempfile.mkdtemp(prefix='miniconv_chromium_')
    port = free_port()
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f'--user-data-dir={prof}', f'--remote-debugging-port={port}',
                             '--remote-debugging-address=127.0.0.1', f'--window-size={width},{height}', 'about:blank'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end, targets = time.monotonic() + 30, []
        while not targets:
            if proc.poll() is not None: raise RuntimeError(f"chromium exited with {proc.returncode}")
            if time.monotonic() > end: raise TimeoutError("chromium did not open its DevTools port")
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=2) as r:
                    targets = [t for t in json.load(r) if t['type'] == 'page']
            except (urllib.error.URLError, ConnectionError, OSError): time.sleep(0.2)
        cdp = CDP(targets[0]['webSocketDebuggerUrl'])
        cdp('Page.enable'); cdp('Runtime.enable'); cdp('Network.enable')
        cdp('Emulation.setDeviceMetricsOverride', width=width, height=height, deviceScaleFactor=1, mobile=False)
        yield cdp
        cdp.close()
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        shutil.rmtree(prof, ignore_errors=True)

@contextlib.contextmanager
def serve(folder): # The folder to serve
    "Serve `folder` on 127.0.0.1 at a free port; yields the base address, ending in '/'"
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/'
    finally: srv.shutdown(); srv.server_close()

@contextlib.contextmanager
def served_page(browser, folder, title, body, body_style='font-family: sans-serif'): # A `CDP`; an empty folder; the <title>; <main>'s HTML; <body>'s style
    "A phone-ready page holding `body`, written to `folder`, served from 127.0.0.1 and loaded in `browser`; yields the base address"
    (Path(folder)/'index.html').write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>'
        f'<body style="{body_style}"><main style="max-width: 46rem; margin: 0 auto; padding: 0 1rem">{body}</main></body></html>',
        encoding='utf-8')
    with serve(folder) as base:
        browser.goto(base + 'index.html')
        yield base

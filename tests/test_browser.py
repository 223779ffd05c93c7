"""The docs site in a real browser: headless Chromium, driven over the Chrome DevTools protocol (websocket-client),
loads every page from a local server and checks titles, the sidebar, previous/next links, pictures and their alt
text, maths, readable outputs, tables and link colours, internal links and search, and that no request leaves
127.0.0.1. Screenshots go to the git-ignored screenshots/ folder: of the viewport always, of every whole page (two thirds
of this file's time) only with `MINICONV_SHOTS=1` in the environment."""
import functools, os, re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

from cdp import serve
from test_docs import ROOT, built_site, nb_title, notebooks, page_of, solutions

pytestmark = pytest.mark.slow  # the site build and Chromium: `make test` runs it, `make check` does not

SHOTS = ROOT/'screenshots'
WHOLE_PAGES = os.environ.get('MINICONV_SHOTS') == '1'  # a picture of every whole page, for a person to look at
SEARCH_TERM = 'conv2d'

@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "The built site (`test_docs.py`'s, one build per run), served on 127.0.0.1 at a free port"
    site = built_site(tmp_path_factory)[0]/'_docs'
    with serve(site) as base: yield base, site

# What each page shows, read once per page in the browser: the tests below check it.
PAGE_JS = """(() => {
  const rgba = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
  const over = (f, b) => [0, 1, 2].map(i => f[i] * f[3] + b[i] * (1 - f[3]));
  const lum = c => { const l = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const bg = e => { let c = [255, 255, 255, 1], layers = [];   // what is behind `e`: its own and its ancestors' backgrounds
                    for (; e; e = e.parentElement) { const b = rgba(getComputedStyle(e).backgroundColor); if (b[3] > 0) layers.push(b); if (b[3] >= 1) break; }
                    for (const b of layers.reverse()) c = [...over(b, c), 1];
                    return c; };
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
  const nav = document.querySelector('nav.page-navigation');
  const nl = side => { const a = nav && nav.querySelector(`.nav-page-${side} a[href]`); return a ? a.href : null; };
  return {
    title: document.title,
    h1: (document.querySelector('h1') || {}).textContent || '',
    sidebar: Array.from(document.querySelectorAll('#quarto-sidebar a[href]')).map(a => a.href),
    sections: Array.from(document.querySelectorAll('#quarto-sidebar .sidebar-item-section')).map(s => ({
      title: ((s.querySelector('.menu-text') || {}).textContent || '').trim(),
      links: Array.from(s.querySelectorAll('a[href]')).map(a => a.href)})),
    imgs: Array.from(document.images).map(i => ({src: i.src.slice(0, 60), complete: i.complete, w: i.naturalWidth,
      alt: i.getAttribute('alt'), shown: i.getBoundingClientRect().width, attrW: i.getAttribute('width'),
      room: i.parentElement.getBoundingClientRect().width})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    rawMath: Array.from(document.querySelectorAll('span.math')).filter(s => !s.querySelector('math'))
      .map(s => s.textContent.slice(0, 80)),
    prev: nl('previous'), next: nl('next'), hasNav: !!nav,
    icon: (document.querySelector('link[rel~=icon]') || {}).href || null,
    fontVar: getComputedStyle(document.documentElement).getPropertyValue('--bs-body-font-family').trim(),
    contrast: Array.from(document.querySelectorAll('a[href]')).filter(a => a.textContent.trim() && visible(a)).map(a => {
      const t = a.querySelector('code') || a;  // the element whose colour the text has
      const f = rgba(getComputedStyle(t).color), b = bg(t), c = [...over(f, b), 1];
      const [hi, lo] = [lum(c), lum(b)].sort((x, y) => y - x);
      return {text: a.textContent.trim().slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05), color: getComputedStyle(t).color};
    }),
    wideOutputs: Array.from(document.querySelectorAll('.cell-output pre')).filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => p.textContent.trim().slice(0, 80)),
    tables: Array.from(document.querySelectorAll('main table')).map(t => {
      const box = t.closest('.mc-table');
      return {head: t.textContent.trim().slice(0, 60), width: t.getBoundingClientRect().width, output: !!t.closest('.cell-output-display'),
        room: box ? box.clientWidth : 0, scrolls: !!box && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX),
        broken: brokenWords(t),
        align: Array.from(t.querySelectorAll('th, td')).map(c => getComputedStyle(c).textAlign).filter(a => !['left', 'start'].includes(a))};
    }),
    widgets: Array.from(document.querySelectorAll('figure.mc-widget')).map(f => ({cls: f.className,
      mounted: !!(f.playground || f.liveCnn || f.picker), width: f.getBoundingClientRect().width,
      room: f.parentElement.getBoundingClientRect().width}))
  };
})()"""

# The words of `root`'s text that the browser broke across two lines ("forwa/rd", "5.5/44"); a hyphen before a letter
# may end a line ("blow-/up", "1-/D"), as it does in any text
BROKEN_JS = """const brokenWords = root => {
  const out = [], walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());) {
    const re = /(?:[^\\s-]|-(?![A-Za-z])|(?<![A-Za-z0-9])-)+-?/g;
    for (let m; (m = re.exec(n.textContent));) {
      const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
      if (new Set(Array.from(r.getClientRects(), x => Math.round(x.top))).size > 1) out.push(m[0]);
    }
  }
  return out;
};"""
PAGE_JS = PAGE_JS.replace('(() => {', '(() => {' + BROKEN_JS, 1)

@pytest.fixture(scope='module')
def pages(server, browser):
    "Load every page once; return {page: what PAGE_JS read, the requests it made}; with `WHOLE_PAGES`, save a screenshot of each"
    base, _ = server
    SHOTS.mkdir(exist_ok=True)
    res = {}
    for nb in notebooks():
        p = page_of(nb)
        browser.goto(base + p)
        info = browser.js(PAGE_JS)
        if WHOLE_PAGES:  # JPEG is twice as fast to take as PNG
            browser.screenshot(SHOTS/(Path(p).with_suffix('').as_posix().replace('/', '_') + '.jpg'))
        browser.js('document.fonts.ready.then(() => 0)')  # collects the events of what the page (or the screenshot) made it load
        ev = browser.events
        info['exceptions'] = [e['params']['exceptionDetails'].get('text') for e in ev if e.get('method') == 'Runtime.exceptionThrown']
        info['requests'] = [e['params']['request']['url'] for e in ev if e.get('method') == 'Network.requestWillBeSent']
        info['failed'] = [e['params'].get('errorText') for e in ev if e.get('method') == 'Network.loadingFailed']
        res[p] = info
    return res

@pytest.mark.parametrize('nb', notebooks())
def test_title(pages, nb):
    info = pages[page_of(nb)]
    assert info['title'].startswith(nb_title(nb)), (info['title'], nb_title(nb))

@pytest.mark.parametrize('nb', notebooks())
def test_sidebar_lists_every_chapter(pages, server, nb):
    base, _ = server
    listed = {urlsplit(h).path.lstrip('/') for h in pages[page_of(nb)]['sidebar'] if h.startswith(base)}
    want = {page_of(n) for n in notebooks()}
    assert want <= listed, f"{page_of(nb)}: the sidebar misses {sorted(want - listed)}"

@pytest.mark.parametrize('nb', notebooks())
def test_no_broken_images(pages, nb):
    broken = [i for i in pages[page_of(nb)]['imgs'] if not (i['complete'] and i['w'] > 0)]
    assert not broken, f"{page_of(nb)}: broken images {broken}"

@pytest.mark.parametrize('nb', notebooks())
def test_no_script_errors(pages, nb):
    assert not pages[page_of(nb)]['exceptions'], pages[page_of(nb)]['exceptions']

@pytest.mark.parametrize('nb', notebooks())
def test_offline(pages, server, nb):
    "The page loads nothing from another host (fonts, scripts, stylesheets), and nothing it loads fails; data: URIs are fine"
    base, _ = server
    info = pages[page_of(nb)]
    assert info['requests'], "no request was recorded: is Network.enable on?"
    remote = sorted({u[:120] for u in info['requests'] if not (u.startswith(base) or u.startswith('data:'))})
    assert not remote, f"{page_of(nb)} loads from the network: {remote}"
    assert not info['failed'], f"{page_of(nb)}: failed loads {info['failed']}"

@pytest.mark.parametrize('nb', notebooks())
def test_theme_and_icon(pages, server, nb):
    "The theme's stylesheet still applies once its remote font import is gone, and the page has the site's favicon"
    base, site = server
    info = pages[page_of(nb)]
    assert info['fontVar'], "the theme's CSS variables are missing: the theme stylesheet did not parse"
    assert info['icon'] and info['icon'].startswith(base), info['icon']
    assert (site/urlsplit(info['icon']).path.lstrip('/')).is_file(), info['icon']

@pytest.mark.parametrize('nb', notebooks())
def test_images_have_alt(pages, nb):
    "Every picture says what it shows: non-empty alt text, and not the bare placeholder 'Figure'"
    bad = [i['src'][:40] + f"... alt={i['alt']!r}" for i in pages[page_of(nb)]['imgs']
           if not (i['alt'] or '').strip() or i['alt'].strip() == 'Figure']
    assert not bad, f"{page_of(nb)}: {len(bad)} image(s) without alt text: {bad}"

@pytest.mark.parametrize('nb', notebooks())
def test_images_at_display_size(pages, nb):
    "A 2x (retina) figure shows at the width its metadata gives, not at its pixel width (or the column's, if smaller)"
    bad = [i for i in pages[page_of(nb)]['imgs'] if i['attrW'] and abs(i['shown'] - min(float(i['attrW']), i['room'])) > 1]
    assert not bad, f"{page_of(nb)}: {bad}"

@pytest.mark.parametrize('nb', notebooks())
def test_prev_next(pages, server, nb):
    "The foot of each page links to the previous and the next page of the sidebar"
    base, _ = server
    order = [h for h in dict.fromkeys(pages['index.html']['sidebar']) if h.startswith(base)]
    here = base + page_of(nb)
    assert here in order, f"{page_of(nb)} is not in the sidebar {order}"
    i, info = order.index(here), pages[page_of(nb)]
    assert info['hasNav'], f"{page_of(nb)} has no previous/next links"
    assert info['prev'] == (order[i-1] if i else None), (info['prev'], order)
    assert info['next'] == (order[i+1] if i + 1 < len(order) else None), (info['next'], order)

def test_solutions_section(pages, server):
    "Every page's sidebar has one section, 'Solutions', holding exactly the solutions pages; the chapters sit outside it"
    base, _ = server
    want = [base + page_of(nb) for nb in solutions()]
    for page, info in pages.items():
        assert [s['title'] for s in info['sections']] == ['Solutions'], f"{page}: sections {info['sections']}"
        assert info['sections'][0]['links'] == want, (page, info['sections'][0]['links'])
        chapters = [h for h in info['sidebar'] if h.startswith(base) and h not in want]
        assert {base + page_of(nb) for nb in notebooks() if nb not in solutions()} <= set(chapters), page

def test_prev_next_within_sections(pages, server):
    "Previous/next links stay in a page's own part of the sidebar: solutions lead to solutions and chapters to chapters, except where the two parts meet"
    base, _ = server
    sols = [base + page_of(nb) for nb in solutions()]
    for page, info in pages.items():
        here = base + page
        if here in sols:
            i = sols.index(here)
            if i: assert info['prev'] == sols[i-1], (page, info['prev'])
            if i + 1 < len(sols): assert info['next'] == sols[i+1], (page, info['next'])
        else:
            for side in ('prev', 'next'):
                if info[side] in sols: assert side == 'next' and info['next'] == sols[0], (page, side, info[side])

@pytest.mark.parametrize('nb', notebooks())
def test_link_contrast(pages, nb):
    "Every visible link's colour stands out from what is behind it by WCAG's 4.5:1"
    info = pages[page_of(nb)]
    assert info['contrast'], "no visible link measured"
    low = [f"{c['text']!r} {c['color']} {c['ratio']:.2f}:1" for c in info['contrast'] if c['ratio'] < 4.5]
    assert not low, f"{page_of(nb)}: links below 4.5:1: {low}"

@pytest.mark.parametrize('nb', notebooks())
def test_outputs_wrap(pages, nb):
    "Long output lines wrap at the column instead of being cut off behind a scroll bar"
    assert not pages[page_of(nb)]['wideOutputs'], pages[page_of(nb)]['wideOutputs']

@pytest.mark.parametrize('nb', notebooks())
def test_tables_fit(pages, nb):
    "Tables wrap at spaces, never inside a word or a number, and fit the column or scroll in their own box; output tables are left-aligned"
    for t in pages[page_of(nb)]['tables']:
        assert not t['broken'], f"{page_of(nb)}: table {t['head']!r} breaks {t['broken'][:5]} across lines"
        assert t['scrolls'], f"{page_of(nb)}: table {t['head']!r} is not in a div.mc-table that scrolls"
        if t['output']: assert not t['align'], f"{page_of(nb)}: table {t['head']!r} has cells aligned {set(t['align'])}"
        if t['width'] > t['room'] + 1: print(f"{page_of(nb)}: table {t['head'][:30]!r} is {t['width']:.0f}px wide in {t['room']:.0f}px: it scrolls")

WIDGETS = {'kernels.html': 'mc-kernel_playground', 'cnn.html': 'mc-live_cnn', 'receptive_field.html': 'mc-field_picker'}

@pytest.mark.parametrize('page', list(WIDGETS))
def test_widget_on_its_page(pages, page):
    "The chapter's widget is on its page, built by its script, and fits the column"
    ws = [w for w in pages[page]['widgets'] if WIDGETS[page] in w['cls']]
    assert len(ws) == 1 and ws[0]['mounted'], pages[page]['widgets']
    assert ws[0]['width'] <= ws[0]['room'] + 1, ws[0]

def test_api_comments_wrap_beside_code(server, browser):
    "A long comment in an API block wraps under itself, beside its parameter or indented below it, never back to the left edge (1280 and 390 px)"
    base, _ = server
    js = """Array.from(document.querySelectorAll('.mc-sig-line')).filter(l => l.querySelector('.co')).map(l => {
      const c = l.querySelector('.co').getBoundingClientRect(), code = l.querySelector('.mc-sig-code').getBoundingClientRect();
      return {text: l.textContent.slice(0, 50), lines: Math.round(c.height / parseFloat(getComputedStyle(l).lineHeight)),
              indent: c.left - l.getBoundingClientRect().left, inline: Math.abs(c.top - code.top) < 2}; })"""
    res = {}
    for w, mobile in ((1280, False), (390, True)):
        with browser.viewport(w, 900, mobile=mobile):
            browser.goto(base + 'cnn.html')
            res[w] = browser.js(js)
    assert res[1280], "cnn.html has no API block with a comment"
    assert any(x['lines'] > 1 and x['inline'] for x in res[1280]), "no comment wraps beside its code at 1280 px: nothing checked"
    for w, r in res.items():
        bad = [x for x in r if x['indent'] < 30]
        assert not bad, (w, bad)

# What a page shows on a phone, read at 390 px: anything wider than the column (main's content box) that does not sit in
# a box of its own that scrolls (a table's, a formula's, a figure's, a code block's)
PHONE_JS = """(() => {
  const main = document.querySelector('main'), vw = document.documentElement.clientWidth;
  const room = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
  const inScroller = e => { for (let p = e.parentElement; p && p !== main; p = p.parentElement) {  // an inline box does not scroll
                              const cs = getComputedStyle(p); if (['auto', 'scroll'].includes(cs.overflowX) && cs.display !== 'inline') return true; }
                            return false; };
  const wide = Array.from(main.querySelectorAll('*')).filter(e => { const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > room + 1 && !inScroller(e); }).map(e => e.tagName + ' ' + e.textContent.trim().slice(0, 40));
  return {vw, room, page: document.documentElement.scrollWidth, wide: wide.slice(0, 8),
          maths: Array.from(document.querySelectorAll('span.math.display')).filter(s => s.scrollWidth > s.clientWidth + 1)
            .map(s => (s.dataset.tex || '').slice(0, 40))};
})()"""

# The pages with what a phone can find too wide: the widgets, display formulas, wide tables, long signatures, figures
# (loading every page a second time would cost the test file a third more)
PHONE_PAGES = ['index.html', 'data.html', 'plotting.html', 'kernels.html', 'strides_padding.html', 'im2col.html', 'cnn.html',
               'receptive_field.html', 'color.html', 'layers.html', 'cli.html']

@pytest.fixture(scope='module')
def phone(server, browser):
    "The `PHONE_PAGES` at a phone's 390 px: {page: what PHONE_JS read}; with `WHOLE_PAGES`, screenshots of the widget pages"
    base, _ = server
    with browser.viewport(390, 844):
        res = {}
        for p in PHONE_PAGES:
            browser.goto(base + p)
            res[p] = browser.js(PHONE_JS)
            if WHOLE_PAGES and p in WIDGETS: browser.screenshot(SHOTS/f"phone-{p.replace('.html', '')}.jpg")
        yield res

@pytest.mark.parametrize('page', PHONE_PAGES)
def test_phone_fits(phone, page):
    "At 390 px display formulas fit the column, and nothing else runs off it: figures, tables and widgets fit or scroll in their own box"
    assert {page_of(nb) for nb in notebooks()} >= set(PHONE_PAGES)
    r = phone[page]
    assert not r['maths'], f"{page}: display formulas wider than the screen: {r['maths']}"
    assert not r['wide'] and r['page'] <= r['vw'], f"{page}: {r}"

def test_phone_sidebar(server, browser):
    "On a phone the open sidebar starts below the sticky header: its first entry can be seen and tapped"
    base, _ = server
    with browser.viewport(390, 844):
        browser.goto(base + 'cnn.html')
        browser.js("document.querySelector('.quarto-btn-toggle').click()")
        r = browser.wait("""(() => { const s = document.querySelector('#quarto-sidebar');
          if (getComputedStyle(s).transform !== 'none') return null;
          const a = s.querySelector('a.sidebar-link'), b = a.getBoundingClientRect(), h = document.querySelector('#quarto-header').getBoundingClientRect();
          const hit = document.elementFromPoint(b.left + 5, b.top + b.height / 2);
          return {top: b.top, header: h.bottom, hit: !!hit && a.contains(hit), text: a.textContent.trim()}; })()""", timeout=5)
        browser.screenshot(SHOTS/'phone-sidebar.png', full=False)
    assert r['top'] >= r['header'] and r['hit'], r

def test_maths_font(server, browser):
    "A matrix on the kernels page is drawn with the site's maths font, and its brackets stretch to the matrix's height"
    base, _ = server
    browser.goto(base + 'kernels.html')
    r = browser.js("""(() => {
      const fonts = Array.from(document.fonts).filter(f => f.family.replace(/"/g, '') === 'miniconv math').map(f => f.status);
      const ms = Array.from(document.querySelectorAll('math')).filter(m => m.querySelector('mtable') && m.querySelector('mo[stretchy=true]'));
      return {fonts, mats: ms.map(m => ({table: m.querySelector('mtable').getBoundingClientRect().height,
        brackets: Array.from(m.querySelectorAll('mo[stretchy=true]')).map(o => [o.textContent, o.getBoundingClientRect().height])}))};
    })()""")
    assert r['fonts'] == ['loaded'], f"the maths font is not loaded: {r['fonts']}"
    assert r['mats'], "the kernels page has no bracketed matrix"
    for m in r['mats']:
        for ch, h in m['brackets']:
            assert h >= 0.9 * m['table'], f"bracket {ch} is {h:.0f}px high beside a {m['table']:.0f}px matrix: it did not stretch"

@pytest.mark.parametrize('nb', notebooks())
def test_maths_drawn(pages, nb):
    "Formulas are MathML the browser draws offline, not TeX waiting for a script from a CDN"
    assert not pages[page_of(nb)]['rawMath'], pages[page_of(nb)]['rawMath']

class _Ids(HTMLParser):
    def __init__(self):
        super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        self.ids |= {v for k, v in attrs if k in ('id', 'name') and v}

@functools.cache
def _ids(path): # A file of the site
    p = _Ids(); p.feed(Path(path).read_text(encoding='utf-8')); return p.ids

@pytest.mark.parametrize('nb', notebooks())
def test_internal_links_resolve(pages, server, nb):
    "Every link to the local site points at a file that exists, and at an anchor that exists on it"
    base, site = server
    bad = []
    for h in sorted(set(pages[page_of(nb)]['links'])):
        if not h.startswith(base): continue
        u = urlsplit(h)
        rel = unquote(u.path).lstrip('/') or 'index.html'
        f = site/rel
        if f.is_dir(): f = f/'index.html'
        if not f.is_file(): bad.append(f'{h}: no file {rel}'); continue
        if u.fragment and f.suffix == '.html' and unquote(u.fragment) not in _ids(f): bad.append(f'{h}: no anchor')
    assert not bad, f"{page_of(nb)}: " + '; '.join(bad)

def test_links_are_local(pages):
    "nbdev's cross-references point at the local pages, not at the published site"
    url = re.search(r'site-url:\s*"?([^"\s]+)', (ROOT/'nbs'/'nbdev.yml').read_text()).group(1)
    remote = sorted({h for info in pages.values() for h in info['links'] if h.startswith(url)})
    assert not remote, remote

def test_search_finds(server, browser):
    "Typing in the search box lists the pages that mention the term"
    base, site = server
    want = {page_of(nb) for nb in notebooks() if SEARCH_TERM.lower() in (ROOT/'nbs'/nb).read_text(encoding='utf-8').lower()}
    assert want, f"no notebook mentions {SEARCH_TERM!r} yet (the im2col chapter defines it)"
    browser.goto(base + 'index.html')
    browser.js("document.querySelector('#quarto-search input').focus()")
    browser('Input.insertText', text=SEARCH_TERM)
    n = browser.wait("document.querySelectorAll('.smalldocs-search-results .search-result').length")
    hits = browser.js("Array.from(document.querySelectorAll('.smalldocs-search-results .search-result'))"
                      ".map(a => [a.href, a.textContent])")
    SHOTS.mkdir(exist_ok=True)
    browser.screenshot(SHOTS/f'search-{SEARCH_TERM}.png', full=False)
    found = {urlsplit(h).path.lstrip('/') for h, _ in hits}
    assert n and found & want, f"search for {SEARCH_TERM!r} gave {found}, expected one of {sorted(want)}"
    assert SEARCH_TERM.lower() in hits[0][1].lower(), hits[0]

def test_search_no_match(server, browser):
    "A word no page has gives 'No results', so the check above can fail"
    base, _ = server
    browser.goto(base + 'index.html')
    browser.js("document.querySelector('#quarto-search input').focus()")
    browser('Input.insertText', text='qzxjvwq')
    assert browser.wait("(document.querySelector('.smalldocs-search-results .search-none') || {}).textContent")

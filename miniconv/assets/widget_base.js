/* What miniconv's widgets in the page share: the kernel playground, the live CNN, the receptive-field picker and the
 * convolution explorer. `miniconv.plotting.page_html` inlines this script before each widget's own script, which
 * takes these helpers from window.MiniconvBase. A page may hold this script several times (a notebook shows several
 * widgets, or one widget twice): the first copy defines the helpers and the others leave them be.
 */
(function () {
  'use strict';
  if (window.MiniconvBase) return;

  var SVGNS = 'http://www.w3.org/2000/svg';

  // A new element `tag` (in SVG's namespace if `svg`) with the attributes `attrs`, appended to `parent` if given
  function el(tag, attrs, parent, svg) {
    var e = svg ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  // The bytes that the base64 text `b64` holds (how the widgets receive images and weights)
  function bytes(b64) { var s = atob(b64), a = new Uint8Array(s.length); for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a; }
  // An image sent as base64 grey levels (0 to 255, `image_b64` in miniconv.plotting), as numbers in [0, 1]
  function grey(b64) { var b = bytes(b64), g = new Float64Array(b.length); for (var i = 0; i < b.length; i++) g[i] = b[i] / 255; return g; }

  // A function that puts an element in `fig` before its caption and returns it: the widgets build above the caption
  function before(fig) { var cap = fig.querySelector('figcaption'); return function (e) { fig.insertBefore(e, cap); return e; }; }
  // A panel of a row of panels, in `parent`, under a title (with the id `id`, if given, to label what it holds)
  function panel(parent, title, id) {
    var p = el('div', {'class': 'mc-panel'}, parent);
    el('p', id ? {'class': 'mc-title', id: id} : {'class': 'mc-title'}, p).textContent = title;
    return p;
  }

  // Paint `canvas` `h` x `w` pixels, pixel `p` (row by row) in the colour `rgb(p)`, `[r, g, b]` from 0 to 255
  function paint(canvas, h, w, rgb) {
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    var ctx = canvas.getContext('2d'), im = ctx.createImageData(w, h);
    for (var p = 0; p < h * w; p++) { var c = rgb(p); im.data.set([c[0], c[1], c[2], 255], 4 * p); }
    ctx.putImageData(im, 0, 0);
  }

  // make(fig) for every figure matching `sel` that has no widget yet (fig[key] unset), now or once the page is read;
  // returns the function that does it, for a second copy of the widget's script to call
  function mount(sel, key, make) {
    function all() { Array.prototype.forEach.call(document.querySelectorAll(sel), function (f) { if (!f[key]) make(f); }); }
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', all); else all();
    return all;
  }

  window.MiniconvBase = {el: el, bytes: bytes, grey: grey, before: before, panel: panel, paint: paint, mount: mount};
})();

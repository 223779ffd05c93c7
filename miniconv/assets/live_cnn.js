/* miniconv's live CNN: draw a digit (mouse, touch or pen) or pick a real validation digit, and watch the cnn chapter's
 * trained `simple_cnn` read it: every layer's feature maps and the ten class probabilities, updated as you draw.
 * Plain JavaScript on a 2-D canvas: no library, no WebGL, nothing fetched.
 *
 * Two steps are copies, in JavaScript, of functions of miniconv.cnn (tests/test_widgets.py checks both against them
 * in headless Chromium):
 *   - mnistStyle() is `mnist_style`: the drawing's ink (alpha >= 128 of 255) cut to its bounding box, shrunk by area
 *     averaging so that its longer side is 20 pixels, and placed in a 28x28 field so that its centre of mass is at the
 *     centre, as LeCun, Cortes and Burges prepared MNIST; shrink() is `shrink_drawing`, the drawing as it is, 28x28;
 *   - forward() runs `simple_cnn`: five 3x3 convolutions with stride 2 and padding 1, a ReLU after the first four,
 *     in float64, with the weights `live_cnn_weights` exported from the chapter's model (float32, base64).
 *
 * Markup: `live_cnn()` in miniconv.cnn writes, through `miniconv.plotting.page_widget`, <figure class="mc-widget
 * mc-live_cnn"> with its data as JSON ({net: {layers: [{w, b, shape, stride, padding, relu}]}, digits: [{label,
 * pixels}]}) and a <figcaption>. For tests and the curious, each figure has `fig.liveCnn`: forward(x), pick(i),
 * clear(), draw(strokes), alpha(), preprocess(alpha, centred) and state().
 */
(function () {
  'use strict';
  if (window.MiniconvLiveCnn) { window.MiniconvLiveCnn.mountAll(); return; }

  var SIZE = 280, PEN = 22, N = 28, BOX = 20, n = 0;

  var B = window.MiniconvBase, el = B.el, bytes = B.bytes;  // widget_base.js, inlined before this script
  function floats(b64) {  // little-endian float32, as numpy writes them
    var b = bytes(b64), dv = new DataView(b.buffer), out = new Float64Array(b.length / 4);
    for (var i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }

  // ---- The network ------------------------------------------------------------------------------------------------

  // One convolution (nf x ni x ks x ks weights, stride, zero padding) of x (c x h x w), then a ReLU if asked
  function conv(x, L) {
    var ni = L.shape[1], nf = L.shape[0], ks = L.shape[2], s = L.stride, p = L.padding, h = x.h, w = x.w;
    var oh = Math.floor((h + 2 * p - ks) / s) + 1, ow = Math.floor((w + 2 * p - ks) / s) + 1, y = new Float64Array(nf * oh * ow);
    for (var f = 0; f < nf; f++) for (var i = 0; i < oh; i++) for (var j = 0; j < ow; j++) {
      var acc = L.b[f];
      for (var c = 0; c < ni; c++) for (var u = 0; u < ks; u++) {
        var r = i * s - p + u;
        if (r < 0 || r >= h) continue;
        for (var v = 0; v < ks; v++) {
          var q = j * s - p + v;
          if (q >= 0 && q < w) acc += L.w[((f * ni + c) * ks + u) * ks + v] * x.data[(c * h + r) * w + q];
        }
      }
      y[(f * oh + i) * ow + j] = L.relu && acc < 0 ? 0 : acc;
    }
    return {data: y, c: nf, h: oh, w: ow};
  }

  // Every layer's output for a 28x28 input (784 numbers, row by row), and the softmax of the last one
  function forward(net, img) {
    var x = {data: Float64Array.from(img), c: 1, h: N, w: N}, acts = [];
    net.forEach(function (L) { x = conv(x, L); acts.push(x); });
    var z = x.data, m = Math.max.apply(null, z), e = Array.from(z, function (v) { return Math.exp(v - m); });
    var s = e.reduce(function (a, b) { return a + b; }, 0);
    return {acts: acts, probs: e.map(function (v) { return v / s; })};
  }

  // ---- Preprocessing, as MNIST --------------------------------------------------------------------------------------

  // n x m: row i averages the m input cells under output cell i, n cells over the same length (`_area_weights`)
  function areaWeights(n, m) {
    var A = new Float64Array(n * m);
    for (var i = 0; i < n; i++) for (var k = 0; k < m; k++) {
      var lo = Math.max(i / n, k / m), hi = Math.min((i + 1) / n, (k + 1) / m);
      A[i * m + k] = Math.max(hi - lo, 0) * n;
    }
    return A;
  }

  // A * ink * B^T for ink (bh x bw, 0 or 1): the ink shrunk to nh x nw by area averaging
  function resample(ink, bh, bw, nh, nw) {
    var A = areaWeights(nh, bh), B = areaWeights(nw, bw), t = new Float64Array(bh * nw), out = new Float64Array(nh * nw);
    for (var r = 0; r < bh; r++) for (var j = 0; j < nw; j++) {
      var s = 0;
      for (var c = 0; c < bw; c++) if (ink[r * bw + c]) s += B[j * bw + c];
      t[r * nw + j] = s;
    }
    for (var i = 0; i < nh; i++) for (var j2 = 0; j2 < nw; j2++) {
      var s2 = 0;
      for (var r2 = 0; r2 < bh; r2++) s2 += A[i * bh + r2] * t[r2 * nw + j2];
      out[i * nw + j2] = s2;
    }
    return out;
  }

  // The drawing's alpha channel (size x size bytes) as a 28x28 digit: MNIST's steps when centred, else shrunk as it is
  function preprocess(alpha, size, centred) {
    var out = new Float64Array(N * N), r0 = size, r1 = -1, c0 = size, c1 = -1, r, c;
    for (r = 0; r < size; r++) for (c = 0; c < size; c++) if (alpha[r * size + c] >= 128) {
      if (r < r0) r0 = r; if (r > r1) r1 = r; if (c < c0) c0 = c; if (c > c1) c1 = c;
    }
    if (!centred) { r0 = 0; c0 = 0; r1 = size - 1; c1 = size - 1; }
    else if (r1 < 0) return out;
    var bh = r1 - r0 + 1, bw = c1 - c0 + 1, ink = new Uint8Array(bh * bw);
    for (r = 0; r < bh; r++) for (c = 0; c < bw; c++) ink[r * bw + c] = alpha[(r0 + r) * size + c0 + c] >= 128 ? 1 : 0;
    if (!centred) return resample(ink, bh, bw, N, N);
    var sc = BOX / Math.max(bh, bw), nh = Math.max(1, Math.floor(bh * sc + 0.5)), nw = Math.max(1, Math.floor(bw * sc + 0.5));
    var small = resample(ink, bh, bw, nh, nw), m = 0, my = 0, mx = 0;
    for (r = 0; r < nh; r++) for (c = 0; c < nw; c++) { var v = small[r * nw + c]; m += v; my += v * (r + 0.5); mx += v * (c + 0.5); }
    var oy = Math.floor(N / 2 - my / m + 0.5), ox = Math.floor(N / 2 - mx / m + 0.5);
    for (r = 0; r < nh; r++) for (c = 0; c < nw; c++) {
      var y = r + oy, x = c + ox;
      if (y >= 0 && y < N && x >= 0 && x < N) out[y * N + x] = small[r * nw + c];
    }
    return out;
  }

  // ---- Pictures -----------------------------------------------------------------------------------------------------

  function paint(canvas, h, w, grey) {  // grey(index) in [0, 1]: black to white
    B.paint(canvas, h, w, function (p) { var g = Math.round(255 * Math.max(0, Math.min(1, grey(p)))); return [g, g, g]; });
  }

  // ---- One widget ---------------------------------------------------------------------------------------------------

  function LiveCnn(fig) {
    var self = this, id = 'mc-cnn-' + (++n);
    var data = JSON.parse(fig.querySelector('script.mc-data').textContent);
    this.fig = fig; fig.liveCnn = this;
    this.net = data.net.layers.map(function (L) {
      return {w: floats(L.w), b: floats(L.b), shape: L.shape, stride: L.stride, padding: L.padding, relu: L.relu};
    });
    this.digits = data.digits.map(function (d) { return {label: d.label, img: B.grey(d.pixels)}; });
    this.names = data.names;
    var before = B.before(fig);

    var row = before(el('div', {'class': 'mc-row'}));
    var pad = B.panel(row, 'Draw a digit here', id + '-pad');
    this.canvas = el('canvas', {'class': 'mc-draw', width: SIZE, height: SIZE, role: 'img', 'aria-labelledby': id + '-pad',
                                'aria-describedby': id + '-status'}, pad);
    this.ctx = this.canvas.getContext('2d', {willReadFrequently: true});
    var tools = el('div', {'class': 'mc-tools'}, pad);
    var clear = el('button', {type: 'button'}, tools);
    clear.textContent = 'Clear';
    clear.addEventListener('click', function () { self.clear(); });
    var lab = el('label', {}, tools);
    this.centred = el('input', {type: 'checkbox', checked: ''}, lab);
    lab.appendChild(document.createTextNode('Centre and scale as MNIST'));
    this.centred.addEventListener('change', function () { self.update(); });

    var seen = B.panel(row, 'What the model sees');
    this.seen = el('canvas', {'class': 'mc-px mc-seen', role: 'img'}, seen);
    el('p', {'class': 'mc-title', style: 'margin-top:.6rem'}, seen).textContent = 'Class probabilities';
    this.probs = el('ol', {'class': 'mc-probs', start: 0}, seen);
    this.bars = [];
    for (var k = 0; k < 10; k++) {
      var li = el('li', {}, this.probs);
      el('span', {}, li).textContent = k;
      var fill = el('span', {'class': 'mc-fill'}, el('span', {'class': 'mc-track'}, li));
      this.bars.push({li: li, fill: fill, pct: el('span', {'class': 'mc-pct'}, li)});
    }

    before(el('p', {'class': 'mc-title', id: id + '-picks', style: 'margin-top:.6rem'})).textContent = 'Or pick a real validation digit';
    var picks = before(el('div', {'class': 'mc-picks', role: 'group', 'aria-labelledby': id + '-picks'}));
    this.pickButtons = this.digits.map(function (d, i) {
      var b = el('button', {type: 'button', 'aria-pressed': 'false', 'aria-label': 'validation digit ' + (i + 1) + ', a ' + d.label}, picks);
      paint(el('canvas', {'aria-hidden': 'true'}, b), N, N, function (p) { return d.img[p]; });
      b.addEventListener('click', function () { self.pick(i); });
      return b;
    });

    this.layers = this.net.map(function () {
      var box = before(el('div', {'class': 'mc-layer'}));
      var title = el('p', {'class': 'mc-title'}, box);
      var maps = el('div', {'class': 'mc-maps', role: 'img'}, box);
      return {title: title, maps: maps, canvases: []};
    });
    this.status = before(el('p', {'class': 'mc-status', id: id + '-status', 'aria-live': 'polite'}));

    // Drawing: Pointer Events cover a mouse, a finger and a pen alike
    var last = null, queued = false;
    function at(e) { var r = self.canvas.getBoundingClientRect(); return [(e.clientX - r.left) / r.width * SIZE, (e.clientY - r.top) / r.height * SIZE]; }
    function later() { if (!queued) { queued = true; requestAnimationFrame(function () { queued = false; self.update(); }); } }
    this.canvas.addEventListener('pointerdown', function (e) {
      if (e.button > 0) return;
      if (self.picked !== null) self.clear(true);
      self.canvas.setPointerCapture(e.pointerId);
      last = at(e); self.segment(last, last); later(); e.preventDefault();
    });
    this.canvas.addEventListener('pointermove', function (e) {
      if (!last) return;
      var p = at(e); self.segment(last, p); last = p; later();
    });
    ['pointerup', 'pointercancel'].forEach(function (t) { self.canvas.addEventListener(t, function () { last = null; }); });

    this.picked = null;
    this.pick(0);
  }

  // Ink from a to b, as a round pen leaves it (a dot when a is b)
  LiveCnn.prototype.segment = function (a, b) {
    var c = this.ctx;
    c.strokeStyle = c.fillStyle = '#000'; c.lineWidth = PEN; c.lineCap = c.lineJoin = 'round';
    c.beginPath();
    if (a[0] === b[0] && a[1] === b[1]) { c.arc(a[0], a[1], PEN / 2, 0, 2 * Math.PI); c.fill(); }
    else { c.moveTo(a[0], a[1]); c.lineTo(b[0], b[1]); c.stroke(); }
  };

  // Strokes [[[x, y], ...], ...] in the 280x280 drawing's pixels, drawn as a pen would, segment by segment
  LiveCnn.prototype.draw = function (strokes) {
    var self = this;
    if (this.picked !== null) this.clear(true);
    strokes.forEach(function (s) {
      if (s.length === 1) self.segment(s[0], s[0]);
      for (var i = 1; i < s.length; i++) self.segment(s[i - 1], s[i]);
    });
    return this.update();
  };

  LiveCnn.prototype.clear = function (quiet) {
    this.ctx.clearRect(0, 0, SIZE, SIZE);
    this.picked = null;
    this.pickButtons.forEach(function (b) { b.setAttribute('aria-pressed', 'false'); });
    if (!quiet) return this.update();
  };

  // A real digit: shown on the pad, and fed to the model as it is (it is already an MNIST digit)
  LiveCnn.prototype.pick = function (i) {
    var d = this.digits[i], c = this.ctx, cell = SIZE / N;
    c.clearRect(0, 0, SIZE, SIZE);
    for (var p = 0; p < N * N; p++) if (d.img[p] > 0) {
      c.fillStyle = 'rgba(0, 0, 0, ' + d.img[p] + ')';
      c.fillRect((p % N) * cell, Math.floor(p / N) * cell, cell, cell);
    }
    this.picked = i;
    this.pickButtons.forEach(function (b, k) { b.setAttribute('aria-pressed', k === i ? 'true' : 'false'); });
    return this.update();
  };

  LiveCnn.prototype.alpha = function () {
    var px = this.ctx.getImageData(0, 0, SIZE, SIZE).data, a = new Uint8Array(SIZE * SIZE);
    for (var i = 0; i < a.length; i++) a[i] = px[4 * i + 3];
    return a;
  };

  LiveCnn.prototype.preprocess = function (alpha, centred) { return Array.from(preprocess(alpha, SIZE, centred)); };
  LiveCnn.prototype.forward = function (img) { return forward(this.net, img); };

  // What the model reads now: the input, every layer's output and the probabilities
  LiveCnn.prototype.state = function () {
    var s = this.last;
    return {input: Array.from(s.input), acts: s.acts.map(function (a) { return Array.from(a.data); }), probs: s.probs,
            pred: s.pred, picked: this.picked, centred: this.centred.checked};
  };

  LiveCnn.prototype.update = function () {
    var self = this, empty = false, img;
    if (this.picked !== null) img = this.digits[this.picked].img;
    else {
      var a = this.alpha();
      empty = !a.some(function (v) { return v >= 128; });
      img = preprocess(a, SIZE, this.centred.checked);
    }
    var out = forward(this.net, img), probs = out.probs, pred = probs.indexOf(Math.max.apply(null, probs));
    this.last = {input: img, acts: out.acts, probs: probs, pred: pred};
    paint(this.seen, N, N, function (p) { return img[p]; });
    this.seen.setAttribute('aria-label', 'The 28 by 28 digit the model reads' + (empty ? ': empty' : ''));
    this.bars.forEach(function (b, k) {
      b.fill.style.width = (100 * probs[k]).toFixed(1) + '%';
      b.pct.textContent = (100 * probs[k]).toFixed(1) + '%';
      b.li.classList.toggle('mc-top', k === pred);
    });
    out.acts.forEach(function (act, i) { self.showLayer(i, act); });
    var what = this.picked !== null ? 'validation digit ' + (this.picked + 1) + ' (a ' + this.digits[this.picked].label + ')' : 'your drawing';
    this.status.textContent = empty ? 'The pad is empty: draw a digit on it, or pick one of the real digits.'
      : 'The model reads ' + what + ' as a ' + pred + ', with probability ' + (100 * probs[pred]).toFixed(1) + '%.';
    return this.state();
  };

  // A layer's maps, each on its own small canvas, on one grey scale from 0 to the layer's largest value
  LiveCnn.prototype.showLayer = function (i, act) {
    var L = this.layers[i], hw = act.h * act.w, hi = 0, lo = 0, k;
    for (k = 0; k < act.data.length; k++) { hi = Math.max(hi, act.data[k]); lo = Math.min(lo, act.data[k]); }
    var last = i === this.layers.length - 1, px = Math.max(2, Math.round(56 / act.h));
    while (L.canvases.length < act.c) L.canvases.push(el('canvas', {'aria-hidden': 'true'}, L.maps));
    L.canvases.forEach(function (cv, f) {
      cv.style.width = cv.style.height = px * act.h + 'px';
      paint(cv, act.h, act.w, function (p) { var v = act.data[f * hw + p]; return hi > lo ? (v - lo) / (hi - lo) : 0; });
    });
    L.title.textContent = this.names[i] + ': ' + act.c + (act.c > 1 ? ' maps' : ' map') + ' of ' + act.h + '×' + act.w +
      (last ? ', the scores (logits) of 0 to 9 from left to right, black the lowest and white the highest' : ' after the ReLU, black 0 and white the largest (' + hi.toFixed(2) + ')');
    L.maps.setAttribute('aria-label', L.title.textContent);
  };

  var mountAll = B.mount('figure.mc-live_cnn', 'liveCnn', function (f) { new LiveCnn(f); });
  window.MiniconvLiveCnn = {mountAll: mountAll, forward: forward, preprocess: preprocess};
})();

/* miniconv's kernel playground: edit a 3x3 kernel's nine weights, or pick one of the kernels chapter's, and see its
 * response on a digit at once, on a colour scale centred on 0. Plain JavaScript: no library, nothing fetched.
 *
 * The response is the chapter's cross-correlation (`conv_loop`, `corr2d`, and `F.conv2d` without padding): output
 * [i, j] is the sum over u, v of kernel[u, v] * img[i+u, j+v], for every position where the kernel fits, so a 28x28
 * digit gives a 26x26 map. The colours are matplotlib's RdBu_r, as `show_kernel` draws kernels: blue below 0, white
 * at 0, red above, with the scale set by the largest |response|.
 *
 * Markup: `kernel_playground()` in miniconv.kernels writes, through `miniconv.plotting.page_widget`,
 * <figure class="mc-widget mc-kernel_playground"> holding its data as JSON (<script type="application/json"
 * class="mc-data">: {digits: [{label, pixels}], kernels: [[name, [9 weights]]], start}) and a <figcaption>; this
 * script builds the controls and the pictures inside every such figure. For tests and the curious, each figure has
 * `fig.playground`: set(weights), pick(name), digit(i), weights(), response() and colour(v).
 */
(function () {
  'use strict';
  if (window.MiniconvPlayground) { window.MiniconvPlayground.mountAll(); return; }

  // matplotlib's RdBu (ColorBrewer's 11 classes), reversed: -1 is deep blue, 0 is near white, +1 deep red
  var RDBU_R = ['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d',
                '#b2182b', '#67001f'].map(function (h) { return [1, 3, 5].map(function (i) { return parseInt(h.substr(i, 2), 16); }); });
  var KS = 3, n = 0;

  var B = window.MiniconvBase, el = B.el;  // widget_base.js, inlined before this script
  function fmt(v) { return (Math.abs(v) < 5e-5 ? 0 : v).toFixed(Math.abs(v) >= 10 ? 1 : 2); }

  // The colour of t in [-1, 1] on RdBu_r, as [r, g, b] (linear between the 11 anchors, as matplotlib interpolates)
  function colour(t) {
    var x = (Math.max(-1, Math.min(1, t)) + 1) / 2 * (RDBU_R.length - 1), i = Math.min(Math.floor(x), RDBU_R.length - 2), f = x - i;
    return [0, 1, 2].map(function (c) { return Math.round(RDBU_R[i][c] + (RDBU_R[i + 1][c] - RDBU_R[i][c]) * f); });
  }

  // The valid cross-correlation of img (h x w, row by row) with the 3x3 kernel k: (h-2) x (w-2), row by row
  function correlate(img, h, w, k) {
    var oh = h - KS + 1, ow = w - KS + 1, out = new Float64Array(oh * ow);
    for (var i = 0; i < oh; i++) for (var j = 0; j < ow; j++) {
      var s = 0;
      for (var u = 0; u < KS; u++) for (var v = 0; v < KS; v++) s += k[u * KS + v] * img[(i + u) * w + j + v];
      out[i * ow + j] = s;
    }
    return {data: out, h: oh, w: ow};
  }

  var paint = B.paint;

  function Playground(fig) {
    var self = this, id = 'mc-kp-' + (++n);
    var data = JSON.parse(fig.querySelector('script.mc-data').textContent);
    this.fig = fig; fig.playground = this;
    this.digits = data.digits.map(function (d) { return {label: d.label, img: B.grey(d.pixels), h: d.h, w: d.w}; });
    this.kernels = data.kernels;
    var before = B.before(fig);

    var row = before(el('div', {'class': 'mc-row'}));
    var left = B.panel(row, 'Kernel weights', id + '-w');
    this.grid = el('div', {'class': 'mc-weights', role: 'group', 'aria-labelledby': id + '-w'}, left);
    this.inputs = [];
    for (var u = 0; u < KS; u++) for (var v = 0; v < KS; v++) {
      var inp = el('input', {type: 'number', step: '0.1', inputmode: 'decimal', 'aria-label': 'weight row ' + (u + 1) + ', column ' + (v + 1),
                             'data-r': u, 'data-c': v}, this.grid);
      inp.addEventListener('input', function () { self.preset.value = ''; self.update(); });
      this.inputs.push(inp);
    }
    var tools = el('div', {'class': 'mc-tools'}, left);
    var lab = el('label', {}, tools);
    lab.appendChild(document.createTextNode('Kernel'));
    this.preset = el('select', {}, lab);
    el('option', {value: ''}, this.preset).textContent = 'your own';
    this.kernels.forEach(function (k) { el('option', {value: k[0]}, self.preset).textContent = k[0]; });
    this.preset.addEventListener('change', function () { if (self.preset.value) self.pick(self.preset.value); });
    if (this.digits.length > 1) {
      var dl = el('label', {}, tools);
      dl.appendChild(document.createTextNode('Digit'));
      this.digitSel = el('select', {}, dl);
      this.digits.forEach(function (d, i) { el('option', {value: i}, self.digitSel).textContent = 'a ' + d.label; });
      this.digitSel.addEventListener('change', function () { self.digit(+self.digitSel.value); });
    }

    var pics = el('div', {'class': 'mc-row'}, row);
    var p1 = B.panel(pics, 'Digit');
    this.digitCanvas = el('canvas', {'class': 'mc-px', role: 'img'}, p1);
    var p2 = B.panel(pics, 'Response');
    this.respCanvas = el('canvas', {'class': 'mc-px mc-resp', role: 'img'}, p2);
    var scale = el('div', {'class': 'mc-scale', 'aria-hidden': 'true'}, p2);
    this.lo = el('span', {}, scale);
    var ramp = el('canvas', {'class': 'mc-ramp'}, scale);
    this.hi = el('span', {}, scale);
    paint(ramp, 1, 101, function (p) { return colour(p / 50 - 1); });
    this.status = before(el('p', {'class': 'mc-status', 'aria-live': 'polite'}));
    this.current = 0;
    this.digit(0, true);
    this.pick(data.start || this.kernels[0][0]);
  }

  // The nine weights as the boxes hold them (an empty or unreadable box counts as 0, and is marked)
  Playground.prototype.weights = function () {
    return this.inputs.map(function (inp) {
      var v = parseFloat(inp.value), bad = inp.value.trim() !== '' && !isFinite(v);
      inp.setAttribute('aria-invalid', bad ? 'true' : 'false');
      return isFinite(v) ? v : 0;
    });
  };

  Playground.prototype.set = function (w) {
    this.inputs.forEach(function (inp, i) { inp.value = String(w[i]); });
    this.preset.value = '';
    return this.update();
  };

  Playground.prototype.pick = function (name) {
    var k = this.kernels.filter(function (k) { return k[0] === name; })[0];
    if (!k) throw new Error('no kernel named ' + name);
    this.inputs.forEach(function (inp, i) { inp.value = String(k[1][i]); });
    this.preset.value = name;
    return this.update();
  };

  Playground.prototype.digit = function (i, quiet) {
    var d = this.digits[i];
    this.current = i;
    if (this.digitSel) this.digitSel.value = i;
    paint(this.digitCanvas, d.h, d.w, function (p) { var g = Math.round(d.img[p] * 255); return [g, g, g]; });
    this.digitCanvas.setAttribute('aria-label', 'The digit, a ' + d.label + ': white strokes on black, ' + d.h + ' by ' + d.w + ' pixels');
    if (!quiet) return this.update();
  };

  Playground.prototype.update = function () {
    var d = this.digits[this.current], k = this.weights(), r = correlate(d.img, d.h, d.w, k), top = 0, arg = 0, low = 0, argLow = 0;
    for (var p = 0; p < r.data.length; p++) {
      if (r.data[p] > top) { top = r.data[p]; arg = p; }
      if (r.data[p] < low) { low = r.data[p]; argLow = p; }
    }
    var vmax = Math.max(top, -low) || 1;
    this.vmax = vmax; this.last = r;
    paint(this.respCanvas, r.h, r.w, function (p) { return colour(r.data[p] / vmax); });
    this.lo.textContent = fmt(-vmax); this.hi.textContent = fmt(vmax);
    var at = function (p) { return 'row ' + Math.floor(p / r.w) + ', column ' + (p % r.w); };
    var words = 'The ' + r.h + ' by ' + r.w + ' response of kernel [' + k.map(fmt).join(', ') + '] on the ' + d.label + ': ' +
      (top > 0 ? 'strongest positive ' + fmt(top) + ' at ' + at(arg) : 'nothing above 0') + '; ' +
      (low < 0 ? 'strongest negative ' + fmt(low) + ' at ' + at(argLow) : 'nothing below 0') + '.';
    this.respCanvas.setAttribute('aria-label', words + ' Blue is below 0, white is 0, red is above 0.');
    this.status.textContent = words;
    return Array.from(r.data);
  };

  Playground.prototype.response = function () { return Array.from(this.last.data); };
  Playground.prototype.colour = function (v) { return colour(v / this.vmax); };

  var mountAll = B.mount('figure.mc-kernel_playground', 'playground', function (f) { new Playground(f); });
  window.MiniconvPlayground = {mountAll: mountAll, colour: colour, correlate: correlate};
})();

/* miniconv's convolution explorer: choose the input size, kernel size, stride, padding and dilation, and step the
 * kernel's window over the padded input. Plain JavaScript and SVG: no framework, nothing fetched from the network.
 *
 * The arithmetic is a copy, in JavaScript, of two functions of miniconv.strides_padding:
 *   - outSize() is conv_out_size(): the same checks in the same order, refused with the same words;
 *   - window (i, j) covers what conv_steps() says: it starts at (i*stride, j*stride) in the padded input and its
 *     taps are `dilation` apart.
 * Why a copy: the site has no Python to ask, and a slider must answer at once, offline, for every setting the sliders
 * reach (8,750 per axis), with the size and formula or with PyTorch's reason for refusing. Python could write all those
 * answers into the page instead, but they come to about 640 KiB against this whole script's 18 (the strides chapter
 * measures both). So the arithmetic is computed here, and tests/test_explorer.py drives this widget in headless
 * Chromium and compares what the page shows with those two functions, and them with PyTorch, and calls outSize() on
 * every setting of one axis the sliders reach: the copy cannot drift from the course.
 *
 * explorer_html() accepts only settings within the sliders' ranges (EXPLORER_RANGES): the drawing has an SVG rectangle
 * per cell, and a large input would stall the page.
 *
 * Markup: explorer_html() in miniconv.strides_padding writes <figure class="mc-explorer" data-h data-w data-ks
 * data-stride data-padding data-dilation data-step data-ranges> with a <figcaption>, the CSS and this script; the
 * script builds the controls and the drawing inside every such figure. What a figure shows is also written on it,
 * for tests and for the curious: data-out-h, data-out-w, data-steps, data-step (0-based), data-error, data-error-axis,
 * data-formula-rows, data-formula-cols on the figure; class "tap" with data-r, data-c (padded-input row and column)
 * on the covered cells; class "current" with data-i, data-j on the output cell the window fills.
 */
(function () {
  'use strict';
  if (window.MiniconvExplorer) { window.MiniconvExplorer.mountAll(); return; }  // the script is on the page twice

  var B = window.MiniconvBase, el = B.el;  // widget_base.js, inlined before this script
  var FORMULA = '⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1';  // FORMULA in miniconv.strides_padding
  // The sliders: state key and label. Their ranges come from the figure's data-ranges, which explorer_html() writes
  // from EXPLORER_RANGES in miniconv.strides_padding (stride, padding and dilation reach one notch into what PyTorch
  // refuses, so that a learner can see the refusal and its reason).
  var CONTROLS = [['h', 'Input height H'], ['w', 'Input width W'], ['ks', 'Kernel size k'],
                  ['stride', 'Stride s'], ['padding', 'Padding p'], ['dilation', 'Dilation d']];
  var nExplorers = 0;

  // ---- The arithmetic ------------------------------------------------------------------------------------------

  function repr(v) { return typeof v === 'string' ? "'" + v + "'" : String(v); }  // Python's repr, for numbers
  function Refusal(message) { this.message = message; }
  var LEAST = {0: 'a non-negative integer', 1: 'a positive integer'};

  // as_int(v, name, lo) of miniconv.checks. (JavaScript cannot tell 3.0 from 3; Python refuses 3.0.)
  function asInt(v, name, lo) {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Refusal(name + ' must be an integer, got ' + name + '=' + repr(v));
    if (v < lo) throw new Refusal(name + ' must be ' + LEAST[lo] + ', got ' + name + '=' + repr(v));
  }

  // conv_out_size(n, ks, stride, padding, dilation) with one padding for both sides: {o, formula}, or a Refusal
  function outSize(n, ks, stride, padding, dilation) {
    asInt(n, 'n', 1); asInt(ks, 'ks', 1); asInt(stride, 'stride', 1); asInt(dilation, 'dilation', 1);
    if (typeof padding !== 'number' || !Number.isInteger(padding))  // as_pair(padding, 'padding', 0)
      throw new Refusal('padding must be an int or a pair of ints, got padding=' + repr(padding));
    if (padding < 0) throw new Refusal('padding must be a non-negative integer or a pair of them, got padding=' + repr(padding));
    var span = dilation * (ks - 1) + 1;          // effective kernel size
    var room = n + 2 * padding - span;           // how far the window can move
    var o = Math.floor(room / stride) + 1;       // Python's // rounds down too
    if (o < 1) throw new Refusal('output size ' + o + ' is below 1: the effective kernel size ' + span + ' (ks=' + ks +
      ', dilation=' + dilation + ') is larger than the padded input ' + (n + 2 * padding) + ' (n=' + n +
      ', padding=' + padding + ', stride=' + stride + ')');
    // conv_formula(n, ks, stride, padding, dilation)
    return {o: o, formula: '⌊(' + n + ' + 2·' + padding + ' − ' + dilation + '·(' + ks + ' − 1) − 1) / ' + stride + '⌋ + 1 = ' + o};
  }

  // Padded-input positions of the taps of the window that starts at `start`
  function taps(start, ks, dilation) {
    var r = [];
    for (var t = 0; t < ks; t++) r.push(start + t * dilation);
    return r;
  }

  // ---- Small DOM helpers ---------------------------------------------------------------------------------------

  function list(a) { return a.length < 2 ? String(a[0]) : a.slice(0, -1).join(', ') + ' and ' + a[a.length - 1]; }

  // ---- One explorer --------------------------------------------------------------------------------------------

  function Explorer(fig) {
    var d = fig.dataset, self = this;
    this.fig = fig; this.id = 'mc-explorer-' + (++nExplorers);
    fig.explorer = this;
    this.state = {h: +d.h, w: +d.w, ks: +d.ks, stride: +d.stride, padding: +d.padding, dilation: +d.dilation, step: +(d.step || 0)};
    var ranges = JSON.parse(d.ranges);  // {key: [min, max]} for every slider
    var before = B.before(fig);

    // The sliders, each with a label and the value it shows
    var box = before(el('div', {'class': 'mc-controls', role: 'group', 'aria-label': 'Convolution settings'}));
    this.inputs = {}; this.outputs = {};
    CONTROLS.forEach(function (c) {
      var key = c[0], id = self.id + '-' + key, rg = ranges[key];
      var row = el('div', {'class': 'mc-ctl'}, box);
      el('label', {'for': id}, row).textContent = c[1];
      var inp = el('input', {type: 'range', id: id, min: rg[0], max: rg[1], step: 1, 'data-key': key}, row);
      self.inputs[key] = inp;
      self.outputs[key] = el('output', {'for': id}, row);
      inp.addEventListener('input', function () { var s = {}; s[key] = +inp.value; self.set(s); });
    });

    // The window position: a slider, and buttons big enough for a finger
    var nav = before(el('div', {'class': 'mc-stepper', role: 'group', 'aria-label': 'Window position'}));
    var sid = this.id + '-step';
    this.prev = el('button', {type: 'button', 'class': 'mc-prev', 'aria-label': 'Previous step'}, nav);
    this.prev.textContent = '‹';
    el('label', {'for': sid}, nav).textContent = 'Step';
    this.stepInput = el('input', {type: 'range', id: sid, min: 1, max: 1, step: 1, 'data-key': 'step'}, nav);
    this.stepOutput = el('output', {'for': sid}, nav);
    this.next = el('button', {type: 'button', 'class': 'mc-next', 'aria-label': 'Next step'}, nav);
    this.next.textContent = '›';
    this.stepInput.addEventListener('input', function () { self.set({step: +self.stepInput.value - 1}); });
    this.prev.addEventListener('click', function () { self.move(-1); });
    this.next.addEventListener('click', function () { self.move(1); });

    // The drawing: focusable, the arrow keys move the window; a tap on an output cell moves it there
    this.drawing = before(el('div', {'class': 'mc-drawing', tabindex: 0, role: 'img'}));
    this.svg = el('svg', {'aria-hidden': 'true', focusable: 'false'}, this.drawing, true);
    this.drawing.addEventListener('keydown', function (e) {
      var n = self.nSteps, go = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[e.key];
      if (!n) return;
      if (go) self.move(go);
      else if (e.key === 'Home') self.set({step: 0});
      else if (e.key === 'End') self.set({step: n - 1});
      else return;
      e.preventDefault();
    });
    this.svg.addEventListener('click', function (e) {
      var t = e.target;
      if (t.classList && t.classList.contains('out')) self.set({step: +t.dataset.k});
    });

    // What the drawing shows, in words (read out when it changes), and the formula with the numbers filled in
    this.status = before(el('p', {'class': 'mc-status', 'aria-live': 'polite'}));
    this.formula = before(el('div', {'class': 'mc-formula'}));
    var legend = before(el('p', {'class': 'mc-legend', 'aria-hidden': 'true'}));
    [['in', 'input'], ['pad', 'padding'], ['tap', 'taps'], ['span', 'window span'], ['current', 'output cell being filled'],
     ['done', 'output cells filled']].forEach(function (k) {
      var s = el('span', {}, legend);
      el('i', {'class': 'mc-key mc-key-' + k[0]}, s);
      s.appendChild(document.createTextNode(k[1]));
    });

    // The layout depends on the column's width: read it once (reading it after every change would force the browser
    // to lay the page out again each time), and again when it changes (a phone turned sideways)
    this.width = fig.clientWidth || 600;
    if (window.ResizeObserver) new ResizeObserver(function () {
      var w = fig.clientWidth;
      if (w && w !== self.width) { self.width = w; self.geom = null; self.render(); }
    }).observe(fig);
    this.render();
  }

  // Change some of h, w, ks, stride, padding, dilation, step, and redraw
  Explorer.prototype.set = function (s) {
    for (var k in s) this.state[k] = s[k];
    this.render();
    return this.read();
  };

  Explorer.prototype.move = function (by) {
    if (this.nSteps) this.set({step: Math.min(this.nSteps - 1, Math.max(0, this.state.step + by))});
  };

  // What the figure shows, from its data- attributes
  Explorer.prototype.read = function () {
    var d = this.fig.dataset;
    return {error: d.error || null, outH: +d.outH, outW: +d.outW, step: +d.step, steps: +d.steps};
  };

  Explorer.prototype.render = function () {
    var st = this.state, fig = this.fig, self = this;
    CONTROLS.forEach(function (c) {  // sliders and the values beside them show the state
      var k = c[0];
      self.inputs[k].value = st[k];
      self.outputs[k].textContent = repr(st[k]);
    });
    var rows, cols, axis = 'rows';
    try {  // rows first, then columns: conv_steps asks conv_out_size in this order too
      rows = outSize(st.h, st.ks, st.stride, st.padding, st.dilation);
      axis = 'columns';
      cols = outSize(st.w, st.ks, st.stride, st.padding, st.dilation);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      return this.refuse(e.message, axis);
    }
    delete fig.dataset.error; delete fig.dataset.errorAxis;
    this.drawing.hidden = false;
    fig.classList.remove('mc-refused');
    var oh = rows.o, ow = cols.o, n = oh * ow;
    st.step = Math.min(n - 1, Math.max(0, Math.floor(st.step) || 0));
    this.nSteps = n;
    var i = Math.floor(st.step / ow), j = st.step % ow;
    var tr = taps(i * st.stride, st.ks, st.dilation), tc = taps(j * st.stride, st.ks, st.dilation);
    this.draw(oh, ow, i, j, tr, tc);

    var d = fig.dataset;
    d.outH = oh; d.outW = ow; d.steps = n; d.step = st.step; d.formulaRows = rows.formula; d.formulaCols = cols.formula;
    this.stepInput.disabled = this.prev.disabled = this.next.disabled = false;
    this.stepInput.max = n; this.stepInput.value = st.step + 1;
    this.stepOutput.textContent = (st.step + 1) + ' / ' + n;

    var p = st.padding, nPad = 0;
    tr.forEach(function (r) { tc.forEach(function (c) { if (r < p || r >= p + st.h || c < p || c >= p + st.w) nPad++; }); });
    var words = 'Step ' + (st.step + 1) + ' of ' + n + ': the ' + st.ks + '×' + st.ks + ' kernel\u2019s taps cover padded rows ' +
      list(tr) + ' and columns ' + list(tc) + (nPad ? ' (' + nPad + ' of the ' + tr.length * tc.length + ' cells are padding)' : '') +
      ' and fill output cell (' + i + ', ' + j + ') of ' + oh + '×' + ow + '.';
    this.status.textContent = words;
    this.drawing.setAttribute('aria-label', 'Input ' + st.h + '×' + st.w + ' with padding ' + p + ', stride ' + st.stride +
      ', dilation ' + st.dilation + '. ' + words + ' Arrow keys move the window.');
    this.formula.innerHTML = '';
    var f = el('p', {}, this.formula);
    f.textContent = 'Output size along an axis of n cells: ';
    el('span', {'class': 'mc-f'}, f).textContent = 'o = ' + FORMULA;
    [['rows', 'H', rows], ['columns', 'W', cols]].forEach(function (a) {
      var q = el('p', {}, self.formula);
      el('span', {'class': 'mc-axis'}, q).textContent = a[0] + ' (n = ' + a[1] + '): ';
      el('span', {'class': 'mc-f'}, q).textContent = a[2].formula;
    });
  };

  // A configuration PyTorch refuses: say why, in conv_out_size's words, and draw nothing
  Explorer.prototype.refuse = function (msg, axis) {
    var fig = this.fig, d = fig.dataset;
    ['outH', 'outW', 'steps', 'step', 'formulaRows', 'formulaCols'].forEach(function (k) { delete d[k]; });
    d.error = msg; d.errorAxis = axis;
    fig.classList.add('mc-refused');
    this.nSteps = 0;
    while (this.svg.firstChild) this.svg.removeChild(this.svg.firstChild);
    this.svg.removeAttribute('viewBox');
    this.drawing.hidden = true;  // nothing to draw, and nothing to focus
    this.geom = null;
    this.stepInput.disabled = this.prev.disabled = this.next.disabled = true;
    this.stepOutput.textContent = '–';
    this.status.textContent = '';
    this.drawing.setAttribute('aria-label', 'Nothing to draw: PyTorch refuses these settings.');
    this.formula.innerHTML = '';
    var q = el('p', {'class': 'mc-error', role: 'alert'}, this.formula);
    el('strong', {}, q).textContent = 'PyTorch refuses this layer (' + axis + ', n = ' + (axis === 'rows' ? 'H' : 'W') + '): ';
    el('span', {'class': 'mc-reason'}, q).textContent = msg;
  };

  // Draw the settings' grids once (`build`), then for each step only move the marks (`place`)
  Explorer.prototype.draw = function (oh, ow, i, j, tr, tc) {
    var st = this.state, key = [st.h, st.w, st.ks, st.stride, st.padding, st.dilation, this.width].join();
    if (key !== this.geom) { this.build(oh, ow); this.geom = key; }
    this.place(i, j, tr, tc);
  };

  // The padded input, the output grid, the window's span and the arrow, for the current settings
  Explorer.prototype.build = function (oh, ow) {
    var st = this.state, svg = this.svg, p = st.padding;
    var hp = st.h + 2 * p, wp = st.w + 2 * p, gap = 1.5, m = 0.1, r, c;
    // Output beside the input if cells stay at least 16 px wide, else below it (a phone)
    var beside = this.width / (wp + gap + ow + 2 * m) >= 16;
    var ox = beside ? wp + gap : (wp - ow) / 2, oy = beside ? (hp - oh) / 2 : hp + gap;
    var x0 = Math.min(0, ox) - m, x1 = Math.max(wp, ox + ow) + m, y0 = Math.min(0, oy) - m, y1 = Math.max(hp, oy + oh) + m;
    var cell = Math.min(36, this.width / (x1 - x0));  // CSS pixels per cell
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute('viewBox', [x0, y0, x1 - x0, y1 - y0].join(' '));
    svg.setAttribute('width', Math.round(cell * (x1 - x0)));
    svg.setAttribute('height', Math.round(cell * (y1 - y0)));
    var defs = el('defs', {}, svg, true), mk = this.id + '-head';
    el('path', {d: 'M0,0 L10,5 L0,10 z', 'class': 'mc-head'},
       el('marker', {id: mk, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 5, markerHeight: 5, orient: 'auto'}, defs, true), true);

    var gi = el('g', {'class': 'mc-input'}, svg, true);
    this.cells = [];
    for (r = 0; r < hp; r++) for (c = 0; c < wp; c++) {
      var inside = r >= p && r < p + st.h && c >= p && c < p + st.w;
      this.cells.push(el('rect', {x: c, y: r, width: 1, height: 1, 'data-r': r, 'data-c': c, 'class': 'cell ' + (inside ? 'in' : 'pad')}, gi, true));
    }
    var span = st.dilation * (st.ks - 1) + 1;
    this.span = el('rect', {width: span, height: span, 'class': 'mc-span'}, svg, true);
    var go = el('g', {'class': 'mc-output'}, svg, true);
    this.outs = [];
    for (r = 0; r < oh; r++) for (c = 0; c < ow; c++)
      this.outs.push(el('rect', {x: ox + c, y: oy + r, width: 1, height: 1, 'data-i': r, 'data-j': c, 'data-k': this.outs.length, 'class': 'out'}, go, true));
    this.link = el('path', {'class': 'mc-link', 'marker-end': 'url(#' + mk + ')'}, svg, true);
    this.layout = {beside: beside, ox: ox, oy: oy, wp: wp, span: span};
    this.tapped = [];
  };

  // Mark the taps of window (i, j), outline its span, colour the output cells and point the arrow at cell (i, j)
  Explorer.prototype.place = function (i, j, tr, tc) {
    var L = this.layout, step = this.state.step, self = this;
    this.tapped.forEach(function (e) { e.classList.remove('tap'); });
    this.tapped = [];
    tr.forEach(function (r) { tc.forEach(function (c) { var e = self.cells[r * L.wp + c]; e.classList.add('tap'); self.tapped.push(e); }); });
    this.span.setAttribute('x', tc[0]); this.span.setAttribute('y', tr[0]);
    this.outs.forEach(function (e, k) { e.setAttribute('class', 'out' + (k < step ? ' done' : '') + (k === step ? ' current' : '')); });
    // The arrow leaves the span's right edge (output beside) or bottom edge (output below) and ends at the cell's edge
    var a = L.beside ? [tc[0] + L.span, tr[0] + L.span / 2, L.ox + j, L.oy + i + 0.5]
                     : [tc[0] + L.span / 2, tr[0] + L.span, L.ox + j + 0.5, L.oy + i];
    var ctl = L.beside ? [(a[0] + a[2]) / 2, Math.min(a[1], a[3]) - 1] : [Math.max(a[0], a[2]) + 1, (a[1] + a[3]) / 2];
    this.link.setAttribute('d', 'M' + a[0] + ',' + a[1] + ' Q' + ctl[0] + ',' + ctl[1] + ' ' + a[2] + ',' + a[3]);
  };

  // ---- Start -------------------------------------------------------------------------------------------------

  var mountAll = B.mount('figure.mc-explorer', 'explorer', function (f) { new Explorer(f); });
  window.MiniconvExplorer = {outSize: outSize, FORMULA: FORMULA, mountAll: mountAll};
})();

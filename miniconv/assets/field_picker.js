/* miniconv's receptive-field picker: click or tap any unit of any convolution of `simple_cnn`, or reach it with the
 * keyboard (Tab to a layer, then the arrow keys, Home and End), and see the block it reads in the input and in every
 * layer before it. Plain JavaScript and SVG: nothing fetched.
 *
 * The blocks are not computed here: `field_picker()` in miniconv.receptive_field writes, for every unit of every
 * layer, what the chapter's `unit_fields` says it reads (first and last row, first and last column, clipped to each
 * grid), and this script only draws them. tests/test_widgets.py clicks every unit in headless Chromium and compares
 * the boxes drawn with `unit_fields`.
 *
 * Markup: <figure class="mc-widget mc-field_picker"> with its data as JSON (<script type="application/json"
 * class="mc-data">: {grids: [{name, label, h, w}], img, fields: {name: [[[r0, r1, c0, c1] for each earlier grid] for
 * each unit, row by row]}, start: [name, i, j]}) and a <figcaption>. What a figure shows is also written on it: the
 * selected unit on the figure (data-layer, data-i, data-j), and each box as an SVG rect with class "mc-box" and
 * data-grid, data-r0, data-r1, data-c0, data-c1. `fig.picker.select(name, i, j)` selects a unit from a script.
 */
(function () {
  'use strict';
  if (window.MiniconvPicker) { window.MiniconvPicker.mountAll(); return; }

  var B = window.MiniconvBase, el = B.el, bytes = B.bytes, n = 0;  // widget_base.js, inlined before this script
  var WIDTH = [224, 336, 168, 128, 80, 48];  // CSS pixels of each grid, the input first: units of the layers are >= 24 px

  function span(a, b, what) { return a === b ? what + ' ' + a : what + 's ' + a + '–' + b; }

  function Picker(fig) {
    var self = this, id = 'mc-fp-' + (++n);
    var data = JSON.parse(fig.querySelector('script.mc-data').textContent);
    this.fig = fig; fig.picker = this;
    this.grids = data.grids; this.fields = data.fields;
    this.sel = {};  // the last unit chosen in each layer
    var before = B.before(fig), box = before(el('div', {'class': 'mc-grids'}));
    this.status = before(el('p', {'class': 'mc-status', id: id + '-status', 'aria-live': 'polite'}));
    var img = bytes(data.img);
    this.views = this.grids.map(function (g, k) {
      var wrap = B.panel(box, g.label + ' · ' + g.h + '×' + g.w, id + '-t' + k);
      var layer = k > 0;
      var svg = el('svg', {viewBox: '0 0 ' + g.w + ' ' + g.h, width: WIDTH[Math.min(k, WIDTH.length - 1)],
                           'data-grid': g.name, role: 'img', 'aria-labelledby': id + '-t' + k}, wrap, true);
      if (layer) { svg.setAttribute('tabindex', '0'); svg.setAttribute('aria-describedby', id + '-status'); }
      var cells = [];
      for (var i = 0; i < g.h; i++) for (var j = 0; j < g.w; j++) {
        var a = {x: j, y: i, width: 1, height: 1};
        if (layer) { a['class'] = 'mc-unit'; a['data-i'] = i; a['data-j'] = j; }
        else { var v = img[i * g.w + j]; a.fill = 'rgb(' + v + ',' + v + ',' + v + ')'; }
        cells.push(el('rect', a, svg, true));
      }
      var view = {grid: g, svg: svg, cells: cells, box: el('rect', {'class': 'mc-box' + (layer ? '' : ' mc-input'), 'data-grid': g.name,
                                                                    visibility: 'hidden'}, svg, true)};
      if (layer) {
        // On the press, not the click: focusing the grid may scroll it, and the release would then land on another unit
        svg.addEventListener('pointerdown', function (e) {
          var t = e.target;
          if (!(t.dataset && t.dataset.i !== undefined)) return;
          e.preventDefault();
          self.select(g.name, +t.dataset.i, +t.dataset.j);
          svg.focus({preventScroll: true});
        });
        svg.addEventListener('focus', function () { if (self.layer !== g.name) self.select(g.name); });
        svg.addEventListener('keydown', function (e) { self.key(g, e); });
      }
      return view;
    });
    var s = data.start;
    this.select(s[0], s[1], s[2]);
  }

  Picker.prototype.key = function (g, e) {
    var u = this.sel[g.name] || [0, 0], i = u[0], j = u[1];
    var mv = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]}[e.key];
    if (mv) { i = Math.max(0, Math.min(g.h - 1, i + mv[0])); j = Math.max(0, Math.min(g.w - 1, j + mv[1])); }
    else if (e.key === 'Home') { i = 0; j = 0; }
    else if (e.key === 'End') { i = g.h - 1; j = g.w - 1; }
    else return;
    e.preventDefault();
    this.select(g.name, i, j);
  };

  // Select unit (i, j) of layer `name` (its last one, or its centre, when i is left out); return what is drawn
  Picker.prototype.select = function (name, i, j) {
    var k = this.grids.map(function (g) { return g.name; }).indexOf(name);
    if (k < 1) throw new Error('no layer ' + name);
    var g = this.grids[k];
    if (i === undefined) { var u = this.sel[name] || [Math.floor((g.h - 1) / 2), Math.floor((g.w - 1) / 2)]; i = u[0]; j = u[1]; }
    this.sel[name] = [i, j]; this.layer = name;
    var blocks = this.fields[name][i * g.w + j], words = [];
    this.views.forEach(function (v, m) {
      var b = m < k ? blocks[m] : null, gr = v.grid;
      if (m > 0) v.cells.forEach(function (c, p) {
        var ci = Math.floor(p / gr.w), cj = p % gr.w;
        c.classList.toggle('mc-sel', m === k && ci === i && cj === j);
        c.classList.toggle('mc-in', !!b && ci >= b[0] && ci <= b[1] && cj >= b[2] && cj <= b[3]);
      });
      if (b) {
        var a = {x: b[2], y: b[0], width: b[3] - b[2] + 1, height: b[1] - b[0] + 1, visibility: 'visible',
                 'data-r0': b[0], 'data-r1': b[1], 'data-c0': b[2], 'data-c1': b[3]};
        for (var key in a) v.box.setAttribute(key, a[key]);
        words.push(span(b[0], b[1], 'row') + ' and ' + span(b[2], b[3], 'column') + ' of ' + (m === 0 ? 'the input' : gr.label + "'s output"));
      } else v.box.setAttribute('visibility', 'hidden');
    });
    var d = this.fig.dataset;
    d.layer = name; d.i = i; d.j = j;
    this.status.textContent = g.label + ', unit (' + i + ', ' + j + '), reads ' + words.join('; ') + '.';
    return {layer: name, i: i, j: j, boxes: this.boxes()};
  };

  // {grid: [r0, r1, c0, c1]} of the boxes drawn now
  Picker.prototype.boxes = function () {
    var res = {};
    Array.prototype.forEach.call(this.fig.querySelectorAll('rect.mc-box[visibility=visible]'), function (r) {
      var d = r.dataset;
      res[d.grid] = [+d.r0, +d.r1, +d.c0, +d.c1];
    });
    return res;
  };

  window.MiniconvPicker = {mountAll: B.mount('figure.mc-field_picker', 'picker', function (f) { new Picker(f); })};
})();

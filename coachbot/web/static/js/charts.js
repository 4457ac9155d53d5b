/* Draws every chart on the page with the vendored uPlot, from the JSON data island the
   chart() macro in _macros.html writes next to it (<script type="application/json">): no
   inline script, so the Content-Security-Policy (default-src 'self') needs no exception.
   Each chart gets titled axes with units and a legend that shows the values under the
   cursor; the table beside the chart carries the same numbers for screen readers. */
(function () {
  "use strict";

  // Colours at least 3:1 against white (WCAG 1.4.11, graphics), distinct in lightness too.
  var PALETTE = ["#005ea2", "#b50909", "#4d8055", "#8168b3", "#936f38", "#1a4480"];
  var INK = "#1b1b1b";
  var GRID = "#dfe1e2";
  var FONT = '13px "Source Sans Pro Web", "Helvetica Neue", Helvetica, Arial, sans-serif';
  var AXIS_FONT = 'bold 13px "Source Sans Pro Web", "Helvetica Neue", Helvetica, Arial, sans-serif';

  function toSeconds(value) {
    // Date-only values ("2026-11-30") read as midnight UTC; date-times keep their offset.
    var text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? value + "T00:00:00Z" : value;
    return Date.parse(text) / 1000;
  }

  function formatValue(unit) {
    return function (_u, value) {
      if (value == null) return "–";
      var rounded = Math.round(value * 10) / 10;
      return unit === "%" ? rounded + "%" : rounded + (unit ? " " + unit : "");
    };
  }

  function axes(spec, categories) {
    var x = {
      label: spec.xLabel,
      labelFont: AXIS_FONT,
      font: FONT,
      stroke: INK,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
    };
    if (categories) {
      // A label per category while they fit (about 56 px each), else every n-th one.
      x.splits = function (u) {
        var width = u.bbox.width / (window.devicePixelRatio || 1);
        var step = Math.max(1, Math.ceil((categories.length * 56) / Math.max(width, 1)));
        var splits = [];
        for (var i = 0; i < categories.length; i += step) splits.push(i);
        return splits;
      };
      x.values = function (_u, splits) {
        return splits.map(function (i) { return categories[i] === undefined ? "" : categories[i]; });
      };
    }
    var y = {
      label: spec.yLabel,
      labelFont: AXIS_FONT,
      font: FONT,
      stroke: INK,
      size: 56,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
      values: function (_u, splits) {
        return splits.map(function (v) { return spec.unit === "%" ? v + "%" : String(v); });
      },
    };
    if (wholeNumbers(spec)) y.incrs = WHOLE_STEPS;
    return [x, y];
  }

  // Counts tick in whole steps: "0.25 texts" would read as nonsense.
  var WHOLE_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];

  function wholeNumbers(spec) {
    return spec.unit !== "%" && spec.series.every(function (s) {
      return s.values.every(function (v) { return v == null || Math.round(v) === v; });
    });
  }

  function seriesOptions(spec) {
    var bars = spec.kind === "bar" && uPlot.paths && uPlot.paths.bars;
    var count = spec.series.length;
    var opts = [{ label: spec.xLabel, value: spec.xKind === "category"
      ? function (_u, i) { return i == null ? "–" : spec.x[Math.round(i)]; } : undefined }];
    spec.series.forEach(function (s, index) {
      var colour = PALETTE[index % PALETTE.length];
      var option = {
        label: s.label,
        stroke: colour,
        width: 2,
        value: formatValue(spec.unit),
        spanGaps: false,
        points: { show: true, size: 5, fill: colour },
      };
      if (bars) {
        // Several series share each category slot side by side: in x data units, series
        // `index` of `count` starts at i - 0.4 + index * width and is `width` wide.
        var width = 0.8 / count;
        option.paths = uPlot.paths.bars({ disp: {
          x0: { unit: 1, values: function (u) {
            return u.data[0].map(function (i) { return i - 0.4 + index * width; });
          } },
          size: { unit: 1, values: function (u) { return u.data[0].map(function () { return width; }); } },
        } });
        option.fill = colour;
        option.points = { show: false };
      }
      opts.push(option);
    });
    return opts;
  }

  function build(container) {
    var island = document.getElementById(container.getAttribute("data-chart"));
    if (!island || typeof uPlot === "undefined") return;
    var spec = JSON.parse(island.textContent);
    var categories = spec.xKind === "category" ? spec.x : null;
    var xs = categories ? spec.x.map(function (_c, i) { return i; }) : spec.x.map(toSeconds);
    var data = [xs].concat(spec.series.map(function (s) { return s.values; }));
    var opts = {
      title: "",
      width: Math.max(container.clientWidth, 280),
      height: spec.height || 240,
      series: seriesOptions(spec),
      axes: axes(spec, categories),
      scales: {
        x: categories ? { time: false, range: [-0.5, categories.length - 0.5] } : { time: true },
        y: { range: function (_u, min, max) {
          var top = max > 0 ? max * 1.1 : 1;
          return [Math.min(0, min), spec.unit === "%" ? Math.max(100, top) : top];
        } },
      },
      legend: { show: true, live: true },
      cursor: { focus: { prox: 16 } },
    };
    if (!categories && spec.timezone) {
      opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1000), spec.timezone); };
    }
    var chart = new uPlot(opts, data, container);
    container.chart = chart; // the uPlot instance, for the browser tests and the console
    container.setAttribute("data-chart-ready", "true");
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var width = Math.max(container.clientWidth, 280);
        if (width !== chart.width) chart.setSize({ width: width, height: opts.height });
      }).observe(container);
    }
  }

  function start() {
    var containers = document.querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(containers, build);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

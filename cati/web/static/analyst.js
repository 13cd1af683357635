// The analyst's charts, drawn with Apache ECharts (vendored: static/vendor/echarts, Apache-2.0).
// Each chart is a <div data-chart="caterpillar|rank|quadrant" data-source="<id of a JSON script>">; the page
// embeds the numbers it also shows in its tables, so hovering a point shows the very figures of the table.
(function () {
  "use strict";

  function fmt(v, d) { return v === null || v === undefined ? "—" : Number(v).toFixed(d === undefined ? 2 : d); }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  var TIER_COLOURS = {above: "#1a7f4b", below: "#c0392b", not_different: "#5b6b8c"};

  // Enterprise (or industry) scores with their 95 % intervals, sorted by score: a caterpillar.
  function caterpillar(el, data) {
    var items = data.items || [], L = data.labels || {};
    var cats = items.map(function (d) { return d.name; });
    var option = {
      animation: false,
      grid: {left: 56, right: 24, top: 24, bottom: 40},
      tooltip: {trigger: "item", formatter: function (p) {
        var d = items[p.dataIndex];
        return esc(d.name) + "<br>" + esc(L.score) + " " + fmt(d.score) + "<br>" + esc(L.interval) + " [" + fmt(d.low) + ", " + fmt(d.high) + "]" +
          "<br>" + esc(L.rank) + " " + d.rank + " (" + (d.rank_low || "—") + "–" + (d.rank_high || "—") + ")<br>n = " + d.n;
      }},
      xAxis: {type: "category", data: cats, axisLabel: {show: items.length <= 40, rotate: 60, fontSize: 10}},
      yAxis: {type: "value", scale: true, name: L.score},
      dataZoom: items.length > 80 ? [{type: "inside"}, {type: "slider", height: 16, bottom: 4}] : [],
      series: [
        {type: "custom", name: L.interval, renderItem: function (params, api) {
          var x = api.value(0), lo = api.coord([x, api.value(1)]), hi = api.coord([x, api.value(2)]);
          return {type: "line", shape: {x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1]}, style: {stroke: "#9aa6bf", lineWidth: 1.5}};
        }, data: items.map(function (d, i) { return [i, d.low, d.high]; }), encode: {x: 0, y: [1, 2]}, z: 1},
        {type: "scatter", name: L.score, symbolSize: 6, z: 2,
          data: items.map(function (d, i) { return {value: [i, d.score], itemStyle: {color: TIER_COLOURS[d.tier] || "#1f5aa6"}}; })}
      ]
    };
    option.series[0].tooltip = {formatter: option.tooltip.formatter};
    return option;
  }

  // Ranks with their bootstrap intervals: rank (x) against the interval of ranks, one row per unit.
  function rankChart(el, data) {
    var items = (data.items || []).slice().sort(function (a, b) { return a.rank - b.rank; });
    var L = data.labels || {};
    var names = items.map(function (d) { return d.industry || d.name; });
    return {
      animation: false,
      grid: {left: 120, right: 24, top: 16, bottom: 36},
      tooltip: {trigger: "item", formatter: function (p) {
        var d = items[p.dataIndex];
        return esc(d.industry || d.name) + "<br>" + esc(L.rank) + " " + d.rank + "<br>" + esc(L.rank_interval) + " " +
          (d.rank_low || "—") + "–" + (d.rank_high || "—") + "<br>" + esc(L.score) + " " + fmt(d.score);
      }},
      yAxis: {type: "category", data: names, inverse: true, axisLabel: {show: items.length <= 40, fontSize: 11}},
      xAxis: {type: "value", name: L.rank, min: 1, max: Math.max(items.length, 1), inverse: false},
      dataZoom: items.length > 60 ? [{type: "inside", yAxisIndex: 0}, {type: "slider", yAxisIndex: 0, width: 14, right: 2}] : [],
      series: [
        {type: "custom", renderItem: function (params, api) {
          var y = api.value(0), a = api.coord([api.value(1), y]), b = api.coord([api.value(2), y]);
          return {type: "line", shape: {x1: a[0], y1: a[1], x2: b[0], y2: b[1]}, style: {stroke: "#9aa6bf", lineWidth: 3}};
        }, data: items.map(function (d, i) { return [i, d.rank_low || d.rank, d.rank_high || d.rank]; }), encode: {y: 0, x: [1, 2]}, z: 1},
        {type: "scatter", symbolSize: 7, z: 2, data: items.map(function (d, i) { return {value: [d.rank, i], itemStyle: {color: TIER_COLOURS[d.tier] || "#1f5aa6"}}; })}
      ]
    };
  }

  // The driver quadrant: relative weight (importance, y) against noise-corrected volatility tau (x), cut at
  // the level's means; hover gives each quadrant's bootstrap probability.
  function quadrant(el, data) {
    var items = data.items || [], L = data.labels || {}, Q = data.qnames || {};
    return {
      animation: false,
      grid: {left: 64, right: 40, top: 30, bottom: 48},
      tooltip: {trigger: "item", formatter: function (p) {
        var d = items[p.dataIndex], lines = [esc(d.code + " " + d.name), esc(L.weight) + " " + fmt(d.weight, 4), esc(L.tau) + " " + fmt(d.tau), esc(L.quadrant) + " " + esc(Q[d.quadrant] || "—")];
        Object.keys(d.probs || {}).forEach(function (k) { lines.push(esc(Q[k] || k) + " " + (d.probs[k] === null ? "—" : Math.round(100 * d.probs[k]) + "%")); });
        return lines.join("<br>");
      }},
      xAxis: {type: "value", name: L.tau, scale: true, nameLocation: "middle", nameGap: 28},
      yAxis: {type: "value", name: L.weight, scale: true},
      series: [{type: "scatter", symbolSize: 10, data: items.map(function (d) { return [d.tau, d.weight]; }),
        label: {show: true, position: "right", formatter: function (p) { return items[p.dataIndex].code; }},
        markLine: {silent: true, symbol: "none", lineStyle: {type: "dashed", color: "#8893a8"},
          data: [{xAxis: data.cut_tau}, {yAxis: data.cut_weight}].filter(function (m) { return m.xAxis !== null && m.yAxis !== null; })}}]
    };
  }

  var BUILDERS = {caterpillar: caterpillar, rank: rankChart, quadrant: quadrant};

  function draw() {
    if (!window.echarts) { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var src = document.getElementById(el.getAttribute("data-source"));
      if (!src) { return; }
      var data = JSON.parse(src.textContent);
      var build = BUILDERS[el.getAttribute("data-chart")];
      if (!build || !(data.items || []).length) { return; }
      var chart = window.echarts.init(el, null, {renderer: "canvas"});
      chart.setOption(build(el, data));
      el.setAttribute("data-drawn", "1");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();

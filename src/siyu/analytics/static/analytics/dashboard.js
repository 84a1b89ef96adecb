/* The operator's dashboard: draws the trend and channel charts with the Chart.js unfold ships,
   numbers formatted for the page's language (¥, thousands separators). */
(function () {
  "use strict";

  function draw() {
    var root = document.getElementById("siyu-dashboard");
    if (!root || !window.Chart) return;
    var lang = document.documentElement.lang === "en" ? "en-US" : "zh-CN";
    var money = new Intl.NumberFormat(lang, { style: "currency", currency: "CNY", currencyDisplay: "narrowSymbol", maximumFractionDigits: 0 });
    var count = new Intl.NumberFormat(lang);
    var palette = ["#9333ea", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#6366f1", "#84cc16", "#ec4899"];

    function data(canvas) {
      var spec = JSON.parse(canvas.dataset.chart);
      spec.datasets.forEach(function (set, i) {
        set.data = set.data.map(Number);
        set.borderColor = palette[i % palette.length];
        set.backgroundColor = set.type === "line" || canvas.id === "chart-trend" ? palette[i % palette.length] + "33" : palette;
      });
      return spec;
    }

    var trend = document.getElementById("chart-trend");
    if (trend) {
      var spec = data(trend);
      trend.chart = new window.Chart(trend, {
        type: "line",
        data: spec,
        options: {
          animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
          scales: {
            y: { position: "left", ticks: { callback: function (v) { return money.format(v); } } },
            y1: { position: "right", grid: { drawOnChartArea: false }, ticks: { callback: function (v) { return count.format(v); } } }
          },
          plugins: { tooltip: { callbacks: { label: function (ctx) {
            var set = spec.datasets[ctx.datasetIndex];
            return set.label + ": " + (set.kind === "money" ? money.format(ctx.parsed.y) : count.format(ctx.parsed.y));
          } } } }
        }
      });
    }
    var channels = document.getElementById("chart-channels");
    if (channels) {
      channels.chart = new window.Chart(channels, {
        type: "doughnut",
        data: data(channels),
        options: {
          animation: false, maintainAspectRatio: false,
          plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { label: function (ctx) {
            return ctx.label + ": " + money.format(ctx.parsed);
          } } } }
        }
      });
    }
    root.dataset.chartsReady = "1";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

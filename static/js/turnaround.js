// The turnaround dashboard's two charts, drawn with Chart.js from the page's JSON (json_script):
// no inline script or style (CSP). The same numbers are in the page's tables.
(function () {
  "use strict";
  var source = document.getElementById("turnaround-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var ROUTINE = "#0b5394";
  var STAT = "#c1121f";
  var P90 = "#a15400";
  var MUTED = "rgba(108, 117, 125, 0.35)";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#343a40";
  Chart.defaults.animation = false;
  var LEGEND = { position: "bottom", labels: { usePointStyle: true, boxHeight: 8 } };

  // Vertical dashed lines at the median and 90th percentile, in bars (bar i spans i to i + 1).
  var markers = {
    id: "turnaroundMarkers",
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x;
      var area = chart.chartArea;
      if (x.ticks.length < 2) return;
      var first = x.getPixelForValue(0);
      var step = x.getPixelForValue(1) - first;
      var ctx = chart.ctx;
      [
        [data.histogram.median, "#212529", "median " + data.histogram.median_label],
        [data.histogram.p90, P90, "90th " + data.histogram.p90_label],
      ].forEach(function (marker, i) {
        if (marker[0] === null) return;
        var px = Math.min(first + (marker[0] - 0.5) * step, area.right);
        ctx.save();
        ctx.strokeStyle = marker[1];
        ctx.fillStyle = marker[1];
        ctx.lineWidth = 2;
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.font = "600 12px " + Chart.defaults.font.family;
        var label = marker[2];
        var width = ctx.measureText(label).width;
        var lx = px + 4 + width > area.right ? px - 4 - width : px + 4;
        var ly = area.top + 12 + i * 16;
        // On a white box, so the bars behind don't hide it.
        ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
        ctx.fillRect(lx - 2, ly - 11, width + 4, 15);
        ctx.fillStyle = marker[1];
        ctx.fillText(label, lx, ly);
        ctx.restore();
      });
    },
  };

  var histogram = document.getElementById("turnaround-histogram");
  if (histogram) {
    new Chart(histogram, {
      type: "bar",
      data: {
        labels: data.histogram.labels,
        datasets: [
          { label: "Routine", data: data.histogram.routine, backgroundColor: ROUTINE, stack: "n" },
          { label: "STAT", data: data.histogram.stat, backgroundColor: STAT, stack: "n" },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        categoryPercentage: 1,
        barPercentage: 0.95,
        plugins: { legend: LEGEND, title: { display: true, text: data.segment + " (" + data.unit + ")" } },
        scales: {
          x: { stacked: true, title: { display: true, text: data.unit }, ticks: { maxRotation: 60, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: "count" }, ticks: { precision: 0 } },
        },
      },
      plugins: [markers],
    });
  }

  var trend = document.getElementById("turnaround-trend");
  if (trend) {
    new Chart(trend, {
      data: {
        labels: data.trend.labels,
        datasets: [
          { type: "line", label: "Median", data: data.trend.median, borderColor: ROUTINE, backgroundColor: ROUTINE, yAxisID: "y", spanGaps: true, pointRadius: 2 },
          { type: "line", label: "90th percentile", data: data.trend.p90, borderColor: P90, backgroundColor: P90, borderDash: [6, 4], yAxisID: "y", spanGaps: true, pointRadius: 2 },
          { type: "line", label: "STAT median", data: data.trend.stat_median, borderColor: STAT, backgroundColor: STAT, yAxisID: "y", spanGaps: true, pointRadius: 3, pointStyle: "rectRot" },
          { type: "bar", label: "Volume", data: data.trend.volume, backgroundColor: MUTED, yAxisID: "volume", stack: "v", order: 10 },
          { type: "bar", label: "STAT volume", data: data.trend.stat_volume, backgroundColor: "rgba(193, 18, 31, 0.35)", yAxisID: "volume", stack: "v", order: 10 },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: LEGEND, title: { display: true, text: "Trend (" + data.unit + ")" } },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 60, autoSkip: true } },
          y: { beginAtZero: true, position: "left", title: { display: true, text: data.unit } },
          volume: { beginAtZero: true, stacked: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "volume" }, ticks: { precision: 0 } },
        },
      },
    });
  }
})();

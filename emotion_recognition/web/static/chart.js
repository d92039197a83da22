"use strict";
// Each tracked face's emotion over the last WINDOW_S seconds, drawn on a canvas: one row per emotion,
// one line per track (its colour in the legend), dots sized by confidence. Time is the frames' stamps.

const WINDOW_S = 60;
const GAP_S = 1.5; // a track unseen for longer than this is drawn with a break in its line
const LEGEND_RECENT_S = 10; // the legend lists the tracks seen within this many seconds,
const LEGEND_MAX = 10; // at most this many, newest first
const EMOTION_COLORS = {
  angry: "#dc2828", disgust: "#288c28", fear: "#963ca0", happy: "#ffd200",
  sad: "#1e78c8", surprise: "#ff8c00", neutral: "#bebebe",
};
const TRACK_COLORS = ["#4fc3f7", "#f06292", "#aed581", "#ffb74d", "#ba68c8",
                      "#4db6ac", "#e57373", "#fff176", "#90a4ae", "#7986cb"];

function emotionColor(label) { return EMOTION_COLORS[label] || "#ffffff"; }
function trackColor(id) { return TRACK_COLORS[id % TRACK_COLORS.length]; }

class EmotionChart {
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    this.labels = Object.keys(EMOTION_COLORS);
    this.tracks = new Map(); // track id -> [{t, label, confidence}], oldest first
    this.latest = 0;
  }

  // Add one frame's result ({labels, faces: [{track_id, label, confidence}], stamp}).
  add(result) {
    const t = typeof result.stamp === "number" ? result.stamp : Date.now() / 1000;
    if (Array.isArray(result.labels) && result.labels.length) this.labels = result.labels;
    if (t < this.latest - WINDOW_S) this.tracks.clear(); // the source's clock jumped back
    this.latest = Math.max(this.latest, t);
    for (const face of result.faces) {
      const id = face.track_id ?? 0;
      if (!this.tracks.has(id)) this.tracks.set(id, []);
      this.tracks.get(id).push({ t, label: face.label, confidence: face.confidence });
    }
    this.prune();
  }

  prune() {
    const oldest = this.latest - WINDOW_S;
    for (const [id, points] of this.tracks) {
      while (points.length && points[0].t < oldest) points.shift();
      if (!points.length) this.tracks.delete(id);
    }
  }

  // Points per track, for people debugging and for the page tests.
  seriesSizes() {
    return Object.fromEntries([...this.tracks].map(([id, points]) => [id, points.length]));
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const area = { left: 66, right: width - 8, top: 6, bottom: height - 22 };
    this.drawAxes(ctx, area);
    for (const [id, points] of this.tracks) this.drawTrack(ctx, area, id, points);
    this.drawLegend();
  }

  x(area, t) {
    return area.left + (area.right - area.left) * (1 - (this.latest - t) / WINDOW_S);
  }

  y(area, label) {
    const row = (area.bottom - area.top) / this.labels.length;
    return area.top + row * (this.labels.indexOf(label) + 0.5);
  }

  drawAxes(ctx, area) {
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const label of this.labels) {
      const y = this.y(area, label);
      ctx.strokeStyle = "#2c343d";
      ctx.beginPath(); ctx.moveTo(area.left, y); ctx.lineTo(area.right, y); ctx.stroke();
      ctx.fillStyle = emotionColor(label);
      ctx.textAlign = "right";
      ctx.fillText(label, area.left - 6, y);
    }
    ctx.fillStyle = "#8d98a3";
    ctx.textAlign = "center";
    for (let s = 0; s <= WINDOW_S; s += 15) {
      const x = this.x(area, this.latest - WINDOW_S + s);
      ctx.textAlign = s === WINDOW_S ? "right" : "center";
      ctx.fillText(s === WINDOW_S ? "now" : `-${WINDOW_S - s} s`, x, area.bottom + 12);
    }
  }

  drawTrack(ctx, area, id, points) {
    ctx.strokeStyle = trackColor(id);
    ctx.lineWidth = 2;
    ctx.beginPath();
    let previous = null;
    for (const p of points) {
      const x = this.x(area, p.t), y = this.y(area, p.label);
      if (previous === null || p.t - previous.t > GAP_S) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      previous = p;
    }
    ctx.stroke();
    ctx.fillStyle = trackColor(id);
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(this.x(area, p.t), this.y(area, p.label), 1.5 + 2.5 * p.confidence, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  drawLegend() {
    const recent = [...this.tracks]
      .filter(([, points]) => points[points.length - 1].t >= this.latest - LEGEND_RECENT_S)
      .sort(([a], [b]) => b - a)
      .slice(0, LEGEND_MAX);
    const items = recent.map(([id, points]) => {
      const last = points[points.length - 1];
      const item = document.createElement("li");
      item.dataset.track = id;
      item.style.setProperty("--swatch", trackColor(id));
      item.textContent = `#${id} ${last.label} ${Math.round(last.confidence * 100)}%`;
      return item;
    });
    this.legend.replaceChildren(...items);
  }
}

window.EmotionChart = EmotionChart;
window.emotionColor = emotionColor;

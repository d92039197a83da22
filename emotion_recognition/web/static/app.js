"use strict";
// The live page: the annotated MJPEG stream, the faces of the newest frame and the chart, fed by the
// server's events (GET api/v1/events, one JSON result per frame).

const page = {
  chart: new EmotionChart(document.getElementById("chart"), document.getElementById("legend")),
  frames: 0,        // results received
  lastResult: null, // the newest result
  source: "",
};
window.emotionWeb = page;

function faceItem(face) {
  const item = document.createElement("li");
  item.dataset.track = face.track_id ?? "";
  item.dataset.label = face.label;
  const percent = Math.round(face.confidence * 100);
  const id = document.createElement("span");
  id.textContent = face.track_id !== undefined ? `#${face.track_id}` : "";
  const label = document.createElement("strong");
  label.className = "label";
  label.textContent = face.label;
  label.style.color = emotionColor(face.label);
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${percent}%`;
  fill.style.background = emotionColor(face.label);
  bar.append(fill);
  const value = document.createElement("span");
  value.className = "confidence";
  value.textContent = `${percent}%`;
  item.append(id, label, bar, value);
  return item;
}

function showFaces(result) {
  document.getElementById("faces").replaceChildren(...result.faces.map(faceItem));
  document.getElementById("no-faces").hidden = result.faces.length > 0;
}

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; page.chart.draw(); });
}

let rateStart = performance.now(), rateFrames = 0, rate = 0;
function showStatus(text) {
  const now = performance.now();
  if (now - rateStart > 1000) {
    rate = (rateFrames * 1000) / (now - rateStart);
    rateStart = now;
    rateFrames = 0;
  }
  const speed = rate > 0 ? ` · ${rate.toFixed(1)} frames/s` : "";
  document.getElementById("status").textContent = text || `${page.source}${speed} · ${page.frames} frames`;
}

function onResult(event) {
  const result = JSON.parse(event.data);
  page.frames += 1;
  rateFrames += 1;
  page.lastResult = result;
  showFaces(result);
  page.chart.add(result);
  scheduleDraw();
  showStatus();
}

function connectEvents() {
  const events = new EventSource("api/v1/events");
  events.onmessage = onResult;
  events.onerror = () => showStatus("reconnecting…");
}

function keepStreamAlive() {
  const stream = document.getElementById("stream");
  stream.addEventListener("error", () => {
    setTimeout(() => { stream.src = `stream.mjpg?t=${Date.now()}`; }, 1000);
  });
}

fetch("api/v1/health").then((r) => r.json()).then((health) => {
  page.source = `source: ${health.source}`;
  showStatus();
}).catch(() => showStatus("server unreachable"));
new ResizeObserver(scheduleDraw).observe(document.getElementById("chart"));
keepStreamAlive();
connectEvents();

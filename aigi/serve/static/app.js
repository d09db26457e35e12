"use strict";
// The aigi page: no framework, no CDN; talks to /v1/detect and /v1/detectors on the same origin.
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function row(label, value) { return el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, value)); }

// The unsure interval around a threshold, as the server decides it (aigi.records.unsure_interval).
function unsureInterval(t, band) {
  return band > 0 ? [t - Math.min(band, t / 2), t + Math.min(band, (1 - t) / 2)] : [t, t];
}
let band = 0;
let heatmaps = false;  // ask for heatmaps only when the served detector draws one (an evidence map or a mask head)

function preview(file, rec) {
  // the server's heatmap when it sent one; else the file itself, or a placeholder where this browser
  // cannot show the format (HEIC, AVIF on some browsers)
  const img = el("img", { src: rec.heatmap_png || URL.createObjectURL(file), alt: (rec.heatmap_png ? "heatmap overlay of " : "") + rec.path });
  img.addEventListener("error", () => img.replaceWith(el("div", { class: "placeholder" }, "no preview of this " + (rec.format || "file") + " in this browser")));
  return img;
}

function card(file, rec) {
  const c = el("div", { class: "card", "data-file": rec.path });
  c.append(preview(file, rec));
  c.append(el("div", { class: "verdict " + rec.verdict, "data-verdict": rec.verdict }, rec.verdict));
  const t = el("table");
  t.append(row("file", rec.path));
  if (rec.verdict === "error") {
    t.append(row("error", rec.error));
  } else {
    t.append(row("p(AI-generated)", rec.p_fake.toFixed(3)));
    const [lo, hi] = unsureInterval(rec.threshold, band);
    t.append(row("based on", "fake at p ≥ " + rec.threshold.toFixed(3) + (hi > lo ? "; unsure between " + lo.toFixed(3) + " and " + hi.toFixed(3) : "")));
    if (rec.provenance && rec.provenance.length) {
      const said = rec.provenance.map((f) => (f.generator || f.says) + " (" + f.kind + (f.verified ? ", verified" : "") + "): " + f.detail);
      t.append(row("content credentials / metadata say", said.join("; ")));
      if (rec.detector_verdict && rec.detector_verdict !== rec.verdict) t.append(row("pixels alone say", rec.detector_verdict));
    }
    if (rec.reason) t.append(row(rec.verdict === "unsure" ? "unsure because" : "decided by", rec.reason));
    if (rec.note) t.append(row("note", rec.note));
    if (rec.attribution) {
      const a = rec.attribution;
      const top = a.top3.map(([f, p]) => f + " " + Number(p).toFixed(2)).join(", ");
      t.append(row("likely family (learned, not proof)", (a.family === "unknown" ? "unknown — unlike every family it knows; nearest: " : a.family + "; ") + top));
    }
    if (rec.branch_scores) for (const [k, v] of Object.entries(rec.branch_scores)) t.append(row(k + " branch", Number(v).toFixed(3)));
    if (rec.caption) t.append(row("caption", rec.caption));
    if (rec.misalignment) {
      t.append(row("misalignment", "global " + rec.misalignment.global.toFixed(3)));
      for (const [o, v] of Object.entries(rec.misalignment.local)) t.append(row("  " + o, v.toFixed(3)));
    }
    if (rec.manipulated_fraction !== undefined) t.append(row("manipulated area", (100 * rec.manipulated_fraction).toFixed(1) + "%"));
    t.append(row("detector", rec.detector_version));
  }
  c.append(t);
  return c;
}

async function send(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const headers = {};
  const key = $("apikey").value.trim();
  if (key) headers["X-API-Key"] = key;
  $("status").textContent = "scoring " + files.length + " image(s)…";
  try {
    const r = await fetch(heatmaps ? "/v1/detect?heatmap=true" : "/v1/detect", { method: "POST", body: form, headers });
    const body = await r.json();
    if (!body.results) { $("status").textContent = "error: " + body.error.message; return; }
    $("status").textContent = body.error ? "error: " + body.error.message : "done: " + body.results.length + " image(s)";
    // newest upload first, each upload's images in the order they were sent
    const batch = document.createDocumentFragment();
    body.results.forEach((rec, i) => batch.append(card(files[i], rec)));
    $("results").prepend(batch);
  } catch (e) {
    $("status").textContent = "error: " + e;
  }
}

$("files").addEventListener("change", (e) => {
  const files = [...e.target.files];
  e.target.value = "";  // so that picking the same file again is a new upload
  send(files);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); });

fetch("/v1/detectors").then((r) => r.json()).then((d) => {
  const s = d.serving;
  band = s.unsure_band;
  heatmaps = Boolean(s.has_map);
  const [lo, hi] = unsureInterval(s.threshold, band);
  $("serving").textContent = "detector " + s.version + ", " + s.calibration + " calibration: fake at p ≥ " +
    s.threshold.toFixed(3) + (hi > lo ? ", unsure for " + lo.toFixed(3) + " < p < " + hi.toFixed(3) : "");
}).catch(() => { $("serving").textContent = "cannot reach the server"; });

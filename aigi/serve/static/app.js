"use strict";
// The aigi page: no framework, no CDN; talks to /v1/detect and /v1/detectors on the same origin.
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function row(label, value) { return el("tr", {}, el("td", {}, label), el("td", {}, value)); }

function card(file, rec) {
  const c = el("div", { class: "card", "data-file": rec.path });
  const src = rec.heatmap_png || URL.createObjectURL(file);
  c.append(el("img", { src, alt: rec.heatmap_png ? "heatmap overlay of " + rec.path : rec.path }));
  c.append(el("div", { class: "verdict " + rec.verdict, "data-verdict": rec.verdict }, rec.verdict));
  const t = el("table");
  t.append(row("file", rec.path));
  if (rec.verdict === "error") {
    t.append(row("error", rec.error));
  } else {
    t.append(row("p(AI-generated)", rec.p_fake.toFixed(3) + " (threshold " + rec.threshold.toFixed(3) + ")"));
    if (rec.reason) t.append(row("unsure because", rec.reason));
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
    const r = await fetch("/v1/detect?heatmap=true", { method: "POST", body: form, headers });
    const body = await r.json();
    if (!body.results) { $("status").textContent = "error: " + body.error.message; return; }
    $("status").textContent = body.error ? "error: " + body.error.message : "done: " + body.results.length + " image(s)";
    body.results.forEach((rec, i) => $("results").prepend(card(files[i], rec)));
  } catch (e) {
    $("status").textContent = "error: " + e;
  }
}

$("files").addEventListener("change", (e) => send([...e.target.files]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); });

fetch("/v1/detectors").then((r) => r.json()).then((d) => {
  const s = d.serving;
  $("serving").textContent = "detector " + s.version + ", threshold " + s.threshold.toFixed(3) +
    ", " + s.calibration + " calibration, unsure within " + s.unsure_band + " of the threshold";
}).catch(() => { $("serving").textContent = "cannot reach the server"; });

// glioseg viewer: upload a case, follow its job, explore the segmentation in NiiVue.
"use strict";

const CLASS_COLOURS = { 1: [26, 204, 51], 2: [230, 38, 38], 3: [255, 217, 0] }; // edema, core, enhancing (as the report)
const LAYOUTS = { axial: 0, coronal: 1, sagittal: 2, multi: 3, render: 4 };
const $ = (id) => document.getElementById(id);

const viewer = { nv: null, job: null, classes: {}, visible: { 1: true, 2: true, 3: true } };
window.glioseg = viewer; // for tests and the curious

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").className = state;
  $("status").dataset.status = state;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function labelColormap() {
  const R = [0], G = [0], B = [0], A = [0], I = [0], labels = ["background"];
  for (const [value, name] of Object.entries(viewer.classes)) {
    const [r, g, b] = CLASS_COLOURS[value] || [200, 200, 200];
    R.push(r); G.push(g); B.push(b); A.push(viewer.visible[value] ? 255 : 0); I.push(Number(value)); labels.push(name);
  }
  return { R, G, B, A, I, labels };
}

function applyOverlayStyle() {
  const nv = viewer.nv;
  if (!nv || nv.volumes.length < 2) return;
  nv.volumes[1].setColormapLabel(labelColormap());
  nv.setOpacity(1, Number($("opacity").value));
  nv.updateGLVolume();
}

async function showJob(job) {
  viewer.job = job;
  setStatus(`loading ${job.case_id} ...`, "loading");
  document.body.dataset.ready = "";
  const base = `/api/jobs/${job.id}/files/`;
  const background = $("background").value;
  await viewer.nv.loadVolumes([
    { url: base + background, name: `${background}.nii.gz` },
    { url: base + "overlay", name: "overlay.nii.gz", opacity: Number($("opacity").value) },
  ]);
  applyOverlayStyle();
  if (job.centre_mm) goTo(job.centre_mm);
  const rows = Object.entries(job.volumes_ml).map(
    ([name, ml]) => `<tr><td>${name}</td><td class="number" id="volume-${name}">${ml.toFixed(2)}</td><td>mL</td></tr>`);
  $("volumes").tBodies[0].innerHTML = rows.join("");
  showLesions(job.lesions || []);
  showReview(job.review);
  $("download").href = base + "segmentation";
  $("download").hidden = false;
  setStatus(`${job.case_id}: segmentation shown`, "done");
  document.body.dataset.ready = job.id;
}

function showReview(review) {
  // the review flag (glioseg.inference.review): a banner where the model doubts its enhancing tumour, or where the
  // case lacked a sequence (which regions are then unreliable)
  const banner = $("review");
  banner.hidden = !(review && review.review_advised);
  if (banner.hidden) return (banner.textContent = "");
  const absent = (review.absent || "").split(" ").filter(Boolean);
  const unreliable = (review.unreliable || "").split(" ").filter(Boolean);
  banner.textContent = absent.length
    ? `Review advised: segmented without ${absent.join(" or ")} (the case lacks it); ` +
      (unreliable.length ? `${unreliable.join(", ")} unreliable.` : "the other regions as the model card measured.")
    : `Review advised (score ${review.review_score.toFixed(2)}): the model is unsure of the enhancing tumour. ` +
      "Check enhancing tumour and tumour core before using these numbers.";
}

function goTo(mm) {
  viewer.nv.scene.crosshairPos = viewer.nv.mm2frac(mm);
  viewer.nv.drawScene();
}

function showLesions(lesions) {
  const body = $("lesions").tBodies[0];
  body.innerHTML = lesions.length ? "" : "<tr><td colspan=3>none</td></tr>";
  for (const lesion of lesions) {
    const row = body.insertRow();
    row.id = `lesion-${lesion.kind}-${lesion.lesion}`;
    const diameters = `${lesion.longest_diameter_mm.toFixed(0)} x ${lesion.perpendicular_diameter_mm.toFixed(0)}`;
    row.innerHTML = `<td>${lesion.kind} ${lesion.lesion}</td><td class="number">${lesion.volume_ml.toFixed(2)}</td>` +
      `<td class="number">${diameters}${lesion.measurable ? "" : " (not measurable)"}</td>`;
    row.onclick = () => goTo(lesion.centre_mm);
  }
}

async function follow(job) {
  while (job.status === "queued" || job.status === "running") {
    setStatus(`${job.title}: ${job.stage}`, job.status);
    await new Promise((resolve) => setTimeout(resolve, 500));
    job = await api(`/api/jobs/${job.id}`);
  }
  refreshJobs();
  if (job.status === "failed") setStatus(`${job.title}: ${job.error}`, "failed");
  else await showJob(job);
}

async function upload(event) {
  event.preventDefault();
  const files = $("files").files;
  if (!files.length) return setStatus("choose files first", "failed");
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  setStatus("uploading ...", "uploading");
  try {
    await follow(await api("/api/jobs", { method: "POST", body: form }));
  } catch (error) {
    setStatus(`upload refused: ${error.message}`, "failed");
  }
}

async function refreshJobs() {
  const jobs = await api("/api/jobs");
  $("jobs").innerHTML = "";
  for (const job of jobs) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.className = "link";
    button.textContent = `${job.case_id || job.title} (${job.status})`;
    button.disabled = job.status !== "done";
    button.onclick = () => showJob(job);
    item.appendChild(button);
    $("jobs").appendChild(item);
  }
}

async function listSaved() {
  const saved = await api("/api/predictions");
  $("saved").innerHTML = saved.length ? "" : "<li>none (glioseg serve --predictions DIR)</li>";
  for (const entry of saved) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.className = "link";
    button.textContent = `${entry.name}/${entry.case_id}`;
    button.onclick = async () => follow(await api(`/api/predictions/${entry.folder}/${entry.case}`, { method: "POST" }));
    item.appendChild(button);
    $("saved").appendChild(item);
  }
}

function buildControls(info) {
  for (const modality of info.modalities) $("background").add(new Option(modality, modality));
  viewer.classes = info.classes;
  for (const [value, name] of Object.entries(info.classes)) {
    const [r, g, b] = CLASS_COLOURS[value];
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" id="class-${name}" checked> <span class="swatch" ` +
      `style="background: rgb(${r},${g},${b})"></span>${name}`;
    label.querySelector("input").onchange = (event) => { viewer.visible[value] = event.target.checked; applyOverlayStyle(); };
    $("classes").appendChild(label);
    $("classes").appendChild(document.createElement("br"));
  }
  if (!info.can_segment) {
    $("upload").disabled = true;
    setStatus("this server has no model: it shows predictions on disk only", "idle");
  }
  $("upload-form").onsubmit = upload;
  $("opacity").oninput = applyOverlayStyle;
  $("background").onchange = () => viewer.job && showJob(viewer.job);
  $("layout").onchange = () => viewer.nv.setSliceType(LAYOUTS[$("layout").value]);
}

async function main() {
  viewer.nv = new niivue.Niivue({
    backColor: [0, 0, 0, 1], show3Dcrosshair: true, multiplanarShowRender: 1, dragAndDropEnabled: false,
    isColorbar: false, logLevel: "warn", crosshairColor: [0.3, 0.6, 1, 0.8], crosshairWidth: 1,
    onLocationChange: (location) => { $("readout").textContent = location.string; },
  });
  await viewer.nv.attachTo("gl");
  viewer.nv.setSliceType(LAYOUTS.multi);
  buildControls(await api("/api/info"));
  await Promise.all([refreshJobs(), listSaved()]);
  document.body.dataset.started = "yes";
}

main().catch((error) => setStatus(`viewer failed to start: ${error.message}`, "failed"));

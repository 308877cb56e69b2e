// The bdbnet web page: search a gallery with a query image, or browse a saved evaluation.
// Plain JavaScript against the /v1 API; no build step, no external files.
"use strict";

const $ = (id) => document.getElementById(id);
const MARKET_NAME = /^(-?\d+)_c(\d+)/; // 0002_c1s1_000451_03.jpg: identity 2, camera 1
const PAGE = 20;
let auth = false;
let info = null;
let queryFile = null;
let runOffset = 0;

function headers() {
  const key = sessionStorage.getItem("bdbnet-key") || "";
  return auth && key ? { "X-API-Key": key } : {};
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

// Images come from the API by integer index; with an API key they are fetched with it.
function setImage(img, url) {
  if (!auth) { img.src = url; return; }
  api(url).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); })
    .catch((e) => { img.alt = e.message; });
}

function labelOf(text) {
  const m = MARKET_NAME.exec(text);
  return m ? { pid: parseInt(m[1], 10), camid: parseInt(m[2], 10) - 1 } : { pid: null, camid: null };
}

function fmt(x, digits = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function resultItem(item, queryPid) {
  const li = document.createElement("li");
  li.className = "result";
  if (queryPid !== null && item.pid !== null) li.classList.add(item.pid === queryPid ? "match" : "miss");
  li.dataset.rank = item.rank;
  li.dataset.index = item.index;
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = `rank ${item.rank}`;
  img.title = item.path;
  setImage(img, `/v1/gallery/${item.index}/image?size=256`);
  const caption = document.createElement("div");
  const cam = item.camid === null ? "–" : item.camid + 1;
  caption.innerHTML = `<span class="rank">#${item.rank}</span> d ${fmt(item.distance)}<br>` +
    `id ${item.pid === null ? "–" : item.pid} · cam ${cam}`;
  li.append(img, caption);
  return li;
}

// ------------------------------------------------------------------ search a gallery
function queryPid() {
  const typed = $("query-pid").value.trim();
  if (typed !== "" && !Number.isNaN(parseInt(typed, 10))) return parseInt(typed, 10);
  return queryFile ? labelOf(queryFile.name).pid : null;
}

function pickFile(file) {
  if (!file) return;
  queryFile = file;
  const preview = $("query-preview");
  preview.innerHTML = "";
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  const label = labelOf(file.name);
  const caption = document.createElement("div");
  caption.textContent = `${file.name}` + (label.pid !== null ? ` (id ${label.pid}, cam ${label.camid + 1})` : "");
  preview.append(img, caption);
  $("search-button").disabled = false;
  runSearch();
}

async function runSearch(event) {
  if (event) event.preventDefault();
  if (!queryFile) return;
  showError("");
  const body = new FormData();
  body.append("images", queryFile, queryFile.name);
  const topk = $("topk").value || 10;
  const rerank = $("rerank").checked;
  $("status").textContent = "searching…";
  const started = performance.now();
  try {
    const response = await api(`/v1/search?topk=${topk}&rerank=${rerank}`, { method: "POST", body });
    const data = await response.json();
    const items = data.results[0];
    const pid = queryPid();
    const list = $("results");
    list.innerHTML = "";
    for (const item of items) list.append(resultItem(item, pid));
    const ms = Math.round(performance.now() - started);
    const known = pid === null ? "query identity unknown" : `query identity ${pid}`;
    $("status").textContent = `${items.length} results in ${ms} ms (${known})`;
  } catch (e) {
    $("status").textContent = "";
    showError(e.message);
  }
}

function setUpSearch() {
  $("search-view").hidden = false;
  $("topk").max = info.limits.max_topk;
  $("rerank-box").hidden = info.gallery_size > info.limits.max_rerank_gallery;
  $("file").addEventListener("change", (e) => pickFile(e.target.files[0]));
  $("search-form").addEventListener("submit", runSearch);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    pickFile(e.dataTransfer.files[0]);
  });
}

// ------------------------------------------------------------------ browse a saved run
function queryRow(q) {
  const row = document.createElement("div");
  row.className = "query-row";
  row.dataset.index = q.index;
  const head = document.createElement("div");
  head.className = "query";
  const img = document.createElement("img");
  img.alt = `query ${q.index}`;
  img.title = q.path;
  setImage(img, `/v1/run/queries/${q.index}/image?size=256`);
  const caption = document.createElement("div");
  caption.innerHTML = `<span class="ap">AP ${fmt(q.ap)}</span><br>id ${q.pid} · cam ${q.camid + 1}` +
    `<br>first match ${q.first_match_rank || "–"}`;
  head.append(img, caption);
  const list = document.createElement("ol");
  list.className = "ranked";
  for (const item of q.results) list.append(resultItem(item, q.pid));
  row.append(head, list);
  return row;
}

async function loadQueries(reset) {
  if (reset) { runOffset = 0; $("run-queries").innerHTML = ""; }
  const params = new URLSearchParams({ offset: runOffset, limit: PAGE });
  const pid = $("filter-pid").value.trim();
  const cam = $("filter-cam").value;
  if (pid !== "") params.set("pid", pid);
  if (cam !== "") params.set("camid", cam);
  showError("");
  try {
    const data = await (await api(`/v1/run/queries?${params}`)).json();
    for (const q of data.queries) $("run-queries").append(queryRow(q));
    runOffset += data.queries.length;
    $("run-status").textContent = `${data.total} queries, worst AP first; showing ${runOffset}`;
    $("more").hidden = runOffset >= data.total;
  } catch (e) {
    showError(e.message);
  }
}

async function setUpRun() {
  $("run-view").hidden = false;
  const run = await (await api("/v1/run")).json();
  const m = run.metrics || {};
  const mAP = m.mAP === undefined ? "" : ` · mAP (${run.ap_mode}) ${(100 * m.mAP).toFixed(1)}`;
  const r1 = m["Rank-1"] === undefined ? "" : ` · Rank-1 ${(100 * m["Rank-1"]).toFixed(1)}`;
  $("run-summary").textContent = `${run.dataset}: ${run.num_queries} queries, ${run.num_gallery} ` +
    `gallery images${run.rerank ? ", re-ranked" : ""}${mAP}${r1}; top-${run.topk} as scored`;
  for (const cam of run.cameras) {
    const option = document.createElement("option");
    option.value = cam;
    option.textContent = cam + 1;
    $("filter-cam").append(option);
  }
  $("run-filter").addEventListener("submit", (e) => { e.preventDefault(); loadQueries(true); });
  $("more").addEventListener("click", () => loadQueries(false));
  await loadQueries(true);
}

// ------------------------------------------------------------------ start
async function start() {
  try {
    const health = await (await fetch("/v1/health")).json();
    auth = health.auth;
    if (auth) {
      $("key-box").hidden = false;
      $("api-key").value = sessionStorage.getItem("bdbnet-key") || "";
      $("api-key").addEventListener("change", (e) => {
        sessionStorage.setItem("bdbnet-key", e.target.value);
        location.reload();
      });
    }
    info = await (await api("/v1/info")).json();
    const name = (info.model.checkpoint || "").split("/").pop();
    $("info").textContent = `${name} · ${info.feature_dim}-d · input ${info.input_size.join("x")} · ` +
      `${info.gallery_size} gallery images · ${info.device}`;
    if (info.mode === "run") await setUpRun(); else setUpSearch();
  } catch (e) {
    $("info").textContent = "";
    showError(e.message);
  }
}

start();

// AdminWeb's small behaviours; every page works without them (forms post, links navigate).
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm], a[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const rowButton = event.target.closest("button[data-select-row]");
  if (rowButton) {
    // a row's own control button acts on that row only
    const form = document.getElementById(rowButton.getAttribute("form"));
    document.querySelectorAll(`input[type=checkbox][name=name][form="${form.id}"]`).forEach((box) => {
      box.checked = box.value === rowButton.dataset.selectRow;
    });
  }
  const download = event.target.closest("a[data-download-from]");
  if (download) {
    const text = document.querySelector(download.dataset.downloadFrom).value;
    download.href = URL.createObjectURL(new Blob([text], {type: "application/x-pem-file"}));
  }
});

// The connection chooser opens the chosen connection's page at once.
const chooser = document.getElementById("conn-chooser");
if (chooser) {
  chooser.addEventListener("change", () => { if (chooser.value) chooser.form.submit(); });
}

// Credential and region forms: fill the key fields with the keys the chosen provider needs.
document.querySelectorAll("form[data-meta]").forEach((form) => {
  const meta = JSON.parse(form.dataset.meta);
  const select = form.querySelector("select[data-provider]");
  const fill = () => {
    const keys = (meta[select.value] || {})[form.dataset.metaField] || [];
    const inputs = form.querySelectorAll("input[name=key]");
    inputs.forEach((input, i) => {
      if (!input.dataset.touched) input.value = keys[i] || "";
    });
  };
  form.querySelectorAll("input[name=key]").forEach((input) => {
    input.addEventListener("input", () => { input.dataset.touched = "1"; });
  });
  select.addEventListener("change", fill);
  fill();
});

// Live tables: fetch the page again as a fragment every 2 s while "live" is ticked.
const live = document.querySelector("[data-live-table]");
const liveBox = document.querySelector("input[data-live]");
if (live && liveBox) {
  const url = () => {
    const target = new URL(live.dataset.liveUrl || window.location.href, window.location.href);
    target.searchParams.set("fragment", "1");
    return target;
  };
  const refresh = async () => {
    if (!liveBox.checked || document.hidden) return;
    try {
      const answer = await fetch(url(), {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (answer.ok) live.innerHTML = await answer.text();  // server-rendered, escaped HTML
    } catch (err) {
      // the server may be restarting: keep the last table
    }
  };
  window.setInterval(refresh, 2000);
}

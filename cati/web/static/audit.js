/* The auditor's checklist (CCSO audits): each judgement is queued in localStorage with a client-generated id, then
   sent; it leaves the queue only once the server has it (a resend of the same id is recognised by the server and
   never stored twice; the time it was made on this device decides which judgement is current, so a late resend
   never overwrites a newer one). While the network is away the queue waits and is re-sent when it comes back
   (the "online" event, and every 5 seconds). No framework. */
(function () {
  "use strict";
  var root = document.getElementById("checklist");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var pass = root.getAttribute("data-pass");
  var KEY = "ccso-queue-" + root.getAttribute("data-audit");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var banner = document.getElementById("sync-state");
  var sending = false;

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }
  function save(queue) { localStorage.setItem(KEY, JSON.stringify(queue)); }
  function newId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function formOf(code) { return document.getElementById("j-" + code); }
  function mark(code, text, cls) {
    var form = formOf(code);
    if (!form) { return; }
    var state = form.querySelector(".state");
    state.textContent = text;
    state.className = "state " + (cls || "");
    form.setAttribute("data-sync", cls || "");
  }
  function showBanner(offline) {
    var n = load().length;
    banner.textContent = n ? banner.getAttribute("data-pending").replace("{n}", n) +
      (offline ? " " + banner.getAttribute("data-offline") : "") : "";
    banner.className = "sync" + (n ? " waiting" : "");
    root.setAttribute("data-pending", String(n));
  }
  function drop(clientId) {
    save(load().filter(function (j) { return j.client_id !== clientId; }));
  }

  function flush() {
    if (sending) { return; }
    var queue = load();
    if (!queue.length) { showBanner(false); return; }
    sending = true;
    var item = queue[0];
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "X-Requested-With": "fetch",
                "Accept": "application/json"},
      body: JSON.stringify(item)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        sending = false;
        if (resp.ok) {
          drop(item.client_id);
          if (item.pass === pass) { mark(item.requirement, banner.getAttribute("data-saved"), "saved"); }
          flush();
        } else if (resp.status === 422) {
          drop(item.client_id);  // refused for good (e.g. not applicable where it is not allowed): say why
          mark(item.requirement, body.error || banner.getAttribute("data-error"), "error");
          flush();
        } else {
          // Signed out or a stale page: keep the judgement and say so; it is sent once the page works again.
          mark(item.requirement, (body.error || banner.getAttribute("data-error")), "error");
          showBanner(false);
        }
      });
    }, function () {
      sending = false;  // no network: keep everything queued
      showBanner(true);
    });
  }

  root.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    var checked = form.querySelector('input[name="verdict"]:checked');
    if (!checked) { mark(form.getAttribute("data-requirement"), banner.getAttribute("data-error"), "error"); return; }
    var item = {
      client_id: newId(), pass: pass, requirement: form.getAttribute("data-requirement"),
      verdict: checked.value, note: form.querySelector('[name="note"]').value,
      evidence_seen: form.querySelector('[name="evidence_seen"]').value, judged_at: new Date().toISOString()
    };
    var queue = load();
    queue.push(item);
    save(queue);
    mark(item.requirement, banner.getAttribute("data-pending").replace("{n}", ""), "pending");
    showBanner(!navigator.onLine);
    flush();
  });

  // Judgements still queued from an earlier visit of this page: show them as waiting, then send them.
  load().forEach(function (item) {
    if (item.pass !== pass) { return; }
    var form = formOf(item.requirement);
    if (!form) { return; }
    var radio = form.querySelector('input[name="verdict"][value="' + item.verdict + '"]');
    if (radio) { radio.checked = true; }
    form.querySelector('[name="note"]').value = item.note || "";
    form.querySelector('[name="evidence_seen"]').value = item.evidence_seen || "";
    mark(item.requirement, banner.getAttribute("data-pending").replace("{n}", ""), "pending");
  });
  window.addEventListener("online", flush);
  window.setInterval(flush, 5000);
  flush();
}());

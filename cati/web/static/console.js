/* Interviewer console: keyboard-first answering (one fetch POST per answer), live call state (SSE),
   outcome form helpers. Without this script every screen still works with plain forms. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var work = document.getElementById("work");
  if (!work) return;
  var labels = {};
  try { labels = JSON.parse(work.dataset.labels || "{}"); } catch (e) { labels = {}; }

  function post(url, data) {
    var body = new URLSearchParams();
    Object.keys(data || {}).forEach(function (k) { body.append(k, data[k]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "X-Requested-With": "fetch", "Accept": "application/json"}
    }).then(function (r) {
      return r.json().catch(function () { return {ok: false, reload: true}; })
        .then(function (j) { j._status = r.status; return j; });
    });
  }

  // Keys are handled one after another: a digit typed while the previous answer is still being saved
  // applies to the question that answer leads to, exactly as if the interviewer had waited.
  var chain = Promise.resolve();
  var es = null;  // the live call-state stream
  var leaving = false;  // an outcome is being saved: the page is about to change by itself
  function enqueue(fn) {
    chain = chain.then(fn).catch(function () { showSaveState("save_failed", true); });
  }

  function step() { return document.getElementById("step"); }

  function showSaveState(key, bad) {
    var el = document.getElementById("save-state");
    if (!el) {
      el = document.createElement("div");
      el.id = "save-state";
      document.body.appendChild(el);
    }
    el.textContent = labels[key] || key;
    el.className = bad ? "bad" : "";
  }

  function swap(html) {
    var old = step();
    var tmp = document.createElement("div");
    tmp.innerHTML = html;
    var fresh = tmp.firstElementChild;
    old.replaceWith(fresh);
    var focus = fresh.querySelector("textarea, input[name=value]:not([type=hidden])");
    if (focus) { focus.focus(); focus.setSelectionRange && focus.setSelectionRange(focus.value.length, focus.value.length); }
    else if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  }

  function handle(r) {
    if (r.redirect) { window.location.href = r.redirect; return; }
    if (r.conflict && r.html) { swap(r.html); showSaveState(r.error, true); return; }
    if (r.html) { swap(r.html); showSaveState(r.ok ? "saved" : (r.error || "save_failed"), !r.ok); return; }
    if (r.reload || !r.ok) { window.location.reload(); }
  }

  // An answer is "saved" only when the server says so. While the server cannot be reached the answer stays
  // in this page and is sent again (every 2 s, then up to every 15 s) until it is acknowledged; the keys typed
  // meanwhile wait behind it, in order. The page says plainly that it is not saved yet.
  function sendUntilAcknowledged(url, data) {
    var wait = 2000;
    function attempt() {
      return post(url, data).catch(function () {
        showSaveState("save_retrying", true);
        return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(function () {
          wait = Math.min(wait * 2, 15000);
          return attempt();
        });
      });
    }
    return attempt();
  }

  function answer(value) {
    var s = step();
    if (!s) return Promise.resolve();
    showSaveState("saving");
    var code = s.dataset.code;
    return sendUntilAcknowledged(s.dataset.answerUrl, {code: code, value: value, rev: s.dataset.rev}).then(handle);
  }
  function goBack() {
    var s = step();
    if (!s) return Promise.resolve();
    return post(s.dataset.backUrl, {}).then(handle);
  }
  function terminate() {
    var s = step();
    var end = document.getElementById("termination");
    if (end && end.dataset.needsDetail === "1") {  // a refusal: its reason and note are asked in the outcome panel
      openOutcomeWith(end.dataset.code);
      return Promise.resolve();
    }
    return post(s.dataset.terminateUrl, {}).then(function (r) {
      if (r.outcome_panel) { openOutcomeWith(r.outcome_panel); return; }
      handle(r);
    });
  }
  function openOutcomeWith(code) {
    openOutcome();
    var sel = document.getElementById("outcome-select");
    if (!sel) return;
    sel.value = code;
    sel.dispatchEvent(new Event("change"));
    var reason = document.getElementById("refusal-reason");
    var note = document.getElementById("note");
    var target = (reason && reason.offsetParent !== null) ? reason : note;
    if (target) target.focus();
  }

  // ---- keys inside the interview
  function stepKey(e) {
    var s = step();
    var type = s.dataset.type;
    var target = e.target;
    var typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "checkbox"));
    if (typing && target.closest("#step")) {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        var v = target.value;
        enqueue(function () { return answer(v); });
      } else if (e.key === "Backspace" && target.value === "") {
        e.preventDefault();
        enqueue(goBack);
      }
      return true;
    }
    if (typing) return false;
    if (e.key === "Backspace") { e.preventDefault(); enqueue(goBack); return true; }
    if (e.key === "Enter") {
      e.preventDefault();
      enqueue(function () {
        var s2 = step();
        if (s2.dataset.termination === "1") return terminate();
        if (s2.dataset.type === "info") return answer("");
        if (s2.dataset.type === "multi") {
          var vals = Array.prototype.map.call(s2.querySelectorAll("input[name=value]:checked"), function (x) { return x.value; });
          return answer(vals.join(","));
        }
        if (s2.dataset.current !== "") return answer(s2.dataset.current);
        return Promise.resolve();
      });
      return true;
    }
    if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      var key = e.key;
      enqueue(function () {
        var s2 = step();
        if (s2.dataset.termination === "1") return Promise.resolve();
        var opts = (s2.dataset.options || "").split(",");
        if (s2.dataset.type === "multi") {
          var box = s2.querySelector('input[name=value][value="' + key + '"]');
          if (box) box.checked = !box.checked;
          return Promise.resolve();
        }
        if ((s2.dataset.type === "single" || s2.dataset.type === "rating") && opts.indexOf(key) >= 0) return answer(key);
        return Promise.resolve();
      });
      return true;
    }
    return false;
  }

  // ---- outcome panel
  var panel = document.getElementById("outcome-panel");
  var oform = document.getElementById("outcome-form");
  function openOutcome() {
    if (!panel) return;
    panel.classList.remove("collapsed");
    var sel = document.getElementById("outcome-select");
    if (sel) sel.focus();
  }
  function closeOutcome() {
    if (panel && work.dataset.mode === "interview") { panel.classList.add("collapsed"); document.activeElement.blur(); }
  }
  if (oform) {
    var refusals = JSON.parse(oform.dataset.refusals || "[]");
    var appointments = JSON.parse(oform.dataset.appointments || "[]");  // catalogue: codes that take one
    var windows = JSON.parse(oform.dataset.windows || "{}");
    var sel = document.getElementById("outcome-select");
    var dateIn = document.getElementById("appt-date");
    var timeSel = document.getElementById("appt-time");
    var sync = function () {
      var code = sel.value;
      var opt = sel.options[sel.selectedIndex];
      document.getElementById("refusal-row").style.display = refusals.indexOf(code) >= 0 ? "" : "none";
      document.getElementById("appt-row").style.display = appointments.indexOf(code) >= 0 ? "" : "none";
      document.getElementById("note-hint").style.display = opt && opt.dataset.note === "1" ? "" : "none";
    };
    // The date is typed as people type it (20261207, 2026-12-7, 2026/12/07, 2026年12月7日) and shown back as
    // 2026-12-07; the server reads the same forms. (A browser date field in a zh-CN page took "20261207" as
    // the year 202612.)
    var isoDate = function (text) {
      var s = (text || "").trim(), m;
      if (/^\d{8}$/.test(s)) m = [s.slice(0, 4), s.slice(4, 6), s.slice(6, 8)];
      else { var p = s.split(/[^0-9]+/).filter(Boolean); if (p.length === 3 && p[0].length === 4) m = p; }
      if (!m) return null;
      var iso = m[0] + "-" + ("0" + m[1]).slice(-2) + "-" + ("0" + m[2]).slice(-2);
      return isNaN(new Date(iso + "T12:00:00").getTime()) ? null : iso;
    };
    dateIn.addEventListener("blur", function () { var iso = isoDate(dateIn.value); if (iso) dateIn.value = iso; });
    var slots = function (keep) {
      var iso = isoDate(dateIn.value);
      if (!iso) return;
      dateIn.value = iso;
      var d = new Date(iso + "T12:00:00");
      var wins = (d.getDay() === 0 || d.getDay() === 6) ? windows.weekend : windows.weekday;
      var prev = keep || timeSel.value;
      timeSel.innerHTML = "";
      (wins || []).forEach(function (w) {
        var p = w[0].split(":"), q = w[1].split(":");
        for (var m = +p[0] * 60 + +p[1]; m < +q[0] * 60 + +q[1]; m += 15) {
          var hh = ("0" + Math.floor(m / 60)).slice(-2), mm = ("0" + (m % 60)).slice(-2);
          var o = document.createElement("option");
          o.value = o.textContent = hh + ":" + mm;
          timeSel.appendChild(o);
        }
      });
      if (prev) {
        var found = Array.prototype.some.call(timeSel.options, function (o) { return o.value === prev; });
        if (!found) { var o = document.createElement("option"); o.value = o.textContent = prev; timeSel.insertBefore(o, timeSel.firstChild); }
        timeSel.value = prev;
      }
    };
    sel.addEventListener("change", sync);
    dateIn.addEventListener("change", function () { slots(); });
    Array.prototype.forEach.call(document.querySelectorAll(".quick-btn"), function (b) {
      b.addEventListener("click", function () { dateIn.value = b.dataset.date; slots(b.dataset.time); });
    });
    sync();
    oform.addEventListener("submit", function (e) {
      e.preventDefault();
      // Saving hangs the call up; the stream must not reload the page under the save's own redirect.
      leaving = true;
      if (es) es.close();
      var data = {};
      new FormData(oform).forEach(function (v, k) { data[k] = v; });
      post(oform.action, data).then(function (r) {
        if (r.redirect) { window.location.href = r.redirect; return; }
        leaving = false;
        var box = document.getElementById("outcome-error");
        box.textContent = r.error || labels.save_failed;
        box.classList.remove("hidden");
        // Put the interviewer on the first field in error, and bring it (and the message) into view: on a
        // 1366×768 screen the panel's lower fields are below the fold.
        var field = r.field && oform.querySelector('[name="' + r.field + '"]');
        var target = (field && !field.disabled && field.offsetParent !== null) ? field : box;
        if (target === box) box.setAttribute("tabindex", "-1");
        box.scrollIntoView({block: "nearest"});
        target.scrollIntoView({block: "center"});
        target.focus();
      });
    });
    oform.addEventListener("keydown", function (e) {
      var tag = e.target.tagName;
      if (e.key === "Enter" && (e.ctrlKey || (tag !== "TEXTAREA" && tag !== "BUTTON"))) {
        e.preventDefault();
        oform.requestSubmit();
      }
    });
    if (work.dataset.mode !== "interview") {
      var live = ["requested", "placed", "ringing"].indexOf(work.dataset.callState) >= 0;
      if (!live && work.dataset.callState !== "answered") sel.focus();
    }
  }

  // ---- page-level keys
  function click(id) { var b = document.getElementById(id); if (b && !b.disabled) { b.click(); return true; } return false; }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    var inPanel = panel && panel.contains(e.target);
    if (e.key === "Escape") {
      if (inPanel) { closeOutcome(); } else { openOutcome(); }
      e.preventDefault();
      return;
    }
    if (inPanel) return;
    // F8 hangs up at any moment, also in the middle of the interview (digits and letters are answers there).
    if (e.key === "F8") { e.preventDefault(); click("btn-hangup"); return; }
    if (step() && stepKey(e)) return;
    var tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var k = e.key.toLowerCase();
    var mode = work.dataset.mode;
    if (mode === "idle" && (k === "n" || k === "enter")) { e.preventDefault(); click("btn-next"); }
    else if (mode === "preview" && (k === "d" || k === "enter")) { e.preventDefault(); click("btn-dial"); }
    else if (mode === "call" && k === "h") { e.preventDefault(); click("btn-hangup"); }
    else if (mode === "call" && k === "enter") { e.preventDefault(); click("btn-start"); }
  });

  // ---- live call state (server-sent events)
  var url = work.dataset.eventsUrl;
  var shown = work.dataset.callState;
  if (url && shown && shown !== "ended" && window.EventSource) {
    es = new EventSource(url);
    es.addEventListener("call", function (ev) {
      var d = JSON.parse(ev.data);
      var badge = document.getElementById("call-state");
      if (badge) { badge.textContent = labels[d.state] || d.state; badge.className = "badge cs-" + d.state; }
      if (d.state === "ended") es.close();
      // The page's panels depend on the call state: let the server render the new one.
      if (!leaving && work.dataset.mode !== "interview" && d.state !== shown &&
          (d.state === "answered" || d.state === "machine" || d.state === "ended")) {
        shown = d.state;
        window.location.reload();
      }
    });
  }

  // ---- progressive dialing: ask for the next case as soon as the interviewer is ready
  if (work.dataset.autoNext === "1") {
    setTimeout(function () {
      var f = document.getElementById("next-form");
      if (f && work.dataset.autoNext === "1") f.submit();
    }, (document.getElementById("last-call") || document.getElementById("notice")) ? 10000 : 1500);
  }

  // Keys typed before this point were not seen by the console (tests wait for this mark).
  document.body.setAttribute("data-console-ready", "1");

  // ---- presence: the open console beats every few seconds. That keeps its claim alive, and the reply brings a
  // supervisor's pause or sign-out: idle, the console shows it at once (reload); mid-interview, a note says so and
  // no next case is asked for, so the interview in hand can be finished.
  // ---- supervisor messages: delivered by the heartbeat; new ones are added, none is ever re-rendered (a
  // button being clicked stays where it is); "read" sends the receipt and removes the message.
  var inbox = document.getElementById("inbox");
  function markRead(box) {
    var form = box.querySelector("form");
    post(form.getAttribute("action"), {}).then(function (r) {
      if (r.ok) { box.remove(); if (!inbox.querySelector(".msg")) inbox.hidden = true; }
    }).catch(function () { /* kept: the next click tries again */ });
  }
  function wire(box) {
    box.querySelector("form").addEventListener("submit", function (e) { e.preventDefault(); markRead(box); });
  }
  function showMessages(list) {
    if (!inbox) return;
    list.forEach(function (m) {
      if (inbox.querySelector('[data-msg="' + m.id + '"]')) return;
      var box = document.createElement("div");
      box.className = "msg";
      box.dataset.msg = m.id;
      var head = document.createElement("span");
      head.className = "msg-head";
      head.textContent = m.from + " · " + m.at + (m.broadcast ? " · " + inbox.dataset.allLabel : "");
      var body = document.createElement("span");
      body.className = "msg-body";
      body.textContent = m.body;
      var form = document.createElement("form");
      form.className = "inline";
      form.setAttribute("action", "/interviewer/messages/" + m.id + "/read");
      var btn = document.createElement("button");
      btn.type = "submit";
      btn.className = "small";
      btn.textContent = inbox.dataset.readLabel;
      form.appendChild(btn);
      box.appendChild(head); box.appendChild(document.createTextNode(" ")); box.appendChild(body); box.appendChild(form);
      inbox.appendChild(box);
      wire(box);
    });
    if (inbox.querySelector(".msg")) inbox.hidden = false;
  }
  if (inbox) Array.prototype.forEach.call(inbox.querySelectorAll(".msg"), wire);

  var beatSeconds = Number(work.dataset.heartbeat || 5);
  function beat() {
    post("/interviewer/heartbeat", {}).then(function (r) {
      if (r.signed_out || r.reload || r._status === 401 || r._status === 403) {
        // Signed out by a supervisor: the session is over; the sign-in page says so.
        window.location.href = "/login?signed_out=1";
        return;
      }
      if (r.messages) showMessages(r.messages);
      if (r.status === "paused" && work.dataset.status !== "paused") {
        work.dataset.autoNext = "0";
        var next = document.getElementById("btn-next");
        if (next) next.disabled = true;
        if (work.dataset.mode === "idle") { window.location.reload(); return; }
        var note = document.getElementById("supervisor-note");
        if (note && r.text) { note.textContent = r.text; note.hidden = false; }
        work.dataset.status = "paused";
      }
    }).catch(function () { /* the server is away: the next beat tries again */ });
  }
  setInterval(beat, beatSeconds * 1000);
})();

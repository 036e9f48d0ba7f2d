// prova's live updates. The pages work without this script; with it, they
// follow the server's Server-Sent Events streams:
// - the jobs list (<tbody data-live="/live/jobs?...">): each `row` event
//   carries a row's new HTML, each `gone` event the id of a row that left.
// - a job page (<section data-live-job="/live/jobs/7?after=N">): any event
//   of the job re-renders the page's live parts (fetched from the server,
//   at most twice a second); `end` does it one last time and stops.
// EventSource reconnects by itself; the indicator says when it is trying.
"use strict";
(function () {
  function indicator(text) {
    var el = document.getElementById("live-indicator");
    if (el) el.textContent = text;
  }

  function follow(url, handlers) {
    var es = new EventSource(url);
    es.onopen = function () { indicator("live"); };
    es.onerror = function () {
      indicator(es.readyState === EventSource.CLOSED ? "not live (reload to retry)" : "reconnecting…");
    };
    Object.keys(handlers).forEach(function (name) {
      es.addEventListener(name, function (e) { handlers[name](e, es); });
    });
    return es;
  }

  function jobsList(tbody) {
    follow(tbody.getAttribute("data-live"), {
      row: function (e) {
        var msg = JSON.parse(e.data);
        var tpl = document.createElement("tbody");
        tpl.innerHTML = msg.html;
        var row = tpl.firstElementChild;
        if (!row) return;
        var old = document.getElementById("job-" + msg.id);
        // Running rows come every second (their duration moves): flash
        // only what changed state or is new.
        if (!old || old.getAttribute("data-state") !== row.getAttribute("data-state")) {
          row.classList.add("row-flash");
        }
        if (old) {
          old.replaceWith(row);
          return;
        }
        // A job new to this page: rows are ordered by id, newest first.
        var before = null;
        tbody.querySelectorAll("tr[id^='job-']").forEach(function (tr) {
          if (!before && Number(tr.id.slice(4)) < msg.id) before = tr;
        });
        tbody.insertBefore(row, before);
        var empty = document.getElementById("no-jobs");
        if (empty) empty.remove();
      },
      gone: function (e) {
        var old = document.getElementById("job-" + e.data);
        if (old) old.remove();
      },
    });
  }

  function jobPage(section) {
    var pending = false;
    var again = false;
    var ended = false;
    var last = 0;
    // One fetch at a time, at most twice a second; an event that arrives
    // during a fetch asks for one more, so the last state is never lost.
    function refresh() {
      if (pending) { again = true; return; }
      pending = true;
      again = false;
      var wait = Math.max(0, 500 - (Date.now() - last));
      setTimeout(function () {
        fetch(window.location.href, { credentials: "same-origin" })
          .then(function (r) { return r.text(); })
          .then(function (text) {
            var doc = new DOMParser().parseFromString(text, "text/html");
            document.querySelectorAll("[data-live-part]").forEach(function (el) {
              var fresh = doc.querySelector('[data-live-part="' + el.getAttribute("data-live-part") + '"]');
              if (fresh) el.replaceWith(fresh);
            });
          })
          .finally(function () {
            pending = false;
            last = Date.now();
            if (again) refresh();
            else if (ended) indicator("job ended (reload for its last events)");
          });
      }, wait);
    }
    follow(section.getAttribute("data-live-job"), {
      event: function () { refresh(); },
      end: function (e, es) { es.close(); ended = true; refresh(); },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.EventSource) return;
    var tbody = document.querySelector("tbody[data-live]");
    if (tbody) jobsList(tbody);
    var section = document.querySelector("[data-live-job]");
    if (section) jobPage(section);
  });
})();

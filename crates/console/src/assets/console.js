// localbuild console: live updates only; every page works without this file.
// - A page whose body has data-live re-reads itself every 2 s and swaps in its
//   [data-refresh] sections (same ids), until the fresh page is no longer live.
// - A build log with data-events follows the build's lines by Server-Sent Events.
"use strict";
(function () {
  var REFRESH_MS = 2000;
  var busy = false;
  var follow = true;

  function refresh() {
    if (busy) return Promise.resolve();
    busy = true;
    return fetch(location.pathname + location.search, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-refresh][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh || old.innerHTML === fresh.innerHTML) return;
          // A section holding the keyboard focus waits: replacing it would drop the focus.
          if (document.activeElement && document.activeElement !== document.body &&
              old.contains(document.activeElement)) return;
          old.replaceWith(document.importNode(fresh, true));
        });
        if (!doc.body.hasAttribute("data-live")) document.body.removeAttribute("data-live");
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  function loop() {
    if (!document.body.hasAttribute("data-live")) return;
    setTimeout(function () { refresh().then(loop); }, REFRESH_MS);
  }

  function followLog(log) {
    var url = log.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    log.addEventListener("scroll", function () {
      follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    });
    var es = new EventSource(url);
    es.addEventListener("lines", function (e) {
      log.insertAdjacentHTML("beforeend", e.data);
      if (follow && !location.hash) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("end", function () {
      es.close();
      log.removeAttribute("data-events");
      refresh();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log) {
      if (!location.hash) log.scrollTop = log.scrollHeight;
      followLog(log);
    }
    loop();
  });
})();

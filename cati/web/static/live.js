/* The supervisor's live screens: one server-sent-events stream per page, the "live" dot showing whether it is
   connected, and the stream closed when the page goes. catiLive(url, eventName, onData) calls onData with each
   event's parsed JSON. */
(function () {
  window.catiLive = function (url, eventName, onData) {
    var live = document.getElementById('live');
    var es = new EventSource(url);
    es.addEventListener('open', function () { live.className = 'live-dot on'; live.textContent = live.dataset.on; });
    es.addEventListener('error', function () { live.className = 'live-dot off'; live.textContent = live.dataset.off; });
    es.addEventListener(eventName, function (ev) { onData(JSON.parse(ev.data)); });
    window.addEventListener('beforeunload', function () { es.close(); });
    return es;
  };
})();

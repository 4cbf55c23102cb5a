// The radar's live banner: an EventSource on /radar/events (short-poll SSE, see doors/sse.py). A new
// notice for the volunteer's area appears at the top of the page within about two seconds; the browser
// resumes after a dropped connection with the Last-Event-ID it got last, so nothing is missed.
(function () {
  var tag = document.getElementById("radar-live-script");
  var box = document.getElementById("radar-live");
  if (!tag || !box || !window.EventSource) return;
  var source = new EventSource(tag.dataset.events);
  window.goldbeanEvents = source; // the wallet app falls back to polling when the stream is closed
  function show(html, urgent) {
    box.innerHTML = html;
    box.className = "radar-live" + (urgent ? " urgent" : "");
    box.hidden = false;
  }
  function text(s) { var d = document.createElement("div"); d.textContent = s; return d.innerHTML; }
  source.addEventListener("notice", function (e) {
    var n = JSON.parse(e.data);
    var href = tag.dataset.notice.replace(/0$/, String(n.notice_id));
    var reward = n.bounty_left ? " · " + text(tag.dataset.reward.replace("@", n.bounty_left)) : "";
    show('<a href="' + href + '" id="live-notice-' + n.notice_id + '"><span class="badge">' + text(n.kind) +
         "</span> <strong>" + text(n.title) + "</strong>" + reward + "</a>", n.kind === "安全提示");
    if (navigator.vibrate) navigator.vibrate(200);
  });
  source.addEventListener("payment", function (e) {
    var p = JSON.parse(e.data);
    if (p.notice_id === null || p.source === "till") {
      // beans paid at a till: the wallet app shows 支付成功 (wallet.js)
      document.dispatchEvent(new CustomEvent("gb:payment", { detail: p }));
      return;
    }
    show(text(tag.dataset.paid.replace("@", p.amount)), false);
  });
})();

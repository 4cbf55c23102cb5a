// The radar's live banner: an EventSource on /radar/events, held open by the events server in front of the
// app (goldbean serve; doors/sse.py, goldbean/events.py), with a heartbeat comment every 15 s. A new notice
// for the volunteer's area appears at the top of the page as soon as it is committed; the browser resumes
// after a dropped connection with the Last-Event-ID it got last, so nothing is missed. Served by the app
// alone, the same URL answers in short-poll mode and the browser reconnects every 1.5 s.
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
  source.addEventListener("notification", function (e) {
    var n = JSON.parse(e.data);
    var link = n.link && n.link.charAt(0) === "/" && n.link.charAt(1) !== "/" ? n.link : tag.dataset.inbox;
    show('<a href="' + text(link || "") + '" id="live-note-' + n.notification_id + '"><strong>' + text(n.title) +
         "</strong></a>", n.urgent);
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

// The wallet app's service worker (docs/ui.md, "The wallet app"): it keeps the app shell only (the frame page
// with no balance and no code, the scripts, the styles, the icons) and answers a navigation to the wallet with
// that shell when the network is gone. Pages and answers that carry balances or codes are never cached: they go
// to the network as they are, and fail as they would without a service worker.
"use strict";
var VERSION = "{{ version }}";
var CACHE = "goldbean-wallet-" + VERSION;
var FILES = {{ files }};
var SHELL = "{{ shell }}";
var SCOPE = "{{ scope }}";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(FILES.map(function (f) { return new Request(f, { credentials: "same-origin", cache: "reload" }); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf("goldbean-wallet-") === 0 && n !== CACHE;
    }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

// the page asks for a fresh shell after each online visit (its language may have changed)
self.addEventListener("message", function (event) {
  if (event.data === "refresh-shell") {
    event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.add(SHELL); }).catch(function () {}));
  }
});

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") { return; }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) { return; }
  if (req.mode === "navigate" && (url.pathname === SCOPE || url.pathname.indexOf(SCOPE + "/") === 0)) {
    // the live page first; offline (or the server unreachable), the shell
    event.respondWith(fetch(req).catch(function () {
      return caches.match(SHELL).then(function (hit) { return hit || Response.error(); });
    }));
    return;
  }
  if (FILES.indexOf(url.pathname) >= 0) {
    event.respondWith(caches.match(url.pathname).then(function (hit) { return hit || fetch(req); }));
  }
  // anything else (the code, the status, the event stream, the API) goes to the network, never to a cache
});

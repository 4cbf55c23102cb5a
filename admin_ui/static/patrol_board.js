// The coverage board: the posts on a Leaflet map (no tiles: a plain background and a scale bar, since no tile
// server is reachable) and as a list, redrawn from /patrols/board.json every few seconds (polling; the page
// works without JavaScript too: the server-drawn plan and list, refreshed by the page itself).
(function () {
  "use strict";
  var box = document.getElementById("board-map");
  if (!box) { return; }
  var COLORS = { covered: "#0a6b2d", short: "#c77700", uncovered: "#b00020", no_shift: "#6b6b6b" };
  var list = document.getElementById("board-list");
  var map = null, markers = {}, shapeKey = "";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function detail(p) {  // the popup and the list row say the same
    var parts = [];
    if (p.shift_id) {
      parts.push(p.present + "/" + p.needed + " " + box.dataset.present);
      if (p.until) { parts.push(box.dataset.until + " " + p.until); }
    }
    return parts.join(" · ");
  }

  function popup(p) {
    var div = el("div", "post-popup");
    div.appendChild(el("strong", null, p.name));
    div.appendChild(el("div", "state " + p.state, p.label));
    div.appendChild(el("div", "muted", p.org_unit));
    if (p.shift_id) { div.appendChild(el("div", null, detail(p))); }
    if (p.on_post.length) { div.appendChild(el("div", "names", p.on_post.join("、"))); }
    else if (p.shift_id) { div.appendChild(el("div", "names", box.dataset.nobody)); }
    if (p.late.length) { div.appendChild(el("div", "late", box.dataset.late + ": " + p.late.join("、"))); }
    return div;
  }

  function row(p) {
    var li = el("li", "post-row " + p.state);
    li.id = "post-" + p.post_id;
    li.dataset.post = p.post_id;
    li.appendChild(el("strong", null, p.name));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "state " + p.state, p.label));
    li.appendChild(el("br"));
    li.appendChild(el("span", "muted", p.org_unit));
    if (p.shift_id) { li.appendChild(document.createTextNode(" · " + detail(p))); }
    if (p.on_post.length) { li.appendChild(el("br")); li.appendChild(el("span", "names", p.on_post.join("、"))); }
    if (p.late.length) { li.appendChild(el("br")); li.appendChild(el("span", "late", box.dataset.late + ": " + p.late.join("、"))); }
    return li;
  }

  function makeMap() {
    box.classList.add("live");
    box.innerHTML = "";
    map = window.L.map(box, { attributionControl: false, zoomSnap: 0.25, minZoom: 10, maxZoom: 19,
                              tap: true, keyboard: true });
    window.L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);
    map.createPane("labels");  // the names under the dots, so that no name ever hides a post's colour
    map.getPane("labels").style.zIndex = 390;
    map.on("zoomend moveend resize", declutter);
  }

  function drawMap(posts) {
    var key = posts.map(function (p) { return p.post_id + ":" + p.latitude + ":" + p.longitude; }).join(",");
    var labels = posts.length <= 12;
    if (key !== shapeKey) {  // new or moved posts: redraw all and fit the view to them
      Object.keys(markers).forEach(function (id) { markers[id].area.remove(); markers[id].dot.remove(); });
      markers = {};
      var bounds = posts.map(function (p) { return [p.latitude, p.longitude]; });
      // the view first: layers added to a map without one are drawn only later
      if (bounds.length === 1) { map.setView(bounds[0], 16); }
      else if (bounds.length) { map.fitBounds(window.L.latLngBounds(bounds), { maxZoom: 17, padding: [70, 40] }); }
      else { map.setView([25.04, 102.71], 13); }  // Kunming, until a post exists
      posts.forEach(function (p) {
        var at = [p.latitude, p.longitude];
        var area = window.L.circle(at, { radius: p.radius_m, color: "#444", weight: 1, dashArray: "4 4",
                                         fillOpacity: 0.06, interactive: false }).addTo(map);
        var dot = window.L.circleMarker(at, { radius: 11, color: "#111", weight: 2, fillOpacity: 1 }).addTo(map);
        dot.bindTooltip(p.name, { permanent: labels, direction: "right", offset: [12, 0], className: "post-label",
                                  pane: "labels" });
        markers[p.post_id] = { area: area, dot: dot };
      });
      shapeKey = key;
    }
    posts.forEach(function (p) {
      var m = markers[p.post_id];
      m.state = p.state;
      m.dot.setStyle({ fillColor: COLORS[p.state] || "#6b6b6b" });
      m.dot.unbindPopup().bindPopup(popup(p));
    });
    declutter();
  }

  var PRIORITY = { uncovered: 0, short: 1, covered: 2, no_shift: 3 };

  function overlaps(a, b) {
    return !(a.right < b.left || a.left > b.right || a.bottom < b.top || a.top > b.bottom);
  }

  function declutter() {
    // a name runs to the left of its dot where the right would leave the map; a name that would cover
    // another dot or name is hidden (most urgent posts keep theirs), and still shows on a tap and in the list
    var frame = box.getBoundingClientRect();
    var all = Object.keys(markers).map(function (id) { return markers[id]; })
      .filter(function (m) { return m.dot.getElement(); });
    var taken = all.map(function (m) { return { owner: m, r: m.dot.getElement().getBoundingClientRect() }; });
    all.sort(function (a, b) { return (PRIORITY[a.state] || 9) - (PRIORITY[b.state] || 9); });
    all.forEach(function (m) {
      var tip = m.dot.getTooltip();
      var node = tip && tip.getElement();
      if (!node || !tip.options.permanent) { return; }
      tip.options.direction = "right"; tip.options.offset = [12, 0]; tip.update();
      var r = node.getBoundingClientRect();
      if (r.right > frame.right - 4) {
        tip.options.direction = "left"; tip.options.offset = [-12, 0]; tip.update();
        r = node.getBoundingClientRect();
      }
      var clash = r.left < frame.left || taken.some(function (t) { return t.owner !== m && overlaps(r, t.r); });
      node.classList.toggle("label-hidden", clash);
      if (!clash) { taken.push({ owner: null, r: r }); }
    });
  }

  function update(data) {
    if (map) { drawMap(data.posts); }
    list.innerHTML = "";
    data.posts.forEach(function (p) { list.appendChild(row(p)); });
    Object.keys(data.counts).forEach(function (state) {
      var n = document.querySelector('#board-counts [data-count="' + state + '"]');
      if (n) { n.textContent = data.counts[state]; }
    });
    var stamp = document.getElementById("board-time");
    if (stamp) { stamp.textContent = data.updated; }
  }

  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { update(data); } })
      .catch(function (e) { if (window.console) { console.error("board:", e); } });
  }

  list.addEventListener("click", function (e) {  // a row shows its post on the map
    var li = e.target.closest ? e.target.closest("li[data-post]") : null;
    if (!li || !map || !markers[li.dataset.post]) { return; }
    var dot = markers[li.dataset.post].dot;
    map.setView(dot.getLatLng(), Math.max(map.getZoom(), 16));
    dot.openPopup();
    box.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });

  if (window.L) { makeMap(); }
  poll();
  setInterval(poll, (parseInt(box.dataset.poll, 10) || 30) * 1000);
})();

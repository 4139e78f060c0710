// nta's topology page: polls topology.json, draws topology.svg (laid out
// by the exporter) when the layout changes, and writes the traffic of each
// wire on it. No library, no network beyond the exporter itself.
(function () {
  "use strict";
  var errors = document.getElementById("errors");
  var status = document.getElementById("status");
  var graph = document.getElementById("graph");
  var layout = "";
  var byID = {};
  var polls = 0;

  function report(msg) {
    errors.hidden = false;
    var li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + " " + msg;
    errors.appendChild(li);
    while (errors.children.length > 20) errors.removeChild(errors.firstChild);
    document.body.dataset.errors = String(Number(document.body.dataset.errors) + 1);
  }
  window.addEventListener("error", function (e) { report("script error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { report("script error: " + (e.reason && e.reason.message || e.reason)); });

  document.getElementById("fit").addEventListener("click", function (e) {
    var fit = graph.classList.toggle("fit");
    e.target.textContent = fit ? "full size" : "fit";
  });

  function human(bps) {
    var units = ["B/s", "kB/s", "MB/s", "GB/s"];
    var i = 0;
    while (bps >= 1000 && i < units.length - 1) { bps /= 1000; i++; }
    return (bps >= 100 || i === 0 ? bps.toFixed(0) : bps.toFixed(1)) + " " + units[i];
  }

  function get(url) {
    return fetch(url, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status + " " + r.statusText);
      return r;
    });
  }

  function loadSVG() {
    return get("topology.svg").then(function (r) {
      var key = r.headers.get("X-Nta-Layout") || "";
      return r.text().then(function (text) {
        var doc = new DOMParser().parseFromString(text, "image/svg+xml");
        var svg = doc.documentElement;
        if (svg.nodeName !== "svg") throw new Error("topology.svg is not an SVG document");
        graph.replaceChildren(document.importNode(svg, true));
        byID = {};
        graph.querySelectorAll("g.node[data-id], g.edge[data-id]").forEach(function (g) {
          var item = { g: g, title: g.querySelector("title"), label: null, painted: -1 };
          // A node others are drawn in (an OVS port in its interface's box)
          // lists them all in data-ids, a JSON array (ids may hold spaces).
          (g.dataset.ids ? JSON.parse(g.dataset.ids) : [g.dataset.id]).forEach(function (id) { byID[id] = item; });
        });
        layout = key;
      });
    });
  }

  function labelFor(item) {
    if (item.label) return item.label;
    var path = item.g.querySelector("path");
    if (!path || !path.getTotalLength) return null;
    var p = path.getPointAtLength(path.getTotalLength() / 2);
    var t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("class", "rate");
    t.setAttribute("x", p.x);
    t.setAttribute("y", p.y - 2);
    t.setAttribute("text-anchor", "middle");
    item.g.appendChild(t);
    item.label = t;
    return t;
  }

  function paint(d) {
    var busy = 0;
    d.edges.forEach(function (e) {
      var item = byID[e.id];
      if (!item) return;
      var tr = e.traffic;
      // A veth_link repeats the veth pair's rate: said in its tooltip only.
      var label = e.kind === "veth_link" ? null : labelFor(item);
      var on = tr && tr.bytes_per_second > 0;
      item.g.classList.toggle("busy", !!on);
      if (label) label.textContent = on ? human(tr.bytes_per_second) : "";
      if (item.title) {
        item.title.textContent = e.kind + ": " + e.source + " → " + e.target +
          (tr ? "\n" + human(tr.bytes_per_second) + " (rx " + human(tr.rx_bytes_per_second) + ", tx " + human(tr.tx_bytes_per_second) +
            ", " + tr.packets_per_second.toFixed(1) + " pkt/s) as counted on " + tr.via : "");
      }
      if (on) busy++;
    });
    d.nodes.forEach(function (n) {
      var item = byID[n.id];
      if (!item) return;
      var tr = n.traffic;
      var on = !!(tr && tr.bytes_per_second > 0);
      var text = n.kind + " " + n.title + "\n" + n.subtitle + "\n" + n.id +
        (tr ? "\nrx " + human(tr.rx_bytes_per_second) + ", tx " + human(tr.tx_bytes_per_second) : "");
      // The second node of a merged box adds to what the first wrote.
      var again = item.painted === polls;
      item.painted = polls;
      item.g.classList.toggle("busy", on || (again && item.g.classList.contains("busy")));
      if (item.title) item.title.textContent = again ? item.title.textContent + "\n\n" + text : text;
    });
    polls++;
    document.body.dataset.polls = String(polls);
    status.textContent = d.nodes.length + " nodes, " + d.edges.length + " edges, " + busy + " wires carrying traffic" +
      (d.window_seconds ? " over " + d.window_seconds.toFixed(1) + " s" : "") + " · " + new Date(d.time).toLocaleTimeString();
  }

  var refresh = 3000;
  function tick() {
    get("topology.json").then(function (r) { return r.json(); }).then(function (d) {
      refresh = (d.refresh_seconds || 3) * 1000;
      return (d.layout !== layout ? loadSVG() : Promise.resolve()).then(function () { paint(d); });
    }).catch(function (e) {
      report(e.message);
      status.textContent = "not updated: " + e.message;
    }).then(function () { setTimeout(tick, refresh); });
  }
  tick();
})();

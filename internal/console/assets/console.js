// emma-gateway console: polls the state API and redraws the page from it.
// Without this script the page is complete as the server rendered it. Text
// goes in through textContent only, never as markup.
"use strict";
(function () {
  const body = document.body;
  const api = body.dataset.api;
  const every = Math.max(200, Number(body.dataset.pollMs) || 1000);
  const svgNS = "http://www.w3.org/2000/svg";
  const live = document.getElementById("live");
  let seen = null; // event ids and times of the rows shown, to mark new ones

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(svgNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function cell(tr, text, cls) { tr.appendChild(el("td", cls, text)); }

  function cards(v) {
    const box = document.getElementById("cards");
    box.replaceChildren(...v.cards.map(c => {
      const d = el("div", "card " + c.class);
      d.id = "card-" + c.id;
      d.append(el("h2", "", c.label), el("p", "value", c.value), el("p", "detail", c.detail));
      return d;
    }));
  }

  function plot(p) {
    const s = document.getElementById("plot");
    s.setAttribute("viewBox", "0 0 " + p.width + " " + p.height);
    s.setAttribute("aria-label", p.summary);
    const grid = document.getElementById("plot-grid");
    grid.replaceChildren(...(p.grid || []).map(l => svg("line", {class: "grid", x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2})));
    const bars = document.getElementById("plot-bars");
    bars.replaceChildren(...(p.bars || []).map(b => svg("rect", {class: b.class, x: b.x, y: b.y, width: b.w, height: b.h})));
    document.getElementById("plot-p99").setAttribute("d", p.p99_path || "");
    const labels = document.getElementById("plot-labels");
    labels.replaceChildren(...(p.labels || []).map(l => {
      const t = svg("text", {class: l.class, x: l.x, y: l.y, "text-anchor": l.anchor});
      t.textContent = l.text;
      return t;
    }));
  }

  function legend(v) {
    document.getElementById("legend").replaceChildren(...v.outcomes.map(o => {
      const li = el("li");
      li.append(el("span", "swatch " + o.class), o.name + " ", el("b", "", String(o.last_minute)), " last min · " + o.total + " in 15 min");
      return li;
    }));
  }

  function rows(id, list, cols, key, empty) {
    const tbody = document.querySelector("#" + id + " tbody");
    const next = new Set();
    const trs = list.map(item => {
      const tr = el("tr");
      const k = key(item);
      next.add(k);
      if (seen && !seen.has(k)) tr.className = "fresh";
      cols(tr, item);
      return tr;
    });
    if (trs.length === 0) {
      const tr = el("tr", "empty");
      const td = el("td", "", empty);
      td.colSpan = document.querySelectorAll("#" + id + " thead th").length;
      tr.appendChild(td);
      trs.push(tr);
    }
    tbody.replaceChildren(...trs);
    return next;
  }

  function render(v) {
    document.getElementById("clock").textContent = v.clock;
    document.getElementById("clock").setAttribute("datetime", v.now);
    cards(v);
    plot(v.plot);
    legend(v);
    const a = rows("recent", v.recent, (tr, c) => {
      cell(tr, c.clock); cell(tr, c.method); cell(tr, c.event); cell(tr, c.account); cell(tr, String(c.status));
      const td = el("td"); td.appendChild(el("span", "badge " + c.class, c.outcome)); tr.appendChild(td);
      cell(tr, c.latency, "num"); cell(tr, c.event_id, "id"); cell(tr, c.destination);
    }, c => "c" + c.time + c.event_id + c.status, "no callbacks yet");
    const b = rows("deadletters", v.dead_letters, (tr, d) => {
      cell(tr, d.clock); cell(tr, d.method); cell(tr, d.event); cell(tr, d.account); cell(tr, d.reason);
      const ul = el("ul", "fields");
      for (const f of d.fields) {
        const li = el("li");
        li.append(el("code", "", f.field), " " + f.rule + ": " + f.message);
        ul.appendChild(li);
      }
      const td = el("td"); td.appendChild(ul); tr.appendChild(td);
      cell(tr, d.location);
    }, d => "d" + d.time + d.location + d.reason, "no dead letters");
    seen = new Set([...a, ...b]);
  }

  async function poll() {
    try {
      const res = await fetch(api, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}});
      if (!res.ok) throw new Error("HTTP " + res.status);
      render(await res.json());
      live.className = "live-on";
      live.textContent = "live, every " + (every / 1000) + " s";
    } catch (e) {
      live.className = "live-err";
      live.textContent = "not updating: " + e.message;
    }
    setTimeout(poll, every);
  }
  poll();
})();

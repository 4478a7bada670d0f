// The sandbox's page: polls /_view twice a second (204 while nothing changed) and redraws.
// Every value goes in as text (textContent), never as markup. The exchange's time comes from each
// answer's Date header, so that the view itself need not change every second.
"use strict";

(function () {
  const POLL_MS = 500;
  const HIDDEN_POLL_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  // -- the admin token, from "/#admin=TOKEN" (kept apart from the rest of the page) --
  // The token is everything after "admin=" as typed: any token may hold "+", "&", "=" or "%",
  // which URLSearchParams would read as a space, cut at, or decode. The browser percent-encodes
  // a few characters of a fragment itself (a space, quotes, "<", ">", "`"), and a user may have:
  // when the token as typed is refused, its percent-decoded form is tried, once. A token refused
  // in every form is no longer sent (the page shows the public view): a page left open must not
  // use up its address's allowance of wrong tokens, which the right one would then wait out.
  function adminTokens(hash) {
    const found = /(?:^#|&)admin=(.*)$/.exec(hash);
    if (!found || !found[1]) return [];
    const tokens = [found[1]];
    try {
      const decoded = decodeURIComponent(found[1]);
      if (decoded && decoded !== found[1]) tokens.push(decoded);
    } catch (malformed) {
      // a "%" that starts no escape: the token as typed is the only form
    }
    return tokens;
  }
  const adminForms = adminTokens(location.hash);
  let admin = adminForms.shift() || null;
  let adminRefused = false;
  let known = "";
  let first = 0;
  let perPage = 8;
  let exchangeNow = null; // ms since the epoch, from the latest answer's Date header
  let closing = [];
  let labels = {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child === null || child === undefined ? "" : child instanceof Node ? child : String(child));
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const [text, cls, title] of cells) {
      const td = el("td", cls ? { class: cls } : {}, text);
      if (title) td.title = title;
      tr.append(td);
    }
    return tr;
  }

  function time(iso) {
    return iso.slice(11, 19);
  }

  function label(contract) {
    return labels[contract] || { text: contract, day: "", time: contract, quarter_hours: "" };
  }

  function short(contract) {
    const named = label(contract);
    return named.day ? named.day.split(" ").slice(0, 3).join(" ") + " " + named.time + " " + named.quarter_hours : contract;
  }

  // Recent trade prices as a line: no axes, the range written beside it.
  function chart(prices) {
    const width = 220, height = 36, pad = 3;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    const values = prices.map(Number);
    svg.setAttribute("aria-label", values.length ? "recent trade prices" : "no trade yet");
    if (values.length) {
      const low = Math.min(...values), high = Math.max(...values);
      const span = high - low || 1;
      const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
      const points = values.map((value, i) => {
        const x = values.length > 1 ? pad + i * step : width / 2;
        const y = height - pad - ((value - low) / span) * (height - 2 * pad);
        return x.toFixed(1) + "," + (high === low ? height / 2 : y).toFixed(1);
      });
      const line = document.createElementNS(SVG, values.length > 1 ? "polyline" : "circle");
      if (values.length > 1) {
        line.setAttribute("points", points.join(" "));
      } else {
        const [x, y] = points[0].split(",");
        line.setAttribute("cx", x);
        line.setAttribute("cy", y);
        line.setAttribute("r", "2.5");
      }
      line.setAttribute("class", "chart-line");
      svg.append(line);
    }
    return svg;
  }

  function ladder(book) {
    const named = label(book.contract);
    const box = el("div", { class: "ladder", "data-contract": book.contract });
    box.append(el("h4", {}, named.text));
    box.append(el("p", { class: "contract-id" }, book.contract + (book.last_price === null ? "" : "  · last " + book.last_price)));
    const values = book.prices.map(Number);
    const trend = el("div", { class: "trend" }, chart(book.prices));
    trend.append(el("span", { class: "range" }, values.length ? Math.min(...values) + "–" + Math.max(...values) : "no trade yet"));
    box.append(trend);
    const table = el("table");
    table.append(row([["bid MW", "num"], ["bid", "num bid"], ["ask", "ask"], ["ask MW", ""]]));
    const depth = Math.max(book.bids.length, book.asks.length);
    for (let i = 0; i < depth; i++) {
      const bid = book.bids[i], ask = book.asks[i];
      table.append(row([
        [bid ? bid.volume : "", "num"], [bid ? bid.price : "", "num bid"],
        [ask ? ask.price : "", "ask"], [ask ? ask.volume : "", ""],
      ]));
    }
    box.append(table);
    return box;
  }

  // The JSON each section was last drawn from: a section is redrawn only when its data changed.
  const drawn = {};

  function changed(id, data) {
    const text = JSON.stringify(data);
    if (drawn[id] === text) return false;
    drawn[id] = text;
    return true;
  }

  function replace(id, nodes, empty) {
    const target = document.getElementById(id);
    target.replaceChildren(...(nodes.length ? nodes : [el(target.tagName === "TBODY" ? "tr" : "p", { class: "empty" }, empty)]));
  }

  function traders(list) {
    return list.map((trader) => {
      const box = el("div", { class: "trader", "data-trader": trader.trader });
      box.append(el("h4", {}, trader.trader));
      const orders = el("table", { class: "orders" });
      orders.append(row([["id", ""], ["delivery", ""], ["side", ""], ["price", "num"], ["left MW", "num"], ["state", ""], ["status", ""]]));
      for (const o of trader.orders) {
        const tr = row([[o.order_id, ""], [short(o.contract), "", o.contract], [o.direction, o.direction === "buy" ? "bid" : "ask"],
          [o.price, "num"], [o.remaining_volume, "num"], [o.state, ""], [o.status, ""]]);
        tr.setAttribute("data-order", String(o.order_id));
        orders.append(tr);
      }
      if (!trader.orders.length) orders.append(row([["no live order", "empty"]]));
      if (trader.more_orders) orders.append(row([["… and " + trader.more_orders + " more", "empty"]]));
      box.append(orders);
      const positions = Object.entries(trader.positions);
      box.append(el("p", { class: "positions" }, "open positions: " +
        (positions.length ? positions.map(([c, v]) => short(c) + " " + (Number(v) > 0 ? "+" : "") + v + " MW").join(", ") : "flat")));
      return box;
    });
  }

  function tick() {
    if (exchangeNow === null) return;
    document.getElementById("now").textContent = new Date(exchangeNow).toISOString().slice(0, 19).replace("T", " ") + "Z";
    const items = closing.map((c) => {
      const minutes = Math.max(0, Math.round((Date.parse(c.closes_at) - exchangeNow) / 60000));
      const li = el("li", { "data-contract": c.contract }, short(c.contract) + " closes in " + minutes + " min");
      li.title = c.contract;
      return li;
    });
    if (changed("closing", items.map((item) => item.textContent))) replace("closing", items, "no open contract");
  }

  function pager(view) {
    const last = Math.min(view.total, view.first + view.contracts.length);
    document.getElementById("window").textContent = view.total
      ? "contracts " + (view.first + 1) + "–" + last + " of " + view.total
      : "no open contract";
    document.getElementById("prev").disabled = view.first === 0;
    document.getElementById("next").disabled = view.first + view.per_page >= view.total;
    if (changed("choices", [view.choices, view.first])) {
      const select = document.getElementById("jump");
      select.replaceChildren(...view.choices.map((contract, i) => {
        const option = el("option", { value: String(i) }, short(contract) + "  (" + contract + ")");
        if (i === view.first) option.selected = true;
        return option;
      }));
    }
  }

  function render(view) {
    known = view.key;
    first = view.first;
    perPage = view.per_page;
    labels = view.labels;
    document.body.classList.toggle("admin", view.admin);
    const mode = document.getElementById("mode");
    mode.textContent = view.admin ? "admin view" : "public view";
    mode.classList.toggle("admin", view.admin);
    closing = view.closing;
    pager(view);
    if (changed("books", view.contracts)) replace("books", view.contracts.map(ladder), "no open contract");
    if (changed("trades", view.trades)) {
      const trades = view.trades.map((t) => {
        const tr = row([[time(t.time), ""], [short(t.contract), "", t.contract], [t.direction, t.direction === "buy" ? "bid" : "ask"],
          [t.price, "num"], [t.volume, "num"], [t.buyer || "", "admin-only"], [t.seller || "", "admin-only"]]);
        tr.setAttribute("data-trade", t.trade_id);
        return tr;
      });
      replace("trades-body", trades, "no trade yet");
    }
    if (view.admin && changed("traders", view.traders)) replace("traders", traders(view.traders), "no trader yet");
    if (view.admin && changed("cancels", view.cancels)) {
      replace("cancels", view.cancels.map((c) => {
        const li = el("li", {}, time(c.time) + "  " + c.trader + " cancelled order " + c.order_id + " (" + short(c.contract) + ")");
        li.setAttribute("data-cancelled", String(c.order_id));
        return li;
      }), "none");
    }
  }

  let timer = null;
  let polling = false;

  async function poll() {
    if (polling) return; // one poll at a time, whoever asks
    polling = true;
    clearTimeout(timer);
    const live = document.getElementById("live");
    try {
      const answer = await fetch("/_view?first=" + first + "&known=" + encodeURIComponent(known), {
        cache: "no-store",
        headers: admin ? { Authorization: "Bearer " + admin } : {},
      });
      const date = Date.parse(answer.headers.get("date") || "");
      if (!Number.isNaN(date)) exchangeNow = date;
      if (answer.status === 401 && admin) {
        admin = adminForms.shift() || null; // the next form of the token, or none: the public view
        adminRefused = admin === null;
        known = "";
        polling = false;
        return await poll();
      }
      if (answer.status === 200) render(await answer.json());
      tick();
      live.classList.toggle("stale", answer.status !== 200 && answer.status !== 204);
      live.title = adminRefused ? "wrong admin token"
        : answer.status === 429 ? "too many wrong admin tokens from this address: waiting" : "updates by itself";
    } catch (failure) {
      live.classList.add("stale");
      live.title = "the server does not answer";
    } finally {
      polling = false;
    }
    // A tab nobody looks at asks seldom; it catches up as soon as it is shown again.
    timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  function show(index) {
    first = Math.max(0, index);
    known = "";
    poll();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  document.getElementById("prev").addEventListener("click", () => show(first - perPage));
  document.getElementById("next").addEventListener("click", () => show(first + perPage));
  document.getElementById("jump").addEventListener("change", (event) => show(Number(event.target.value)));

  document.querySelector("#trades tbody").id = "trades-body";
  poll();
})();

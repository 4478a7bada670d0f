// The sandbox's page: polls /_view twice a second (204 while nothing changed) and redraws.
// Every value goes in as text (textContent), never as markup.
"use strict";

(function () {
  const POLL_MS = 500;
  const HIDDEN_POLL_MS = 5000;
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

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child === null || child === undefined ? "" : String(child));
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells) tr.append(el("td", cls ? { class: cls } : {}, text));
    return tr;
  }

  function time(iso) {
    return iso.slice(11, 19);
  }

  function ladder(book) {
    const box = el("div", { class: "ladder", "data-contract": book.contract });
    box.append(el("h4", {}, book.contract + (book.last_price === null ? "" : "  · last " + book.last_price)));
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
      orders.append(row([["id", ""], ["contract", ""], ["side", ""], ["price", "num"], ["left MW", "num"], ["state", ""], ["status", ""]]));
      for (const o of trader.orders) {
        const tr = row([[o.order_id, ""], [o.contract, ""], [o.direction, o.direction === "buy" ? "bid" : "ask"],
          [o.price, "num"], [o.remaining_volume, "num"], [o.state, ""], [o.status, ""]]);
        tr.setAttribute("data-order", String(o.order_id));
        orders.append(tr);
      }
      if (!trader.orders.length) orders.append(row([["no live order", "empty"]]));
      if (trader.more_orders) orders.append(row([["… and " + trader.more_orders + " more", "empty"]]));
      box.append(orders);
      const positions = Object.entries(trader.positions);
      box.append(el("p", { class: "positions" }, "open positions: " +
        (positions.length ? positions.map(([c, v]) => c + " " + (Number(v) > 0 ? "+" : "") + v + " MW").join(", ") : "flat")));
      return box;
    });
  }

  function render(view) {
    known = view.key;
    document.body.classList.toggle("admin", view.admin);
    const mode = document.getElementById("mode");
    mode.textContent = view.admin ? "admin view" : "public view";
    mode.classList.toggle("admin", view.admin);
    document.getElementById("now").textContent = view.now.replace("T", " ").replace(".000Z", "Z");
    const closing = view.closing.map((c) => [c.contract, Math.round(c.seconds_left / 60)]);
    if (changed("closing", closing)) {
      replace("closing", closing.map(([contract, minutes]) => el("li", {}, contract + " closes in " + minutes + " min")), "no open contract");
    }
    if (changed("books", view.contracts)) replace("books", view.contracts.map(ladder), "no open contract");
    if (changed("trades", view.trades)) {
      const trades = view.trades.map((t) => {
        const tr = row([[time(t.time), ""], [t.contract, ""], [t.direction, t.direction === "buy" ? "bid" : "ask"],
          [t.price, "num"], [t.volume, "num"], [t.buyer || "", "admin-only"], [t.seller || "", "admin-only"]]);
        tr.setAttribute("data-trade", t.trade_id);
        return tr;
      });
      replace("trades-body", trades, "no trade yet");
    }
    if (view.admin && changed("traders", view.traders)) replace("traders", traders(view.traders), "no trader yet");
    if (view.admin && changed("cancels", view.cancels)) {
      replace("cancels", view.cancels.map((c) => {
        const li = el("li", {}, time(c.time) + "  " + c.trader + " cancelled order " + c.order_id + " (" + c.contract + ")");
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
      const answer = await fetch("/_view?known=" + encodeURIComponent(known), {
        cache: "no-store",
        headers: admin ? { Authorization: "Bearer " + admin } : {},
      });
      if (answer.status === 401 && admin) {
        admin = adminForms.shift() || null; // the next form of the token, or none: the public view
        adminRefused = admin === null;
        polling = false;
        return await poll();
      }
      if (answer.status === 200) render(await answer.json());
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

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  document.querySelector("#trades tbody").id = "trades-body";
  poll();
})();

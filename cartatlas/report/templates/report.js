// The report's one script: shows the trials behind a number, only ever through textContent.
// Its SHA-256 is put in the page's Content-Security-Policy (cartatlas/report/html.py); no other script runs.
// A number opened puts its address in the URL (#n=TABLE:ROW[:COLUMN]), so a view can be shared: opening
// that URL opens the same list.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var panel = document.getElementById("panel"), body = document.getElementById("panel-body"), title = document.getElementById("panel-title");
  var current = null;
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function words(value) { return Array.isArray(value) ? value.filter(function (v) { return v !== null && v !== undefined && v !== ""; }).join(", ") : (value === null || value === undefined ? "" : String(value)); }
  function labelLine(name, value) { var p = el("div", null, "meta"); p.appendChild(el("strong", name + ": ")); p.appendChild(document.createTextNode(words(value) || "not stated")); return p; }
  function trialCard(id) {
    var t = data.trials[id], box = el("div", null, "trial");
    if (!t) { box.appendChild(el("div", id, "t")); return box; }
    var head = el("div", null, "t");
    t.links.forEach(function (l, i) { var a = el(l[1] ? "a" : "span", l[0].split(":").slice(1).join(":")); if (l[1]) { a.href = l[1]; a.target = "_blank"; a.rel = "noopener noreferrer"; } if (i) head.appendChild(document.createTextNode(" · ")); head.appendChild(a); });
    head.appendChild(document.createTextNode(" " + t.title));
    box.appendChild(head);
    box.appendChild(labelLine("Sponsor", t.sponsor));
    box.appendChild(labelLine("Registered", t.registered));
    box.appendChild(labelLine("Start / enrolment", t.start + " / " + t.enrolment));
    box.appendChild(labelLine("Status / phase", t.status + " / " + t.phase));
    box.appendChild(labelLine("Conditions", t.conditions));
    var L = t.labels;
    var targets = "targets " + ((L.targets || []).join("+") || "not disclosed") + (L.strategy && L.strategy !== "Not stated" ? " (" + L.strategy.toLowerCase() + ")" : "");
    var branch = L.branch + ((L.disease || []).length ? " (" + L.disease.join(", ") + ")" : "");
    box.appendChild(labelLine("Labels", [L.relation, (L.platforms || []).join("+"), targets, branch, "product source: " + String(L.source).toLowerCase()]));
    if ((L.combinations || []).length) box.appendChild(labelLine("Combined with", L.combinations));
    box.appendChild(labelLine("Countries", L.countries));
    box.appendChild(labelLine("Cities", t.cities));
    box.appendChild(labelLine("Confidence", L.confidence + ((L.curated || []).length ? " (curated: " + L.curated.join(", ") + ")" : "")));
    if (t.evidence.length) {
      var d = el("details"); d.appendChild(el("summary", "Evidence (" + t.evidence.length + ")"));
      var tb = el("table"), hr = el("tr"); ["decision", "value", "field", "matched text", "rule"].forEach(function (h) { hr.appendChild(el("th", h)); }); tb.appendChild(hr);
      t.evidence.forEach(function (e) { var tr = el("tr"); e.forEach(function (c) { tr.appendChild(el("td", c)); }); tb.appendChild(tr); });
      d.appendChild(tb); box.appendChild(d);
    }
    return box;
  }
  function clear() { while (body.firstChild) body.removeChild(body.firstChild); }
  function show(ids, heading) {
    clear();
    title.textContent = heading + " (" + ids.length + (ids.length === 1 ? " trial)" : " trials)");
    ids.forEach(function (id) { body.appendChild(trialCard(id)); });
    panel.classList.add("open"); panel.scrollTop = 0;
  }
  function showPubs(pmids, heading) {
    clear();
    title.textContent = heading + " (" + pmids.length + (pmids.length === 1 ? " report)" : " reports)");
    pmids.forEach(function (pmid) {
      var p = data.pubs[pmid] || {}, box = el("div", null, "trial"), head = el("div", null, "t"), a = el(p.url ? "a" : "span", "PMID " + pmid);
      if (p.url) { a.href = p.url; a.target = "_blank"; a.rel = "noopener noreferrer"; }
      head.appendChild(a); box.appendChild(head);
      if (p.author) box.appendChild(labelLine("Report", [p.author, p.year, p.journal]));
      if (p.target) box.appendChild(labelLine("Target / disease", p.target + " / " + (p.disease || "not stated")));
      if (p.trials) box.appendChild(labelLine("Linked trials", p.trials));
      body.appendChild(box);
    });
    panel.classList.add("open"); panel.scrollTop = 0;
  }
  // What a number counts, in words: its section, row and column, the partner of a chip, the card, else its title.
  function heading(b) {
    var parts = [], cell = b.closest("td"), chip = b.closest(".chip"), card = b.closest(".card"), section = b.closest("section");
    var h2 = section ? section.querySelector("h2") : null;
    if (h2 && !card) parts.push(h2.textContent.trim());
    if (cell) {
      var row = cell.parentNode, table = row.closest("table");
      if (row.cells[0] !== cell) parts.push(row.cells[0].textContent.trim());
      var th = table && table.rows[0].cells[cell.cellIndex], head = th && th.tagName === "TH" ? th.textContent.trim() : "";
      if (chip) parts.push("with " + chip.firstChild.textContent.trim());
      else if (head && !/^Trials( with a site there)?$/.test(head)) parts.push(head);
    }
    if (card) parts.push(card.querySelector(".l").textContent.trim());
    if (!cell && !card && b.title) parts.push(b.title);
    return parts.join(" · ") || (b.dataset.ref || "Trials");
  }
  function open(b) {
    if (current) current.classList.remove("on");
    current = b; b.classList.add("on");
    if (b.dataset.pubs) showPubs(data.publists[b.dataset.pubs] || [], heading(b));
    else if (b.dataset.list) show(data.lists[b.dataset.list] || [], heading(b));
    else if (b.dataset.one) show([b.dataset.one], b.dataset.one);
  }
  function close() { panel.classList.remove("open"); if (current) current.classList.remove("on"); current = null; }
  function encode(text) { return encodeURIComponent(text).replace(/%3A/gi, ":"); }
  function address(b) {
    if (b.dataset.ref) return "n=" + encode(b.dataset.ref);
    if (b.dataset.pubs) return "pubs=" + encode(b.dataset.pubs);
    if (b.dataset.list) return "list=" + encode(b.dataset.list);
    if (b.dataset.one) return "trial=" + encode(b.dataset.one);
    return "";
  }
  function go(hash) {
    // A new history entry, so that Back closes the list; a page that may not rewrite its URL sets the hash.
    var url = location.href.split("#")[0] + (hash ? "#" + hash : "");
    try { history.pushState(null, "", url); } catch (e) { location.hash = hash; }
  }
  function buttonWhere(test) {
    var all = document.querySelectorAll("button.n");
    for (var i = 0; i < all.length; i++) if (test(all[i])) return all[i];
    return null;
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.n") : null;
    if (!b) return;
    if (b.id === "close") { close(); if (location.hash) go(""); return; }
    open(b);
    go(address(b));
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && panel.classList.contains("open")) { close(); if (location.hash) go(""); } });
  // index.html#n=REF opens that number's list (#list=KEY, #pubs=KEY, #trial=ID too); no such hash, no list.
  function fromHash() {
    var h = location.hash.slice(1), eq = h.indexOf("=");
    if (eq < 0) { close(); return; }
    var kind = h.slice(0, eq), value;
    try { value = decodeURIComponent(h.slice(eq + 1)); } catch (e) { return; }
    var b = null;
    if (kind === "n") b = buttonWhere(function (x) { return x.dataset.ref === value; });
    else if (kind === "list") b = buttonWhere(function (x) { return x.dataset.list === value; });
    else if (kind === "pubs") b = buttonWhere(function (x) { return x.dataset.pubs === value; });
    if (b) { open(b); b.scrollIntoView({ block: "center" }); }
    else if (kind === "list" && data.lists[value]) show(data.lists[value], "Trials");
    else if (kind === "trial" && data.trials[value]) show([value], value);
  }
  window.addEventListener("hashchange", fromHash);
  window.addEventListener("popstate", fromHash);
  fromHash();
})();

// The report's one script: shows the trials behind a number, only ever through textContent.
// Its SHA-256 is put in the page's Content-Security-Policy (cartatlas/report/html.py); no other script runs.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var panel = document.getElementById("panel"), body = document.getElementById("panel-body"), title = document.getElementById("panel-title");
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function labelLine(name, value) { var p = el("div", null, "meta"); p.appendChild(el("strong", name + ": ")); p.appendChild(document.createTextNode(Array.isArray(value) ? value.join(", ") : (value || ""))); return p; }
  function trialCard(id) {
    var t = data.trials[id], box = el("div", null, "trial");
    if (!t) { box.appendChild(el("div", id, "t")); return box; }
    var head = el("div", null, "t");
    t.links.forEach(function (l, i) { var a = el(l[1] ? "a" : "span", l[0].split(":").slice(1).join(":")); if (l[1]) { a.href = l[1]; a.target = "_blank"; a.rel = "noopener noreferrer"; } if (i) head.appendChild(document.createTextNode(" · ")); head.appendChild(a); });
    head.appendChild(document.createTextNode(" " + t.title));
    box.appendChild(head);
    box.appendChild(labelLine("Sponsor", t.sponsor));
    box.appendChild(labelLine("Registered", t.registered));
    box.appendChild(labelLine("Status / phase", t.status + " / " + t.phase));
    var L = t.labels;
    box.appendChild(labelLine("Labels", [L.relation, (L.platforms || []).join("+"), "targets " + (L.targets || []).join("+"), L.strategy, L.branch, (L.disease || []).join("+"), L.source].filter(Boolean)));
    if ((L.combinations || []).length) box.appendChild(labelLine("Combined with", L.combinations));
    box.appendChild(labelLine("Countries", L.countries));
    box.appendChild(labelLine("Confidence", L.confidence + ((L.curated || []).length ? " (curated: " + L.curated.join(", ") + ")" : "")));
    if (t.evidence.length) {
      var d = el("details"); d.appendChild(el("summary", "Evidence (" + t.evidence.length + ")"));
      var tb = el("table"), hr = el("tr"); ["decision", "value", "field", "matched text", "rule"].forEach(function (h) { hr.appendChild(el("th", h)); }); tb.appendChild(hr);
      t.evidence.forEach(function (e) { var tr = el("tr"); e.forEach(function (c) { tr.appendChild(el("td", c)); }); tb.appendChild(tr); });
      d.appendChild(tb); box.appendChild(d);
    }
    return box;
  }
  function show(ids, heading) {
    while (body.firstChild) body.removeChild(body.firstChild);
    title.textContent = heading + " (" + ids.length + " trials)";
    ids.forEach(function (id) { body.appendChild(trialCard(id)); });
    panel.classList.add("open"); panel.scrollTop = 0;
  }
  function showPubs(pmids, heading) {
    while (body.firstChild) body.removeChild(body.firstChild);
    title.textContent = heading + " (" + pmids.length + " reports)";
    pmids.forEach(function (pmid) {
      var p = data.pubs[pmid] || {}, box = el("div", null, "trial"), head = el("div", null, "t"), a = el(p.url ? "a" : "span", "PMID " + pmid);
      if (p.url) { a.href = p.url; a.target = "_blank"; a.rel = "noopener noreferrer"; }
      head.appendChild(a); box.appendChild(head);
      if (p.author) box.appendChild(labelLine("Report", [p.author, p.year, p.journal].filter(Boolean).join(", ")));
      if (p.target) box.appendChild(labelLine("Target / disease", p.target + " / " + (p.disease || "")));
      if (p.trials) box.appendChild(labelLine("Linked trials", p.trials));
      body.appendChild(box);
    });
    panel.classList.add("open"); panel.scrollTop = 0;
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.n") : null;
    if (!b) return;
    if (b.id === "close") { panel.classList.remove("open"); return; }
    var row = b.closest("tr"), ctx = row ? row.cells[0].textContent : "";
    if (b.dataset.pubs) showPubs(data.publists[b.dataset.pubs] || [], (ctx ? ctx + ": " : "") + b.textContent);
    else if (b.dataset.list) show(data.lists[b.dataset.list] || [], (ctx ? ctx + ": " : "") + b.textContent);
    else if (b.dataset.one) show([b.dataset.one], b.dataset.one);
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") panel.classList.remove("open"); });
  // Shareable links: index.html#list=KEY opens a count's trials, #trial=ID one trial.
  function fromHash() {
    var h = decodeURIComponent(location.hash.slice(1)), eq = h.indexOf("=");
    if (eq < 0) return;
    var kind = h.slice(0, eq), value = h.slice(eq + 1);
    if (kind === "list" && data.lists[value]) show(data.lists[value], "Trials");
    else if (kind === "trial" && data.trials[value]) show([value], value);
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();

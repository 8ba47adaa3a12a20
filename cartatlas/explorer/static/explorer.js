// cartatlas explorer: conveniences on top of pages that work without this script.
// Written for the explorer; reads and writes the page only through the DOM (textContent, never innerHTML).
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // Filters apply as soon as a box is ticked (the Apply button stays for keyboard users and no-script).
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      var t = event.target;
      if (t.type === "checkbox" || t.tagName === "SELECT" || t.type === "date") {
        form.requestSubmit();
      }
    });
  });

  // A box to narrow a long facet (sponsors, diseases...) to the values that contain what is typed.
  document.querySelectorAll("fieldset.facet").forEach(function (fieldset) {
    var labels = fieldset.querySelectorAll("label.check");
    if (labels.length <= 8) { return; }
    var input = document.createElement("input");
    input.type = "search";
    input.className = "facet-find";
    input.placeholder = "Find a value";
    input.setAttribute("aria-label", "Find a value of " + fieldset.querySelector("legend").textContent.trim());
    fieldset.insertBefore(input, fieldset.children[1]);
    input.addEventListener("input", function () {
      var text = input.value.trim().toLowerCase();
      var more = fieldset.querySelector("details");
      if (more && text) { more.open = true; }
      labels.forEach(function (label) {
        label.hidden = text !== "" && label.textContent.toLowerCase().indexOf(text) < 0;
      });
    });
  });

  // At phone width the filters fold behind one button.
  var filters = document.querySelector("form.filters");
  if (filters && window.matchMedia("(max-width: 900px)").matches) {
    var chosen = filters.querySelectorAll("fieldset.facet input:checked").length;
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "filters-toggle";
    toggle.textContent = "Filters" + (chosen ? " (" + chosen + " chosen)" : "");
    toggle.setAttribute("aria-expanded", "false");
    filters.setAttribute("data-collapsible", "");
    filters.insertBefore(toggle, filters.firstChild);
    toggle.addEventListener("click", function () {
      var open = filters.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // "Copy link to this view": the URL is the view.
  document.querySelectorAll("[data-copy-url]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(window.location.href).then(function () {
        button.textContent = "Link copied";
      }, function () {
        button.textContent = "Copy the address bar to share this view";
      });
    });
  });

  // The override form offers the values of the chosen label only.
  var vocabSelect = document.querySelector("select[data-vocab-select]");
  var datalist = document.getElementById("vocab");
  if (vocabSelect && datalist) {
    var all = Array.prototype.slice.call(datalist.querySelectorAll("option"));
    var showVocab = function () {
      while (datalist.firstChild) { datalist.removeChild(datalist.firstChild); }
      all.forEach(function (option) {
        if (option.getAttribute("data-field") === vocabSelect.value) { datalist.appendChild(option); }
      });
    };
    vocabSelect.addEventListener("change", showVocab);
    showVocab();
  }

  // Review decisions: Enter in a reason box submits with the verdict chosen by a or d.
  document.querySelectorAll("form.decide").forEach(function (form) {
    var reason = form.querySelector("[data-reason]");
    reason.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        var verdict = form.getAttribute("data-verdict") || "accepted";
        var button = form.querySelector('[data-verdict-button="' + verdict + '"]');
        if (reason.value.trim()) { form.requestSubmit(button); } else { reason.reportValidity(); }
      } else if (event.key === "Escape") {
        reason.blur();
      }
    });
  });

  // Keyboard: j/k through rows, Enter or o to open, / to search, g-letter to go, a/d to decide.
  var list = document.querySelector("[data-list]");
  var rows = list ? Array.prototype.slice.call(list.querySelectorAll("[data-href]")) : [];
  var current = -1;
  function select(i) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (row, k) { row.classList.toggle("selected", k === current); });
    rows[current].scrollIntoView({ block: "nearest" });
    var link = rows[current].querySelector("a");
    if (link) { link.focus({ preventScroll: true }); }
  }
  var pendingG = false;
  var places = { l: "/", t: "/trials", r: "/review", c: "/changes", m: "/geo", v: "/views", s: "/search" };
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(document.activeElement)) { return; }
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      if (places[key]) { window.location.href = places[key]; event.preventDefault(); }
      return;
    }
    if (key === "/") {
      var box = document.getElementById("q2") || document.getElementById("q");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    } else if (key === "j") {
      select(current + 1); event.preventDefault();
    } else if (key === "k") {
      select(current - 1); event.preventDefault();
    } else if ((key === "Enter" || key === "o") && current >= 0) {
      window.location.href = rows[current].getAttribute("data-href"); event.preventDefault();
    } else if ((key === "a" || key === "d") && current >= 0) {
      var form = rows[current].querySelector("form.decide");
      if (form) {
        form.setAttribute("data-verdict", key === "a" ? "accepted" : "dismissed");
        var reason = form.querySelector("[data-reason]");
        reason.placeholder = (key === "a" ? "Accept" : "Dismiss") + ": reason, then Enter";
        reason.focus();
        event.preventDefault();
      }
    } else if (key === "g") {
      pendingG = true;
    } else if (key === "?") {
      window.location.href = "/help";
    }
  });
})();

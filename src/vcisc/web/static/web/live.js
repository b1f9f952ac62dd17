/* Live updates for the console (our own code, no library).
 *
 * Opens the page's event stream (GET /events/, server-sent events) and shows each event in the
 * live region at the top of the page (role="status", aria-live="polite") with a link to the
 * request, and marks the page as having updates. Pages work without it: this only adds.
 */
(function () {
  "use strict";

  var TYPES = ["routing", "offer", "state", "deadline", "timeline", "notification"];
  var SHOWN = 5;

  var region = document.getElementById("live-updates");
  if (!region || typeof window.EventSource !== "function") {
    return;
  }
  var url = region.getAttribute("data-events-url");
  if (!url) {
    return;
  }

  var title = document.title;
  var count = 0;
  var list = null;

  function markUpdated() {
    count += 1;
    document.documentElement.classList.add("has-updates");
    document.documentElement.setAttribute("data-updates", String(count));
    document.title = "(" + count + ") " + title;
  }

  function ensureList() {
    if (list) {
      return list;
    }
    var heading = document.createElement("p");
    heading.className = "live-updates__title";
    heading.textContent = "New since this page loaded (reload to see them in place):";
    list = document.createElement("ul");
    list.className = "live-updates__list";
    region.appendChild(heading);
    region.appendChild(list);
    return list;
  }

  function show(type, raw) {
    var data;
    try {
      data = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (!data || typeof data.summary !== "string") {
      return;
    }
    var item = document.createElement("li");
    item.className = "live-updates__item live-updates__item--" + type;
    var href = typeof data.url === "string" && data.url.charAt(0) === "/" &&
      data.url.charAt(1) !== "/" ? data.url : null;
    if (href) {
      var link = document.createElement("a");
      link.href = href;
      link.textContent = String(data.reference || "Request");
      item.appendChild(link);
      item.appendChild(document.createTextNode(": "));
    }
    item.appendChild(document.createTextNode(data.summary));
    var target = ensureList();
    target.insertBefore(item, target.firstChild);
    while (target.children.length > SHOWN) {
      target.removeChild(target.lastChild);
    }
    markUpdated();
  }

  var source = new window.EventSource(url);
  TYPES.forEach(function (type) {
    source.addEventListener(type, function (event) {
      show(type, event.data);
    });
  });
  source.addEventListener("message", function (event) {
    show("timeline", event.data);
  });
})();

/* DOM helpers shared by the widget and the CRM sandbox (no build step: a plain script, loaded first).
 *
 * el(tag, props, ...children) builds a node with the DOM API only, so candidate text stays inert and the pages need
 * no inline markup: props "class", "text", "dataset", on<event> handlers, else attributes (true: present; null,
 * undefined, false: left out); children nest to any depth, and null, undefined and false are left out.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  window.recmatchDom = Object.freeze({ $, el });
})();

/* Recommended Matches: the widget a recruiting CRM frames next to a talent pipeline.
 *
 * Vanilla JS, no build step. The page's CSP allows only same-origin scripts and styles, so this file never writes
 * inline styles or markup from strings: every node is built with the DOM API (which also keeps candidate text inert).
 * The server fills the <meta name="recmatch-*"> tags; every API call carries the widget token, which can read and
 * act on this one pipeline only.
 */
(() => {
  "use strict";

  const PAGE_SIZE = 25;
  // The action types, as the server declares them (recmatch.actions.registry), in button order.
  const ACTIONS = (() => {
    try {
      return JSON.parse(document.querySelector('meta[name="recmatch-actions"]')?.getAttribute("content") || "{}");
    } catch {
      return {};
    }
  })();
  const STATUS_ACTION = Object.fromEntries(Object.entries(ACTIONS).map(([action, spec]) => [spec.status, action]));
  const RELAXATION_WORDS = {
    wider_radius: "widened the search radius",
    related_titles: "included related job titles",
    fewer_skills: "asked for fewer of the skills",
    title_words: "included people who share only some words of the title or a skill",
    widest_radius: "searched up to 500 km away",
    remote_candidates: "included people open to remote work",
  };
  // Why a candidate is listed only because the list was relaxed (MatchCandidate.relaxed).
  const RELAXED_MARKS = {
    related_title: "related title",
    title_words: "some title words",
    fewer_skills: "fewer skills",
  };
  const uniqueSkills = (skills) => {
    const seen = new Set();
    return (skills || []).filter((skill) => {
      const key = String(skill).trim().toLowerCase();
      if (!key || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  };
  const NOT_EXPORTABLE = "This candidate hasn’t allowed their profile to be exported to a CRM.";

  // -- configuration from the page --------------------------------------------------------------------------------

  const meta = (name) => {
    const value = document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
    return /^\{\{.*\}\}$/.test(value) ? "" : value.trim(); // an unfilled placeholder means nothing
  };
  const config = {
    token: meta("recmatch-token"),
    pipelineId: meta("recmatch-pipeline"),
    tokenState: meta("recmatch-token-state") || "invalid",
    parentOrigins: meta("recmatch-parent-origins").split(/\s+/).filter((origin) => /^https?:\/\/[^/\s]+$/.test(origin)),
    expiresAt: meta("recmatch-expires-at"),
  };
  const base = `/v1/pipelines/${encodeURIComponent(config.pipelineId)}`;

  const state = {
    pipeline: null,
    page: 1,
    pages: 0,
    total: 0,
    snapshot: null,
    listLearningVersion: null,
    learningVersion: null,
    candidates: [],
    relaxation: [],
    unresolved: [],
    done: new Map(), // candidate id -> Set of actions done (from status and from this session)
    expanded: new Set(), // candidate ids whose "Why?" is open
    messages: new Map(), // candidate id -> {text, tone}
    busy: new Set(), // "cid:action" in flight
    limits: new Map(), // action -> detail of the 429
    loadSeq: 0,
    expired: false,
  };

  const { $, el } = window.recmatchDom;  // dom.js

  const ICONS = {
    save: "M4.5 2.5h7v11l-3.5-2.6-3.5 2.6z",
    saved: "M4.5 2.5h7v11l-3.5-2.6-3.5 2.6zM6 7l1.4 1.4L10 5.8",
    inmail: "M2.5 4h11v8h-11zM2.8 4.3L8 8.6l5.2-4.3",
    export: "M8 10V2.5M5 5.3L8 2.5l3 2.8M3 9.5v4h10v-4",
    dismiss: "M4 4l8 8M12 4l-8 8",
    pin: "M8 14s4.5-4.2 4.5-7.5a4.5 4.5 0 0 0-9 0C3.5 9.8 8 14 8 14zM8 8.2a1.6 1.6 0 1 0 0-3.2 1.6 1.6 0 0 0 0 3.2z",
    chevron: "M6 4l4 4-4 4",
    check: "M3.5 8.5l3 3 6-7",
    up: "M8 13V3M4 7l4-4 4 4",
    down: "M8 3v10M4 9l4 4 4-4",
    warn: "M8 2.5l6 11H2zM8 7v3M8 11.8v.2",
    remote: "M2.5 8a5.5 5.5 0 1 0 11 0 5.5 5.5 0 0 0-11 0zM2.5 8h11M8 2.5c1.6 1.6 2.3 3.5 2.3 5.5S9.6 11.9 8 13.5C6.4 11.9 5.7 10 5.7 8S6.4 4.1 8 2.5z",
    info: "M8 14.5a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM8 7.2v4M8 4.8v.2",
  };

  function icon(name, extraClass = "") {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", `rm-icon ${extraClass}`.trim());
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.5");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.append(path);
    return svg;
  }

  const safeId = (text) => String(text).replace(/[^A-Za-z0-9_-]/g, "_");
  const firstName = (name) => String(name || "").trim().split(/\s+/)[0] || "there";
  const capitalise = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : text);

  function newKey() {
    if (window.crypto?.randomUUID) return window.crypto.randomUUID();
    const bytes = window.crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  // -- the parent window (the CRM) ------------------------------------------------------------------------------------

  function tellParent(message) {
    if (window.parent === window) return; // not framed: nobody to tell
    for (const origin of config.parentOrigins) {
      window.parent.postMessage(message, origin); // only the tenant's CRM origins, never "*"
    }
  }

  let lastHeight = 0;
  let resizeTimer = 0;
  function reportHeight() {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      const height = Math.ceil(Math.max(document.body.scrollHeight, $("app").getBoundingClientRect().height));
      if (height === lastHeight) return;
      lastHeight = height;
      tellParent({ type: "recmatch:resized", pipelineId: config.pipelineId, height });
    }, 80);
  }

  // -- screen-reader announcements ------------------------------------------------------------------------------------

  let announceTimer = 0;
  function announce(text) {
    const live = $("live");
    live.textContent = "";
    window.clearTimeout(announceTimer);
    // a fresh text node after a tick, so the same sentence twice is still read
    announceTimer = window.setTimeout(() => { live.textContent = text; }, 50);
  }

  // -- the API --------------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, type, detail, retryAfter) {
      super(detail);
      this.status = status;
      this.type = type;
      this.detail = detail;
      this.retryAfter = retryAfter;
    }
  }

  async function api(method, path, { body, idempotencyKey } = {}) {
    const headers = { Authorization: `Bearer ${config.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "NetworkError", "Recommended Matches could not be reached. Check your connection and try again.");
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10) || null;
      const error = new ApiError(response.status, payload?.type || "HTTPError",
        payload?.detail || `Something went wrong (HTTP ${response.status}).`, retryAfter);
      if (response.status === 401) showExpired(error.type === "TokenExpired" ? "expired" : "invalid");
      throw error;
    }
    return payload;
  }

  function errorText(error) {
    if (error.status === 503) {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again in a moment.";
      return `Search is busy right now.${wait}`;
    }
    return error.detail || "Something went wrong.";
  }

  // -- the expired / invalid state ------------------------------------------------------------------------------------

  function showExpired(kind, { focus = true } = {}) {
    if (state.expired) return;
    state.expired = true;
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
    $("header").hidden = true;
    $("learned").hidden = true;
    $("main").hidden = true;
    $("list").replaceChildren();
    document.querySelector(".rm-skip").hidden = true;
    const panel = $("expired");
    if (kind === "invalid") {
      $("expired-title").textContent = "This view can’t be opened";
      $("expired-text").textContent = "Its link isn’t valid, or was meant for another pipeline.";
    }
    panel.hidden = false;
    document.title = "Recommended Matches: reopen from your CRM";
    if (focus) $("expired-title").focus(); // never on load: a framed page must not take focus from the CRM
    announce(`${$("expired-title").textContent}. Reopen Recommended Matches from your CRM to continue.`);
    reportHeight();
  }

  // -- the header: the pipeline as the CRM synced it ------------------------------------------------------------------

  function renderHeader() {
    const pipeline = state.pipeline;
    if (!pipeline) {
      $("pipeline-title").textContent = "Recommended Matches";
      return;
    }
    $("pipeline-title").textContent = pipeline.title;
    document.title = `Recommended Matches: ${pipeline.title}`;
    const unresolved = new Set([...(pipeline.unresolved_locations || []), ...state.unresolved]
      .map((name) => name.toLowerCase()));
    const locations = (pipeline.locations || []).map((name) => {
      const missing = unresolved.has(name.toLowerCase());
      return el("li", { class: `rm-chip${missing ? " rm-chip--warn" : ""}`,
        title: missing ? "Not found on the map: this location doesn’t narrow the list" : null },
      missing ? icon("warn") : icon("pin"), name,
      missing ? el("span", { class: "rm-sr-only", text: " (not found on the map)" }) : null);
    });
    if (pipeline.remote_ok) locations.push(el("li", { class: "rm-chip rm-chip--soft" }, icon("remote"), "Remote OK"));
    if ((pipeline.locations || []).length) {
      locations.push(el("li", { class: "rm-chip rm-chip--soft", text: `within ${Math.round(pipeline.radius_km)} km` }));
    }
    $("pipeline-locations").replaceChildren(...locations);
    $("fact-locations").hidden = locations.length === 0;
    const skills = uniqueSkills(pipeline.skills).map((skill) => el("li", { class: "rm-chip", text: skill }));
    $("pipeline-skills").replaceChildren(...skills);
    $("fact-skills").hidden = skills.length === 0;
    $("pipeline-facts").hidden = locations.length + skills.length === 0;
    const missing = (pipeline.locations || []).filter((name) => unresolved.has(name.toLowerCase()));
    const warning = $("pipeline-unresolved");
    warning.hidden = missing.length === 0;
    if (missing.length) {
      warning.replaceChildren(icon("warn"), el("span", {
        text: `Couldn’t place ${listWords(missing.map((name) => `“${name}”`))} on the map, so ${missing.length === 1 ? "it doesn’t" : "they don’t"} narrow the list. Check the spelling in your CRM.`,
      }));
    }
  }

  function listWords(items) {
    if (items.length <= 1) return items.join("");
    return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
  }

  // -- learned from your activity -------------------------------------------------------------------------------------

  function renderLearned(learned) {
    const section = $("learned");
    section.hidden = false;
    state.learningVersion = learned.learning_version;
    const items = (learned.items || []).map((item) => el("li", {
      class: `rm-chip rm-chip--${item.direction === "less" ? "less" : "more"}`,
      dataset: { kind: item.kind, direction: item.direction },
    }, icon(item.direction === "less" ? "down" : "up"), item.text));
    $("learned-items").replaceChildren(...items);
    $("learned-items").hidden = items.length === 0;
    $("learned-empty").hidden = items.length > 0;
    $("learned-reset").hidden = items.length === 0;
    markRankingUpdate();
    reportHeight();
  }

  async function loadLearned() {
    try {
      renderLearned(await api("GET", `${base}/learned`));
    } catch (error) {
      if (error.status !== 401) $("learned").hidden = true; // the strip is a bonus: the list still works
    }
  }

  function markRankingUpdate() {
    const stale = state.learningVersion !== null && state.listLearningVersion !== null
      && state.learningVersion !== state.listLearningVersion;
    $("refresh").classList.toggle("rm-btn--attention", stale);
    $("refresh-label").textContent = stale ? "Refresh list · ranking updated" : "Refresh list";
  }

  // -- the list -------------------------------------------------------------------------------------------------------

  function showSkeleton() {
    const list = $("list");
    list.setAttribute("aria-busy", "true");
    $("state").hidden = true;
    $("pager").hidden = true;
    $("list-summary").textContent = "Loading candidates…";
    const skeleton = () => el("li", { class: "rm-card rm-card--skeleton", "aria-hidden": "true" },
      el("span", { class: "rm-skeleton-text rm-skeleton-text--name" }),
      el("span", { class: "rm-skeleton-text" }),
      el("span", { class: "rm-skeleton-text rm-skeleton-text--short" }),
      el("span", { class: "rm-skeleton-row" },
        el("span", { class: "rm-skeleton-chip" }), el("span", { class: "rm-skeleton-chip" }),
        el("span", { class: "rm-skeleton-chip" })));
    list.hidden = false;
    list.replaceChildren(...Array.from({ length: 6 }, skeleton));
  }

  async function loadList({ page = 1, snapshot = null, focus = false, reason = "" } = {}) {
    const seq = ++state.loadSeq;
    showSkeleton();
    const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
    if (snapshot) query.set("snapshot", snapshot);
    let result;
    try {
      result = await api("GET", `${base}/matches?${query}`);
    } catch (error) {
      if (seq !== state.loadSeq || error.status === 401) return;
      if (error.status === 404 && snapshot) {
        // the snapshot is no longer kept (a new day, a new pipeline version): start the current list over
        return loadList({ page: 1, focus, reason: "The list was updated since you opened it. " });
      }
      showListError(error, () => loadList({ page, snapshot, focus: true }));
      return;
    }
    if (seq !== state.loadSeq) return;
    state.page = result.page;
    state.pages = result.pages;
    state.total = result.total;
    state.snapshot = result.snapshot;
    state.relaxation = result.relaxation || [];
    state.unresolved = result.unresolved_locations || [];
    const learned = /-l(\d+)$/.exec(result.snapshot || "");
    state.listLearningVersion = learned ? Number(learned[1]) : null;
    state.candidates = result.candidates;
    for (const candidate of result.candidates) {
      const done = state.done.get(candidate.candidate_id) || new Set();
      if (STATUS_ACTION[candidate.status]) done.add(STATUS_ACTION[candidate.status]);
      state.done.set(candidate.candidate_id, done);
    }
    renderHeader();
    renderList();
    markRankingUpdate();
    const summary = summaryText();
    if (focus) {
      $("list-heading").focus({ preventScroll: true });
      $("list-heading").scrollIntoView({ block: "start" });
    }
    announce(`${reason}${state.total ? `${summary}. Page ${state.page} of ${state.pages}.` : "No candidates match yet."}`);
  }

  function summaryText() {
    if (!state.total) return "No candidates";
    const first = (state.page - 1) * PAGE_SIZE + 1;
    const last = Math.min(state.total, first + state.candidates.length - 1);
    return `${first}–${last} of ${state.total}`;
  }

  function showListError(error, retry) {
    const list = $("list");
    list.replaceChildren();
    list.hidden = true;
    list.setAttribute("aria-busy", "false");
    $("pager").hidden = true;
    $("list-summary").textContent = "";
    const button = el("button", { type: "button", class: "rm-btn rm-btn--primary", onclick: retry, text: "Try again" });
    const title = error.status === 404 ? "This pipeline isn’t available"
      : error.status === 429 ? "Limit reached" : "Couldn’t load candidates";
    $("state").replaceChildren(el("div", { class: "rm-state-box rm-state-box--error", role: "alert" },
      icon("warn", "rm-state-icon"),
      el("h3", { class: "rm-state-title", text: title }),
      el("p", { text: errorText(error) }),
      error.status === 404 ? null : button));
    $("state").hidden = false;
    reportHeight();
  }

  function showEmpty() {
    const relaxed = state.relaxation.map((step) => RELAXATION_WORDS[step] || step.replace(/_/g, " "));
    const unresolved = state.unresolved.length ? state.unresolved : (state.pipeline?.unresolved_locations || []);
    $("state").replaceChildren(el("div", { class: "rm-state-box" },
      icon("info", "rm-state-icon"),
      el("h3", { class: "rm-state-title", text: "No candidates match yet" }),
      relaxed.length ? el("p", { text: `To find more, we already ${listWords(relaxed)}.` }) : null,
      unresolved.length ? el("p", { class: "rm-warning" }, icon("warn"), el("span", {
        text: `Couldn’t place ${listWords(unresolved.map((name) => `“${name}”`))} on the map.`,
      })) : null,
      el("p", { class: "rm-muted", text: "Try a more common job title, fewer required skills, a wider radius or "
        + "allowing remote candidates in your CRM pipeline, then refresh the list." }),
      el("button", { type: "button", class: "rm-btn rm-btn--ghost", text: "Refresh list", onclick: refreshAll })));
    $("state").hidden = false;
  }

  function renderList() {
    const list = $("list");
    list.setAttribute("aria-busy", "false");
    $("list-summary").textContent = state.total ? summaryText() : "";
    renderNotices();
    if (!state.total) {
      list.replaceChildren();
      list.hidden = true;
      $("pager").hidden = true;
      showEmpty();
      reportHeight();
      return;
    }
    $("state").hidden = true;
    list.hidden = false;
    list.replaceChildren(...state.candidates.map(renderCard));
    renderPager();
    reportHeight();
  }

  function renderPager() {
    const pager = $("pager");
    if (state.pages <= 1) {
      pager.hidden = true;
      pager.replaceChildren();
      return;
    }
    const go = (page) => () => {
      if (page >= 1 && page <= state.pages && page !== state.page) {
        loadList({ page, snapshot: state.snapshot, focus: true });
      }
    };
    const numbers = [];
    for (let page = 1; page <= state.pages; page += 1) {
      const current = page === state.page;
      numbers.push(el("li", {}, el("button", {
        type: "button", class: `rm-page${current ? " rm-page--current" : ""}`, "aria-label": `Page ${page}`,
        "aria-current": current ? "page" : null, dataset: { page: String(page) }, onclick: go(page), text: String(page),
      })));
    }
    const prev = el("button", { type: "button", class: "rm-page rm-page--step", "aria-label": "Previous page",
      disabled: state.page <= 1, dataset: { page: "prev" }, onclick: go(state.page - 1) }, "‹ Prev");
    const next = el("button", { type: "button", class: "rm-page rm-page--step", "aria-label": "Next page",
      disabled: state.page >= state.pages, dataset: { page: "next" }, onclick: go(state.page + 1) }, "Next ›");
    pager.replaceChildren(
      el("p", { class: "rm-pager-summary", text: summaryText() }),
      el("ul", { class: "rm-pages" }, el("li", {}, prev), numbers, el("li", {}, next)));
    pager.hidden = false;
  }

  function renderNotices() {
    const notices = [...state.limits.entries()].map(([action, detail]) => el("div",
      { class: "rm-notice rm-notice--warn", dataset: { limit: action } },
      icon("warn"), el("p", {}, el("strong", { text: `${ACTIONS[action]?.short || action} limit reached. ` }), detail)));
    if (state.total && state.relaxation.length) {
      // Always say what was relaxed, not only when the list is empty: the marked candidates are there because of it.
      const relaxed = state.relaxation.map((step) => RELAXATION_WORDS[step] || step.replace(/_/g, " "));
      notices.push(el("div", { class: "rm-notice rm-notice--info", id: "relaxation", dataset: { relaxation:
        state.relaxation.join(" ") } }, icon("info"), el("p", {},
        el("strong", { text: "Fewer than 125 candidates matched exactly. " }),
        `To fill the list, we ${listWords(relaxed)}. Candidates listed only because of this are marked.`)));
    }
    $("notices").replaceChildren(...notices);
  }

  function relaxedMarks(candidate) {
    const marks = [];
    for (const mark of candidate.relaxed || []) {
      const radius = state.pipeline?.radius_km;
      const text = mark === "outside_radius"
        ? (radius ? `outside your ${Math.round(radius)} km` : "outside your area") : RELAXED_MARKS[mark];
      if (text) marks.push(el("span", { class: "rm-badge rm-badge--relaxed", dataset: { relaxed: mark }, text }));
    }
    return marks;
  }

  // -- one candidate --------------------------------------------------------------------------------------------------

  function whereText(candidate) {
    const parts = [];
    const area = (candidate.reasons || []).find((reason) => /^in /.test(reason));
    if (area && candidate.distance_km != null) parts.push(area);  // inside a region or country it names
    else if (candidate.distance_km != null && candidate.nearest_location) {
      const km = candidate.distance_km < 1 ? "< 1" : Math.round(candidate.distance_km).toLocaleString("en");
      parts.push(`${km} km from ${candidate.nearest_location}`);
    } else if (candidate.distance_km != null) parts.push(`${Math.round(candidate.distance_km)} km away`);
    if (candidate.open_to_remote) parts.push("open to remote");
    return parts.join(" · ");
  }

  function plainReason(reason) {
    let match;
    if ((match = /^title: (.+) ~ (.+)$/.exec(reason))) return `Current title “${match[1]}” is a ${match[2]} role`;
    if ((match = /^title ~ (.+)$/.exec(reason))) return `Current role is a ${match[1]} role`;
    if ((match = /^title: (.+)$/.exec(reason))) return `Current title “${match[1]}” matches the job title`;
    if ((match = /^related title: (.+)$/.exec(reason))) return `Works in a related role: ${match[1]}`;
    if ((match = /^past title ~ (.+)$/.exec(reason))) return `Previously worked as ${match[1]}`;
    if ((match = /^past title: (.+)$/.exec(reason))) return `Previously held the title “${match[1]}”`;
    if ((match = /^skills: (.+)$/.exec(reason))) {
      const count = match[1].split(", ").length;
      return `Has ${count === 1 ? "one" : count} of your skills: ${match[1]}`;
    }
    if ((match = /^in (.+)$/.exec(reason))) return `Based in ${match[1]}`;
    if (/ km from /.test(reason)) return `Lives ${reason}`;
    if (reason === "open to remote") return "Open to remote work";
    return capitalise(reason);
  }

  function renderCard(candidate) {
    const cid = candidate.candidate_id;
    const key = `${safeId(cid)}-${candidate.rank}`;
    const done = state.done.get(cid) || new Set();
    const dismissed = candidate.status === "dismissed";
    const nameId = `name-${key}`;
    const whyId = `why-${key}`;
    const expanded = state.expanded.has(cid);
    const name = candidate.profile_url
      ? el("a", { href: candidate.profile_url, target: "_blank", rel: "noopener noreferrer", class: "rm-name-link",
        text: candidate.name })
      : candidate.name;
    const badges = [];
    if (candidate.new) badges.push(el("span", { class: "rm-badge rm-badge--new", text: "New" }));
    badges.push(...relaxedMarks(candidate));
    if (candidate.status) {
      badges.push(el("span", { class: `rm-badge rm-badge--status rm-badge--${candidate.status}`,
        dataset: { status: candidate.status } }, icon("check"),
      ACTIONS[STATUS_ACTION[candidate.status]]?.done || capitalise(candidate.status)));
    }
    const role = [candidate.title, candidate.company].filter(Boolean).join(" · ");
    const where = whereText(candidate);
    const skills = uniqueSkills(candidate.matched_skills).map((skill) => el("li", { class: "rm-chip rm-chip--match" },
      icon("check"), skill));
    const reasons = (candidate.reasons || []).map((reason) => el("li", { text: plainReason(reason) }));
    const message = state.messages.get(cid);
    const buttons = Object.keys(ACTIONS).map((action) => actionButton(candidate, action, done, key));
    const exportBlocked = !candidate.allow_export;
    return el("li", { class: `rm-card${dismissed ? " rm-card--dismissed" : ""}`, dataset: { candidateId: cid } },
      el("article", { "aria-labelledby": nameId, class: "rm-card-inner" },
        el("div", { class: "rm-card-head" },
          el("h3", { class: "rm-name", id: nameId }, name),
          badges.length ? el("div", { class: "rm-badges" }, badges) : null,
          el("span", { class: "rm-rank", title: `Rank ${candidate.rank}`, "aria-label": `Rank ${candidate.rank}`,
            text: `#${candidate.rank}` })),
        candidate.headline ? el("p", { class: "rm-headline", text: candidate.headline }) : null,
        role ? el("p", { class: "rm-role", text: role }) : null,
        candidate.location || where ? el("p", { class: "rm-where" }, icon("pin"),
          el("span", { text: [candidate.location, where].filter(Boolean).join(" — ") })) : null,
        skills.length ? el("ul", { class: "rm-chips rm-skills", "aria-label": "Matched skills" }, skills) : null,
        reasons.length ? el("div", { class: "rm-why" },
          el("button", { type: "button", class: "rm-why-toggle", "aria-expanded": expanded ? "true" : "false",
            "aria-controls": whyId, dataset: { focus: "why" }, onclick: () => toggleWhy(cid) },
          icon("chevron", "rm-why-chevron"), "Why?",
          el("span", { class: "rm-sr-only", text: ` ${candidate.name} matches` })),
          el("div", { class: "rm-why-body", id: whyId, role: "region", "aria-label": `Why ${candidate.name} matches`,
            hidden: !expanded }, el("ul", { class: "rm-reasons" }, reasons))) : null,
        el("div", { class: "rm-actions", role: "group", "aria-label": `Actions for ${candidate.name}` }, buttons),
        exportBlocked ? el("p", { class: "rm-sr-only", id: `noexport-${key}`, text: NOT_EXPORTABLE }) : null,
        message ? el("p", { class: `rm-card-msg rm-card-msg--${message.tone}`, dataset: { message: message.tone } },
          message.tone === "error" ? icon("warn") : icon("info"), el("span", { text: message.text })) : null));
  }

  function actionButton(candidate, action, done, key) {
    const spec = ACTIONS[action];
    const cid = candidate.candidate_id;
    const isDone = done.has(action);
    const busy = state.busy.has(`${cid}:${action}`);
    const limited = state.limits.has(action) && !isDone;
    const noExport = action === "export" && !candidate.allow_export && !isDone;
    const unavailable = isDone || busy || limited || noExport;
    let label = isDone ? spec.done : spec.verb;
    if (busy) label = action === "inmail" ? "Sending…" : `${spec.verb}…`;
    let title = null;
    if (noExport) title = NOT_EXPORTABLE;
    else if (limited) title = `${ACTIONS[action].short} limit reached: ${state.limits.get(action)}`;
    else if (isDone) title = `${spec.done}`;
    return el("button", {
      type: "button",
      class: `rm-btn rm-btn--action rm-btn--${action}${isDone ? " rm-btn--done" : ""}${unavailable ? " is-unavailable" : ""}`,
      "aria-label": isDone ? `${spec.done}: ${candidate.name}` : `${spec.verb} ${candidate.name}`,
      "aria-disabled": unavailable ? "true" : null, // stays focusable, so the reason can be read and focus kept
      "aria-describedby": noExport ? `noexport-${key}` : null,
      title,
      dataset: { action, focus: `action:${action}` },
      onclick: (event) => onAction(event, candidate, action),
    }, icon(isDone && action === "save" ? "saved" : isDone ? "check" : action), el("span", { text: label }));
  }

  function findCard(cid) {
    return [...$("list").children].find((node) => node.dataset.candidateId === cid) || null;
  }

  /* Rebuild one card in place, keeping keyboard focus on the same control. */
  function updateCard(cid) {
    const candidate = state.candidates.find((item) => item.candidate_id === cid);
    const old = findCard(cid);
    if (!candidate || !old) return;
    const focused = old.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    const fresh = renderCard(candidate);
    old.replaceWith(fresh);
    if (focused) fresh.querySelector(`[data-focus="${focused}"]`)?.focus();
    reportHeight();
  }

  function toggleWhy(cid) {
    if (state.expanded.has(cid)) state.expanded.delete(cid);
    else state.expanded.add(cid);
    const card = findCard(cid);
    const toggle = card?.querySelector(".rm-why-toggle");
    if (!toggle) return;
    const open = state.expanded.has(cid);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    $(toggle.getAttribute("aria-controls")).hidden = !open;
    reportHeight();
  }

  // -- actions --------------------------------------------------------------------------------------------------------

  function onAction(event, candidate, action) {
    const button = event.currentTarget;
    const cid = candidate.candidate_id;
    if (state.busy.has(`${cid}:${action}`)) return;
    if ((state.done.get(cid) || new Set()).has(action)) {
      announce(`${ACTIONS[action].done}: ${candidate.name}.`);
      return;
    }
    if (action === "export" && !candidate.allow_export) {
      setMessage(cid, NOT_EXPORTABLE, "info");
      announce(NOT_EXPORTABLE);
      return;
    }
    if (state.limits.has(action)) {
      announce(`${ACTIONS[action].short} limit reached. ${state.limits.get(action)}`);
      return;
    }
    if (action === "inmail") openComposer(candidate, button);
    else if (action === "dismiss") openDismiss(candidate, button);
    else perform(candidate, action).catch(() => {});
  }

  function setMessage(cid, text, tone) {
    if (text) state.messages.set(cid, { text, tone });
    else state.messages.delete(cid);
    updateCard(cid);
  }

  /* POST one action; resolves with its result, or rejects with an ApiError already shown on the card. */
  async function perform(candidate, action, body) {
    const cid = candidate.candidate_id;
    const busyKey = `${cid}:${action}`;
    state.busy.add(busyKey);
    state.messages.delete(cid);
    updateCard(cid);
    let result;
    try {
      result = await api("POST", `${base}/candidates/${encodeURIComponent(cid)}/${action}`, {
        body, idempotencyKey: newKey(), // one key a click: a retried request never acts twice
      });
    } catch (error) {
      state.busy.delete(busyKey);
      if (error.status === 401) throw error;
      if (error.status === 429) {
        state.limits.set(action, error.detail);
        renderNotices();
        for (const item of state.candidates) updateCard(item.candidate_id);
        announce(`${ACTIONS[action].short} limit reached. ${error.detail}`);
      } else if (error.type === "NotExportable") {
        candidate.allow_export = false;
        setMessage(cid, error.detail || NOT_EXPORTABLE, "info");
        announce(error.detail || NOT_EXPORTABLE);
      } else {
        setMessage(cid, errorText(error), "error");
        announce(`${ACTIONS[action].verb} didn’t work for ${candidate.name}: ${errorText(error)}`);
      }
      updateCard(cid);
      throw error;
    }
    state.busy.delete(busyKey);
    const done = state.done.get(cid) || new Set();
    done.add(action);
    state.done.set(cid, done);
    candidate.status = result.status || ACTIONS[action].status;
    const detail = action === "dismiss" && body?.reason ? ` (${body.reason})` : "";
    const suffix = action === "export" ? " to your CRM" : "";
    state.messages.delete(cid);
    updateCard(cid);
    announce(`${ACTIONS[action].said} ${candidate.name}${suffix}${detail}.`);
    tellParent({ type: ACTIONS[action].message, pipelineId: config.pipelineId, candidateId: cid,
      status: candidate.status });
    if (typeof result.learning_version === "number") state.learningVersion = result.learning_version;
    markRankingUpdate();
    loadLearned();
    return result;
  }

  // -- dialogs --------------------------------------------------------------------------------------------------------

  const openers = new WeakMap();

  function openDialog(dialog, opener) {
    openers.set(dialog, opener);
    dialog.showModal();
  }

  function wireDialog(dialog) {
    dialog.addEventListener("close", () => {
      const opener = openers.get(dialog);
      openers.delete(dialog);
      if (opener && opener.isConnected) opener.focus();
      else if (opener?.dataset.focus) {
        // the card was rebuilt while the dialog was open: focus the same control on the new card
        const card = findCard(dialog.dataset.candidateId || "");
        card?.querySelector(`[data-focus="${opener.dataset.focus}"]`)?.focus();
      }
      reportHeight();
    });
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close(); // a click on the backdrop
    });
  }

  function showFormError(id, text) {
    const node = $(id);
    node.textContent = text || "";
    node.hidden = !text;
  }

  let composing = null;

  function inmailTemplate(candidate) {
    const role = state.pipeline?.title || "an open";
    const current = [candidate.title, candidate.company].filter(Boolean).join(" at ");
    const skills = (candidate.matched_skills || []).slice(0, 3);
    const subject = `${role} opportunity`.slice(0, 200);
    const lines = [
      `Hi ${firstName(candidate.name)},`,
      "",
      `I’m hiring for a ${role} role and your background${current ? ` as ${current}` : ""} caught my eye`
        + `${skills.length ? `, especially your experience with ${listWords(skills)}` : ""}.`,
      "",
      "Would you be open to a short conversation about it? If so, the link below lets you share your email and "
        + "phone number with me, and I’ll reach out directly.",
      "",
      "Best regards",
    ];
    return { subject, body: lines.join("\n") };
  }

  function openComposer(candidate, opener) {
    composing = candidate;
    const template = inmailTemplate(candidate);
    $("composer").dataset.candidateId = candidate.candidate_id;
    $("composer-title").textContent = `InMail to ${candidate.name}`;
    $("composer-subject").value = template.subject;
    $("composer-body").value = template.body;
    updateCount();
    showFormError("composer-error", "");
    setDialogBusy("composer-send", false, "Send InMail");
    openDialog($("composer"), opener);
    $("composer-subject").focus();
  }

  function updateCount() {
    const length = $("composer-body").value.length;
    $("composer-count").textContent = `${length.toLocaleString()} / 5,000 characters`;
  }

  function setDialogBusy(buttonId, busy, label) {
    const button = $(buttonId);
    button.disabled = busy;
    button.textContent = label;
  }

  async function sendInMail(event) {
    event.preventDefault();
    const candidate = composing;
    if (!candidate) return;
    const subject = $("composer-subject").value.trim();
    const body = $("composer-body").value.trim();
    if (!subject || !body) {
      showFormError("composer-error", !subject ? "Add a subject." : "Write a message.");
      (!subject ? $("composer-subject") : $("composer-body")).focus();
      return;
    }
    showFormError("composer-error", "");
    setDialogBusy("composer-send", true, "Sending…");
    try {
      await perform(candidate, "inmail", { subject, body, share_prompt: true });
      $("composer").close();
    } catch (error) {
      if (error.status === 401) return;
      showFormError("composer-error", error.status === 429
        ? `InMail limit reached. ${error.detail}` : errorText(error));
      setDialogBusy("composer-send", error.status === 429, "Send InMail");
    }
  }

  let dismissing = null;

  function openDismiss(candidate, opener) {
    dismissing = candidate;
    $("dismisser").dataset.candidateId = candidate.candidate_id;
    $("dismiss-title").textContent = `Dismiss ${candidate.name}`;
    $("dismiss-form").reset();
    showFormError("dismiss-error", "");
    setDialogBusy("dismiss-send", false, "Dismiss");
    openDialog($("dismisser"), opener);
    $("dismisser").querySelector('input[name="reason"]').focus();
  }

  async function sendDismiss(event) {
    event.preventDefault();
    const candidate = dismissing;
    if (!candidate) return;
    const reason = $("dismisser").querySelector('input[name="reason"]:checked')?.value;
    if (!reason) {
      showFormError("dismiss-error", "Choose what doesn’t fit, so the list can learn from it.");
      $("dismisser").querySelector('input[name="reason"]').focus();
      return;
    }
    const note = $("dismiss-note").value.trim();
    setDialogBusy("dismiss-send", true, "Dismissing…");
    try {
      await perform(candidate, "dismiss", note ? { reason, note } : { reason });
      $("dismisser").close();
    } catch (error) {
      if (error.status === 401) return;
      showFormError("dismiss-error", errorText(error));
      setDialogBusy("dismiss-send", false, "Dismiss");
    }
  }

  async function confirmReset(event) {
    event.preventDefault();
    showFormError("reset-error", "");
    setDialogBusy("reset-confirm", true, "Resetting…");
    try {
      renderLearned(await api("DELETE", `${base}/learned`));
    } catch (error) {
      if (error.status === 401) return;
      showFormError("reset-error", errorText(error));
      setDialogBusy("reset-confirm", false, "Reset");
      return;
    }
    openers.delete($("confirm-reset")); // the Reset button is gone now: focus goes to the new list instead
    $("confirm-reset").close();
    await loadList({ page: 1, focus: true, reason: "Reset what was learned. A new list is loaded: " });
  }

  // -- loading everything ---------------------------------------------------------------------------------------------

  async function loadPipeline() {
    try {
      state.pipeline = await api("GET", base);
    } catch (error) {
      if (error.status === 401) return;
      state.pipeline = null;
    }
    renderHeader();
  }

  async function refreshAll() {
    await Promise.all([loadPipeline(), loadList({ page: 1, focus: true }), loadLearned()]);
  }

  function start() {
    ["composer", "dismisser", "confirm-reset"].forEach((id) => wireDialog($(id)));
    $("composer-form").addEventListener("submit", sendInMail);
    $("composer-body").addEventListener("input", updateCount);
    $("composer-cancel").addEventListener("click", () => $("composer").close());
    $("dismiss-form").addEventListener("submit", sendDismiss);
    $("dismiss-cancel").addEventListener("click", () => $("dismisser").close());
    $("reset-form").addEventListener("submit", confirmReset);
    $("reset-cancel").addEventListener("click", () => $("confirm-reset").close());
    $("learned-reset").addEventListener("click", (event) => {
      showFormError("reset-error", "");
      setDialogBusy("reset-confirm", false, "Reset");
      openDialog($("confirm-reset"), event.currentTarget);
      $("reset-cancel").focus();
    });
    $("refresh").addEventListener("click", () => refreshAll());
    if ("ResizeObserver" in window) new ResizeObserver(reportHeight).observe($("app"));
    reportHeight();
    if (!config.token || !config.pipelineId || config.tokenState !== "valid") {
      showExpired(config.tokenState === "expired" ? "expired" : "invalid", { focus: false });
      return;
    }
    Promise.all([loadPipeline(), loadList({ page: 1 }), loadLearned()]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

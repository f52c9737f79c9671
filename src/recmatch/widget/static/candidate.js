/* One candidate as a recruiter reads it: reasons in plain words, the strength of the match, the detail panel, and
 * the in-list filters. Pure functions over the API's candidate and pipeline objects (no state, no requests); the
 * widget (widget.js) calls them. Loaded after dom.js, before widget.js.
 */
(() => {
  "use strict";

  const { el } = window.recmatchDom;

  const fold = (text) => String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  const singular = (occupation) => String(occupation).replace(/s$/, "").replace(/ies$/, "y");
  const kmWords = (km) => (km < 1 ? "under 1 km" : `${Math.round(km).toLocaleString("en")} km`);

  function article(phrase) {
    return /^[aeiou]/i.test(String(phrase).trim()) && !/^(uni|use|eu|one)/i.test(String(phrase).trim()) ? "an" : "a";
  }

  /* The reasons a recruiter would give, from the API's terse ones ("title: X ~ Occupation", "skills: A, B",
   * "27 km from Austin", "in Texas", "open to remote"); a distance outside the pipeline's radius is no reason. */
  function reasonsFor(candidate, pipeline) {
    const wanted = fold(pipeline?.title);
    const radius = Number(pipeline?.radius_km) || null;
    const skillsWanted = (pipeline?.skills || []).length;
    const words = [];
    for (const reason of candidate.reasons || []) {
      let match;
      if ((match = /^title: (.+) ~ (.+)$/.exec(reason))) {
        words.push(fold(match[1]) === wanted
          ? `Current title is the one you’re hiring for: ${match[1]}`
          : `Works as ${match[1]}, the same kind of role (${singular(match[2])})`);
      } else if ((match = /^title ~ (.+)$/.exec(reason))) {
        words.push(`Works in the same kind of role (${singular(match[1])})`);
      } else if ((match = /^title: (.+)$/.exec(reason))) {
        words.push(fold(match[1]) === wanted ? `Current title is the one you’re hiring for: ${match[1]}`
          : `Current title is close to yours: ${match[1]}`);
      } else if ((match = /^related title: (.+)$/.exec(reason))) {
        words.push(`Works in a related role (${singular(match[1])})`);
      } else if ((match = /^past title ~ (.+)$/.exec(reason))) {
        words.push(`Has worked in this kind of role before (${singular(match[1])})`);
      } else if ((match = /^past title: (.+)$/.exec(reason))) {
        words.push(`Has held the title before: ${match[1]}`);
      } else if ((match = /^skills: (.+)$/.exec(reason))) {
        const skills = match[1].split(", ");
        words.push(skillsWanted && skills.length === skillsWanted
          ? `Has all ${skillsWanted === 1 ? "the" : skillsWanted} skills you asked for: ${match[1]}`
          : `Has ${skills.length} of the ${skillsWanted || skills.length} skills you asked for: ${match[1]}`);
      } else if ((match = /^in (.+)$/.exec(reason))) {
        words.push(`Lives in ${match[1]}`);
      } else if ((match = /^(.+) from (.+)$/.exec(reason)) && candidate.distance_km != null) {
        if (radius === null || candidate.distance_km <= radius) {
          words.push(`Lives ${kmWords(candidate.distance_km)} from ${match[2]}, within your ${Math.round(radius || 0)} km`);
        }
      } else if (reason === "open to remote") {
        words.push("Open to working remotely");
      } else {
        words.push(reason.charAt(0).toUpperCase() + reason.slice(1));
      }
    }
    return words;
  }

  /* How strong the match is, from what it rests on (not from the raw score, which only orders one list):
   * the title (same role 2, related or past 1), the skills (share of those asked for, 0-2), and the place. */
  function strength(candidate, pipeline) {
    const reasons = candidate.reasons || [];
    let points = 0;
    if (reasons.some((reason) => /^title(:| ~)/.test(reason))) points += 2;
    else if (reasons.some((reason) => /^(related title|past title)/.test(reason))) points += 1;
    const asked = (pipeline?.skills || []).length;
    if (asked) points += 2 * ((candidate.matched_skills || []).length / asked);
    const radius = Number(pipeline?.radius_km) || Infinity;
    const near = reasons.some((reason) => /^in /.test(reason))
      || (candidate.distance_km != null && candidate.distance_km <= radius);
    const located = (pipeline?.locations || []).length > 0;
    if (!located || near || (pipeline?.remote_ok && candidate.open_to_remote)) points += 1;
    const most = asked ? 5 : 3;
    const share = points / most;
    if (share >= 0.75) return { level: 3, label: "Strong match" };
    if (share >= 0.45) return { level: 2, label: "Good match" };
    return { level: 1, label: "Partial match" };
  }

  function strengthMeter(candidate, pipeline) {
    const { level, label } = strength(candidate, pipeline);
    return el("span", { class: `rm-strength rm-strength--${level}`, dataset: { strength: String(level) },
      title: label, role: "img", "aria-label": label },
    el("span", { class: "rm-strength-bars", "aria-hidden": "true" },
      [1, 2, 3].map((bar) => el("span", { class: `rm-strength-bar${bar <= level ? " is-on" : ""}` }))),
    el("span", { class: "rm-strength-label", text: label }));
  }

  const SENIORITY = { entry: "Entry level", junior: "Junior", mid: "Mid-level", senior: "Senior", lead: "Lead",
    manager: "Manager", director: "Director", executive: "Executive" };

  /* The detail panel: what a recruiter checks before acting. */
  function detailPanel(candidate, id) {
    const matched = new Set((candidate.matched_skills || []).map(fold));
    const years = candidate.years_experience;
    const rows = [
      ["Open to work", candidate.open_to_work ? "Yes, looking now" : "Not said"],
      ["Experience", years == null ? "Not given" : `${Number(years).toLocaleString("en")} year${years === 1 ? "" : "s"}`],
      ["Seniority", SENIORITY[candidate.seniority] || "Not given"],
      ["Remote", candidate.open_to_remote ? "Open to remote work" : "Not said"],
      ["Current role", [candidate.title, candidate.company].filter(Boolean).join(" at ") || "Not given"],
    ];
    const past = candidate.past_titles || [];
    const skills = candidate.skills || [];
    return el("div", { class: "rm-detail", id, role: "region", "aria-label": `About ${candidate.name}` },
      el("dl", { class: "rm-detail-facts" }, rows.map(([term, value]) => el("div", { class: "rm-detail-row",
        dataset: { fact: term.toLowerCase().replace(/\s+/g, "-") } }, el("dt", { text: term }), el("dd", { text: value })))),
      el("div", { class: "rm-detail-row", dataset: { fact: "past-titles" } }, el("p", { class: "rm-detail-term", text: "Past titles" }),
        past.length ? el("ul", { class: "rm-detail-list" }, past.map((title) => el("li", { text: title })))
          : el("p", { class: "rm-muted", text: "None given" })),
      el("div", { class: "rm-detail-row", dataset: { fact: "skills" } }, el("p", { class: "rm-detail-term", text: `All skills (${skills.length})` }),
        skills.length ? el("ul", { class: "rm-chips" }, skills.map((skill) => el("li", {
          class: `rm-chip${matched.has(fold(skill)) ? " rm-chip--match" : ""}`, text: skill })))
          : el("p", { class: "rm-muted", text: "None given" })));
  }

  /* The in-list filters: must-have skill, distance, open to work, new since yesterday. */
  function passes(candidate, filters) {
    if (filters.skill && !(candidate.matched_skills || []).some((skill) => fold(skill) === fold(filters.skill))) {
      return false;
    }
    if (filters.maxKm) {
      const inside = (candidate.reasons || []).some((reason) => /^in /.test(reason));
      if (!inside && (candidate.distance_km == null || candidate.distance_km > filters.maxKm)) return false;
    }
    if (filters.openToWork && !candidate.open_to_work) return false;
    if (filters.newOnly && !candidate.new) return false;
    return true;
  }

  const active = (filters) => Boolean(filters.skill || filters.maxKm || filters.openToWork || filters.newOnly);

  window.recmatchCandidate = Object.freeze({ article, reasonsFor, strength, strengthMeter, detailPanel, passes,
    filtersActive: active });
})();

/* The CRM sandbox: a fake pipeline form, the framed widget, and a log of the messages the widget posts.
 *
 * Saving the form calls POST /sandbox/api/pipelines/{id}, which syncs the pipeline as the demo tenant and mints a
 * widget token; the frame then opens the widget URL it answers with. ?pipeline=<id> picks another pipeline id.
 */
(() => {
  "use strict";

  const { $, el } = window.recmatchDom;  // dom.js
  const MAX_LOG = 200;
  let received = 0;

  /* "Austin, TX, Remote" → ["Austin, TX", "Remote"]: short upper-case codes stay with the place before them. */
  function splitLocations(text) {
    const value = text.trim();
    if (!value) return [];
    if (/[;\n]/.test(value)) return value.split(/[;\n]/).map((part) => part.trim()).filter(Boolean);
    const places = [];
    for (const part of value.split(",").map((piece) => piece.trim()).filter(Boolean)) {
      if (places.length && /^[A-Z]{2,3}$/.test(part)) places[places.length - 1] += `, ${part}`;
      else places.push(part);
    }
    return places;
  }

  const splitList = (text) => text.split(/[,;\n]/).map((part) => part.trim()).filter(Boolean);

  function formPipeline() {
    return {
      title: $("pipeline-title").value.trim(),
      locations: splitLocations($("pipeline-locations").value),
      skills: splitList($("pipeline-skills").value),
      remote_ok: $("pipeline-remote").checked,
      radius_km: Number($("pipeline-radius").value),
    };
  }

  function showError(text) {
    $("sync-error").textContent = text || "";
    $("sync-error").hidden = !text;
  }

  function timeOf(iso) {
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  async function savePipeline(event) {
    event?.preventDefault();
    showError("");
    const pipelineId = $("pipeline-id").value.trim();
    const pipeline = formPipeline();
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(pipelineId)) {
      showError("Pipeline id: 1–128 letters, digits, dots, colons, dashes or underscores.");
      $("pipeline-id").focus();
      return;
    }
    if (!pipeline.title) {
      showError("Give the pipeline a job title.");
      $("pipeline-title").focus();
      return;
    }
    if (!(pipeline.radius_km >= 1 && pipeline.radius_km <= 500)) {
      showError("Radius: between 1 and 500 km.");
      $("pipeline-radius").focus();
      return;
    }
    const button = $("save-pipeline");
    button.disabled = true;
    $("sync-status").textContent = "Syncing the pipeline…";
    try {
      const response = await fetch(`/sandbox/api/pipelines/${encodeURIComponent(pipelineId)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(pipeline),
      });
      const answer = await response.json().catch(() => null);
      if (!response.ok) {
        throw new Error(answer?.detail || `The sandbox answered HTTP ${response.status}.`);
      }
      $("widget").src = answer.widget_url;
      const version = answer.pipeline?.version ? ` (version ${answer.pipeline.version})` : "";
      $("sync-status").textContent = `Synced “${answer.pipeline?.title || pipeline.title}”${version}. `
        + `The widget’s token is valid until ${timeOf(answer.expires_at)}; save again to reopen it later.`;
      const url = new URL(window.location.href);
      if (url.searchParams.get("pipeline") !== pipelineId) {
        url.searchParams.set("pipeline", pipelineId);
        window.history.replaceState(null, "", url);
      }
    } catch (error) {
      $("sync-status").textContent = "";
      showError(error instanceof TypeError ? "The sandbox could not be reached." : error.message);
    } finally {
      button.disabled = false;
    }
  }

  function setWidth() {
    const width = document.querySelector('input[name="frame-width"]:checked')?.value || "fill";
    const frame = $("widget");
    frame.classList.toggle("sb-frame--360", width === "360");
    frame.classList.toggle("sb-frame--1200", width === "1200");
    $("frame-scroller").classList.toggle("sb-frame-scroller--fixed", width !== "fill");
  }

  function logMessage(event) {
    if (event.origin !== window.location.origin) return; // only the widget this page framed, on its own origin
    const message = event.data;
    if (!message || typeof message.type !== "string" || !message.type.startsWith("recmatch:")) return;
    received += 1;
    const now = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const { type, ...payload } = message;
    const log = $("log");
    const latest = log.firstElementChild;
    if (type === "recmatch:resized" && latest?.dataset.type === type) {
      // the frame resizes often while it loads: one line that keeps the latest height and a count
      const repeats = Number(latest.dataset.repeats || "1") + 1;
      latest.dataset.repeats = String(repeats);
      latest.querySelector(".sb-log-time").textContent = now;
      latest.querySelector(".sb-log-body").textContent = `${JSON.stringify(payload)}  ×${repeats}`;
      $("log-count").textContent = `${received} received`;
      return;
    }
    const entry = el("li", { class: "sb-log-entry", dataset: { type } },
      el("time", { class: "sb-log-time", text: now }),
      el("code", { class: `sb-log-type sb-log-type--${type.slice("recmatch:".length)}`, text: type }),
      el("code", { class: "sb-log-body", text: JSON.stringify(payload) }));
    log.prepend(entry);
    while (log.children.length > MAX_LOG) log.lastElementChild.remove();
    $("log-count").textContent = `${received} received`;
  }

  /* What a CRM does when the widget posts recmatch:token-expiring: mint a fresh token server-side and post it to
   * the frame, for the widget's origin only (docs/widget.md). */
  async function sendToken() {
    const pipelineId = $("pipeline-id").value.trim();
    $("renew-status").textContent = "Minting a fresh token…";
    try {
      const response = await fetch(`/sandbox/api/pipelines/${encodeURIComponent(pipelineId)}/token`, {
        method: "POST", headers: { Accept: "application/json" } });
      const answer = await response.json().catch(() => null);
      if (!response.ok) throw new Error(answer?.detail || `HTTP ${response.status}`);
      const frame = $("widget");
      frame.contentWindow.postMessage({ type: "recmatch:token", token: answer.token }, new URL(frame.src).origin);
      $("renew-status").textContent = `Sent a token valid until ${timeOf(answer.expires_at)}.`;
    } catch (error) {
      $("renew-status").textContent = `No fresh token: ${error.message}`;
    }
  }

  function onWidgetMessage(event) {
    logMessage(event);
    if (event.origin !== window.location.origin) return;
    if (event.data?.type === "recmatch:token-expiring" && $("auto-renew").checked) sendToken();
  }

  function start() {
    const requested = new URL(window.location.href).searchParams.get("pipeline");
    if (requested) $("pipeline-id").value = requested;
    window.addEventListener("message", onWidgetMessage);
    $("send-token").addEventListener("click", sendToken);
    $("pipeline-form").addEventListener("submit", savePipeline);
    for (const radio of document.querySelectorAll('input[name="frame-width"]')) radio.addEventListener("change", setWidth);
    $("clear-log").addEventListener("click", () => {
      $("log").replaceChildren();
      received = 0;
      $("log-count").textContent = "none yet";
    });
    setWidth();
    savePipeline(); // sync the default pipeline at once, so the widget shows right away
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

// Small shared pieces of the pages.
import { ApiError } from "./api.js";
import { h } from "./dom.js";

export function errorBox(err) {
  const code = err instanceof ApiError ? `${err.code}: ` : "";
  return h("p", { class: "error", role: "alert" }, code, err.message);
}

// Runs an action, showing its error (with the dialect's code) in `where`, then `after` on success.
export async function act(where, action, after) {
  where.textContent = "";
  try {
    const result = await action();
    if (after) await after(result);
    return result;
  } catch (err) {
    where.replaceChildren(errorBox(err));
    return undefined;
  }
}

export function statusBadge(text) {
  return h("span", { class: `badge badge-${String(text).toLowerCase()}` }, text);
}

export function pager(offset, limit, total, go) {
  const prev = h("button", { type: "button", disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)) }, "Previous");
  const next = h("button", { type: "button", disabled: offset + limit >= total, onclick: () => go(offset + limit) }, "Next");
  const last = Math.min(offset + limit, total);
  return h("div", { class: "pager" }, prev, h("span", { class: "range" }, total ? `${offset + 1}–${last} of ${total}` : "0 of 0"), next);
}

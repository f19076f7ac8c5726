// The console shell: sign-in, navigation (hash routes, so the token in memory survives page changes) and
// the pages.
import * as api from "./api.js";
import { h, clear, field, button } from "./dom.js";
import { errorBox } from "./ui.js";
import { overviewPage } from "./pages/overview.js";
import { certificatesPage, certificatePage } from "./pages/certificates.js";
import { authoritiesPage, authorityPage } from "./pages/authorities.js";
import { requestsPage } from "./pages/requests.js";
import { ordersPage } from "./pages/orders.js";
import { auditPage } from "./pages/audit.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

const ROUTES = [
  [/^#\/overview$/, overviewPage, "Overview"],
  [/^#\/certificates$/, certificatesPage, "Certificates"],
  [/^#\/certificates\/([^/]+)$/, certificatePage, "Certificate"],
  [/^#\/cas$/, authoritiesPage, "Private CAs"],
  [/^#\/cas\/([^/]+)$/, authorityPage, "Private CA"],
  [/^#\/requests$/, requestsPage, "Certificate requests"],
  [/^#\/orders$/, ordersPage, "Orders"],
  [/^#\/audit$/, auditPage, "Audit trail"],
];

function renderWho() {
  clear(who);
  const session = api.current();
  nav.hidden = !session;
  if (!session) return;
  const project = h("select", { "aria-label": "Project", id: "project" }, session.projects.map((p) => h("option", { value: p }, p)));
  project.value = session.project;
  project.addEventListener("change", () => {
    api.setProject(project.value);
    route();
  });
  who.append(
    h("span", {}, session.sub, " · ", h("strong", { id: "roles" }, session.roles.join(", ") || "no role"), " · "),
    session.projects.length > 1 ? project : h("span", { id: "project" }, session.project),
    " ",
    button("Sign out", () => {
      api.signOut();
      location.hash = "";
      route();
    }),
  );
}

async function signInPage() {
  const token = field("Token (JWT)", h("textarea", { rows: 4, spellcheck: "false", autocomplete: "off" }));
  const form = h(
    "form",
    { class: "card", id: "sign-in" },
    h("h2", {}, "Sign in with a token"),
    h("p", {}, "The token stays in this tab's memory only: reloading the page signs you out."),
    token.row,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      api.signIn(token.input.value);
      renderWho();
      location.hash = "#/overview";
      route();
    } catch (err) {
      token.error.textContent = `Not a usable token: ${err.message}`;
    }
  });
  const parts = [h("h1", {}, "gatewaycerts console"), form];
  let config = { dev_sign_in: false };
  try {
    config = (await api.call("GET", "/console/api/config")).data;
  } catch {
    /* the form above still works */
  }
  if (config.dev_sign_in) {
    const project = field("Project", h("input", { value: "demo", autocomplete: "off" }));
    const role = field("Role", h("select", {}, ["admin", "editor", "viewer"].map((r) => h("option", { value: r }, r))));
    const demo = h(
      "form",
      { class: "card", id: "demo-sign-in" },
      h("h2", {}, "Demo sign-in"),
      h("p", {}, "The service trusts its development key: sign in as a demo user of a project (a one-hour token)."),
      project.row,
      role.row,
      h("button", { type: "submit" }, "Sign in as demo user"),
    );
    demo.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const { data } = await api.call("POST", "/console/api/dev-token", { project: project.input.value, role: role.input.value });
        api.signIn(data.token);
        renderWho();
        location.hash = "#/overview";
        route();
      } catch (err) {
        project.error.textContent = err.message;
      }
    });
    parts.push(demo);
  }
  main.append(h("div", { class: "sign-in" }, parts));
}

let generation = 0;

export async function route() {
  const mine = ++generation;
  clear(main);
  for (const link of nav.querySelectorAll("a")) {
    if (location.hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!api.current()) {
    document.title = "Sign in · gatewaycerts console";
    await signInPage();
    return;
  }
  const hash = location.hash || "#/overview";
  for (const [pattern, page, title] of ROUTES) {
    const m = hash.match(pattern);
    if (!m) continue;
    document.title = `${title} · gatewaycerts console`;
    const root = h("div", { class: "page", "aria-busy": "true" });
    main.append(root);
    try {
      await page(root, ...m.slice(1).map(decodeURIComponent));
    } catch (err) {
      if (mine === generation) root.append(errorBox(err));
    } finally {
      root.setAttribute("aria-busy", "false");
      if (mine === generation) root.dataset.ready = "true";
    }
    return;
  }
  location.hash = "#/overview";
}

window.addEventListener("hashchange", route);
route();

// The signed-in session and the calls to the service's public APIs.
//
// The token is kept in this module's variable only: it lives as long as the open tab's page and is never
// written to a cookie, localStorage or sessionStorage (a reload signs out). Each call sends it as
// X-Auth-Token, so every console action is authorized exactly as the API call it makes.

let session = null; // {token, sub, projects, roles, project}

function decodePayload(token) {
  // For display and for hiding controls only: the service verifies the token on every call.
  const part = token.split(".")[1];
  if (!part) throw new Error("this is not a JWT");
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

export function signIn(token) {
  token = token.trim();
  const claims = decodePayload(token);
  const projects = [];
  if (typeof claims.project_id === "string") projects.push(claims.project_id);
  if (Array.isArray(claims.projects)) projects.push(...claims.projects.filter((p) => typeof p === "string"));
  const roles = typeof claims.roles === "string" ? claims.roles.split(" ") : Array.isArray(claims.roles) ? claims.roles : [];
  if (!projects.length) throw new Error("the token names no project");
  session = { token, sub: String(claims.sub ?? ""), projects, roles, project: projects[0], exp: claims.exp };
  return session;
}

export function signOut() {
  session = null;
}

export function current() {
  return session;
}

export function setProject(project) {
  if (session && session.projects.includes(project)) session.project = project;
}

export const can = {
  write: () => !!session && (session.roles.includes("admin") || session.roles.includes("editor")),
  admin: () => !!session && session.roles.includes("admin"),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Each dialect's error envelope -> {code, message}.
function parseError(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.error_code === "string") return new ApiError(status, body.error_code, String(body.error_msg ?? ""));
    if (typeof body.error === "string") return new ApiError(status, String(status), body.error);
    if (body.error && typeof body.error === "object") return new ApiError(status, String(body.error.code ?? status), String(body.error.message ?? ""));
    if (body.title || body.description) return new ApiError(status, String(body.code ?? status), String(body.description || body.title));
  }
  return new ApiError(status, String(status), `HTTP ${status}`);
}

export async function call(method, path, body, { raw = false, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "omit", cache: "no-store" };
  if (session) {
    init.headers["X-Auth-Token"] = session.token;
    if (session.projects.length > 1) init.headers["X-Project-Id"] = session.project;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw parseError(response.status, data);
  return { data, headers: response.headers, status: response.status };
}

export const p = () => encodeURIComponent(session.project);
export const apic = (rest = "") => `/v2/${p()}/apic/certificates${rest}`;

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}

// Runs async jobs with at most `limit` in flight.
export async function pool(jobs, limit = 4) {
  const results = new Array(jobs.length);
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

// Overview: certificates by expiry (chart), counts by source and algorithm, what expires within 7 and 30
// days and where it is bound, CSRs waiting for review.
import * as api from "../api.js";
import { h, s, table, fmtTime, daysLeft } from "../dom.js";

const DAY = 86400000;
const WEEK = 7 * DAY;
const WEEKS = 53;
const SHOWN = 15; // rows of each expiring table

// The APIC certificates by week of expiry, and those expiring within 30 days: one call, whatever their number.
async function apicExpiry() {
  return (await api.call("GET", `/v2/${api.p()}/apic/certificate-expiry`)).data;
}

async function apicTotal(algorithm) {
  const r = await api.call("GET", api.apic(api.query({ limit: 1, algorithm_type: algorithm })));
  return r.data.total;
}

async function allPrivate() {
  const limit = 1000;
  const first = await api.call("GET", `/v1/private-certificates${api.query({ limit, offset: 0 })}`);
  const jobs = [];
  for (let offset = limit; offset < first.data.total; offset += limit) {
    jobs.push(() => api.call("GET", `/v1/private-certificates${api.query({ limit, offset })}`).then((r) => r.data.certificates));
  }
  return first.data.certificates.concat(...(await api.pool(jobs, 2)));
}

async function requests(status) {
  const r = await api.call("GET", `/api/v1/certificate_requests${api.query({ status, limit: 1000 })}`);
  return { items: r.data.result, total: Number(r.headers.get("X-Total-Count") ?? r.data.result.length) };
}

function chart(now, bins, counts, points) {
  // bins: the APIC weeks from the service; points: other sources' not_after (ms), binned here the same way.
  let { expired, later } = counts;
  for (const { t } of points) {
    if (t <= now) expired++;
    else {
      const week = Math.floor((t - now) / WEEK);
      if (week < WEEKS) bins[week]++;
      else later++;
    }
  }
  const width = 820;
  const height = 220;
  const left = 40;
  const bottom = 30;
  const barW = (width - left - 40) / (WEEKS + 1);
  const max = Math.max(1, expired, ...bins);
  const y = (n) => height - bottom - (n / max) * (height - bottom - 20);
  const bars = [];
  const bar = (x, n, cls, label) =>
    s("rect", { x: x.toFixed(1), y: y(n).toFixed(1), width: Math.max(1, barW - 2).toFixed(1), height: (height - bottom - y(n)).toFixed(1), class: cls }, s("title", {}, label));
  bars.push(bar(left, expired, "bar expired", `expired: ${expired}`));
  bins.forEach((n, i) => {
    const from = new Date(now + i * WEEK).toISOString().slice(0, 10);
    bars.push(bar(left + (i + 1) * barW, n, i < 1 ? "bar soon" : i < 5 ? "bar month" : "bar", `week of ${from}: ${n}`));
  });
  const ticks = [];
  for (let m = 0; m <= 12; m += 3) {
    const x = left + barW * (1 + (m * 52) / 12);
    ticks.push(s("line", { x1: x, x2: x, y1: height - bottom, y2: height - bottom + 5, class: "axis" }));
    if (m) ticks.push(s("text", { x, y: height - 8, class: "tick", "text-anchor": "middle" }, `+${m} mo`));
  }
  const summary = `${expired} expired, ${bins.reduce((a, b) => a + b, 0)} expire within a year, ${later} later; the tallest week holds ${Math.max(...bins)}.`;
  return h(
    "figure",
    { class: "chart" },
    s(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Certificates by expiry: ${summary}`, id: "expiry-chart" },
      s("text", { x: left, y: 14, class: "tick" }, `max ${max} per week`),
      s("line", { x1: left, x2: width - 30, y1: height - bottom, y2: height - bottom, class: "axis" }),
      s("text", { x: left + barW / 2, y: height - 8, class: "tick expired-label", "text-anchor": "middle" }, "expired"),
      bars,
      ticks,
    ),
    h("figcaption", {}, summary),
  );
}

function countTable(caption, counts) {
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return table(caption, [["", (r) => r[0]], ["certificates", (r) => String(r[1])]], rows);
}

export async function overviewPage(root) {
  root.append(h("h1", {}, "Overview"));
  const [expiry, rsa, ecc, priv, outstanding, active] = await Promise.all([
    apicExpiry(),
    apicTotal("RSA"),
    apicTotal("ECC"),
    allPrivate(),
    requests("Outstanding"),
    requests("Active"),
  ]);
  const live = priv.filter((c) => c.status !== "REVOKED");
  const points = [
    ...live.map((c) => ({ t: c.not_after })),
    ...active.items.filter((r) => r.not_valid_after).map((r) => ({ t: Date.parse(r.not_valid_after) })),
  ];
  const now = Date.parse(expiry.generated_at);
  const bySource = { "APIC (uploaded)": expiry.total, "private CA (CCM)": live.length, "Notary (signed requests)": active.total };
  const byAlgorithm = { "RSA (APIC)": rsa, "ECC (APIC)": ecc };
  for (const c of live) if (c.key_algorithm) byAlgorithm[`${c.key_algorithm} (private CA)`] = (byAlgorithm[`${c.key_algorithm} (private CA)`] ?? 0) + 1;

  root.append(
    h("section", { "aria-labelledby": "h-expiry" }, h("h2", { id: "h-expiry" }, "Certificates by expiry"), chart(now, [...expiry.weeks], expiry, points)),
    h(
      "section",
      { class: "columns", "aria-labelledby": "h-counts" },
      h("h2", { id: "h-counts", class: "visually-hidden" }, "Counts"),
      h("div", { id: "by-source" }, countTable("By source", bySource)),
      h("div", { id: "by-algorithm" }, countTable("By key algorithm", byAlgorithm)),
    ),
  );

  const soon = expiry.expiring;
  const expiringSection = h("section", { id: "expiring", "aria-labelledby": "h-expiring" }, h("h2", { id: "h-expiring" }, "Expiring within 30 days"));
  root.append(expiringSection);
  // Where each is bound: the first 25 only (one request each); the list links to the rest.
  const bindings = await api.pool(
    soon.slice(0, 25).map((c) => () => api.call("GET", api.apic(`/${encodeURIComponent(c.id)}/attached-domains${api.query({ limit: 500 })}`)).then((r) => r.data.bound_domains, () => [])),
    4,
  );
  const bound = new Map(soon.slice(0, 25).map((c, i) => [c.id, bindings[i]]));
  for (const [days, caption] of [
    [7, "Within 7 days"],
    [30, "Within 30 days"],
  ]) {
    const rows = soon.filter((c) => (days === 7 ? Date.parse(c.not_after) <= now + 7 * DAY : Date.parse(c.not_after) > now + 7 * DAY));
    expiringSection.append(
      h("h3", {}, `${caption}${days === 30 ? " (after the first 7)" : ""}: ${rows.length}${days === 30 && expiry.more_expiring ? "+" : ""}`),
      table(
        caption,
        [
          ["name", (c) => h("a", { href: `#/certificates/${encodeURIComponent(c.id)}` }, c.name)],
          ["common name", (c) => c.common_name],
          ["expires", (c) => `${fmtTime(c.not_after)} (${daysLeft(c.not_after)} d)`],
          ["domains", (c) => (bound.get(c.id) ?? []).map((d) => d.url_domain).join(", ") || (bound.has(c.id) ? "none" : "…")],
          ["instances", (c) => [...new Set((bound.get(c.id) ?? []).map((d) => d.instance_id).filter(Boolean))].join(", ") || c.instance_id || ""],
        ],
        rows.slice(0, SHOWN),
        "None.",
      ),
      ...(rows.length > SHOWN ? [h("p", { class: "muted" }, `and ${rows.length - SHOWN}${days === 30 && expiry.more_expiring ? "+" : ""} more: see `, h("a", { href: "#/certificates" }, "Certificates"))] : []),
    );
  }
  root.append(
    h(
      "section",
      { id: "waiting", "aria-labelledby": "h-waiting" },
      h("h2", { id: "h-waiting" }, `CSRs waiting for review: ${outstanding.total}`),
      table(
        "Outstanding certificate requests",
        [
          ["common name", (r) => r.common_name ?? ""],
          ["requested by", (r) => r.requested_by ?? ""],
          ["submitted", (r) => fmtTime(r.created_at)],
        ],
        outstanding.items.slice(0, 10),
        "None.",
      ),
      outstanding.total ? h("p", {}, h("a", { href: "#/requests" }, "Review them")) : null,
    ),
  );
}

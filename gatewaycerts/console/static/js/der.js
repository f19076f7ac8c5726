// A small DER reader: enough to show a PEM chain as a path (subject and issuer names) and a CRL's entries
// (serial numbers and revocation dates) without a library. Read-only, bounded by the input's length.

export function pemBlocks(text, label) {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out = [];
  for (const m of String(text).matchAll(re)) {
    const bin = atob(m[1].replace(/[^A-Za-z0-9+/=]/g, ""));
    out.push(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  return out;
}

function read(bytes, pos) {
  if (pos + 2 > bytes.length) throw new Error("truncated DER");
  const tag = bytes[pos];
  let len = bytes[pos + 1];
  let off = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[off + i];
    off += n;
  }
  if (off + len > bytes.length) throw new Error("truncated DER");
  return { tag, start: off, end: off + len, next: off + len };
}

function children(bytes, node) {
  const out = [];
  for (let pos = node.start; pos < node.end; ) {
    const child = read(bytes, pos);
    out.push(child);
    pos = child.next;
  }
  return out;
}

function oid(bytes, node) {
  const parts = [];
  let value = 0;
  for (let i = node.start; i < node.end; i++) {
    value = value * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      if (!parts.length) parts.push(Math.min(2, Math.floor(value / 40)), value - Math.min(2, Math.floor(value / 40)) * 40);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

function text(bytes, node) {
  return new TextDecoder().decode(bytes.subarray(node.start, node.end));
}

function integer(bytes, node) {
  let v = 0n;
  for (let i = node.start; i < node.end; i++) v = v * 256n + BigInt(bytes[i]);
  return v.toString();
}

function time(bytes, node) {
  const t = text(bytes, node);
  const full = node.tag === 0x17 ? (Number(t.slice(0, 2)) >= 50 ? "19" : "20") + t : t;
  return new Date(Date.UTC(+full.slice(0, 4), +full.slice(4, 6) - 1, +full.slice(6, 8), +full.slice(8, 10), +full.slice(10, 12), +full.slice(12, 14)));
}

const NAMES = { "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU" };

function name(bytes, node) {
  const parts = [];
  for (const rdn of children(bytes, node)) {
    for (const atv of children(bytes, rdn)) {
      const [type, value] = children(bytes, atv);
      parts.push(`${NAMES[oid(bytes, type)] ?? oid(bytes, type)}=${text(bytes, value)}`);
    }
  }
  return parts.join(", ");
}

// {subject, issuer, serial, notAfter} of a DER certificate.
export function certificateNames(der) {
  const cert = read(der, 0);
  const tbs = children(der, children(der, cert)[0]);
  const i = tbs[0].tag === 0xa0 ? 1 : 0;
  const validity = children(der, tbs[i + 3]);
  return { serial: integer(der, tbs[i]), issuer: name(der, tbs[i + 2]), subject: name(der, tbs[i + 4]), notAfter: time(der, validity[1]) };
}

// {issuer, thisUpdate, nextUpdate, entries: [{serial, date}]} of a DER CRL.
export function crlEntries(der) {
  const list = read(der, 0);
  const tbs = children(der, children(der, list)[0]);
  let i = tbs[0].tag === 0x02 ? 1 : 0; // version
  const issuer = name(der, tbs[i + 1]);
  const thisUpdate = time(der, tbs[i + 2]);
  i += 3;
  let nextUpdate = null;
  if (tbs[i] && (tbs[i].tag === 0x17 || tbs[i].tag === 0x18)) nextUpdate = time(der, tbs[i++]);
  const entries = [];
  if (tbs[i] && tbs[i].tag === 0x30) {
    for (const entry of children(der, tbs[i])) {
      const [serial, date] = children(der, entry);
      entries.push({ serial: integer(der, serial), date: time(der, date) });
    }
  }
  return { issuer, thisUpdate, nextUpdate, entries };
}

// The subject alternative names a CSR asks for (its extensionRequest attribute), as "DNS:x", "IP:y", ...
export function csrAltNames(der) {
  const req = read(der, 0);
  const info = children(der, children(der, req)[0]);
  const attributes = info.find((n) => n.tag === 0xa0);
  if (!attributes) return [];
  const out = [];
  for (const attr of children(der, attributes)) {
    const [type, values] = children(der, attr);
    if (oid(der, type) !== "1.2.840.113549.1.9.14") continue;
    for (const extensions of children(der, values)) {
      for (const ext of children(der, extensions)) {
        const parts = children(der, ext);
        if (oid(der, parts[0]) !== "2.5.29.17") continue;
        const names = read(der, parts[parts.length - 1].start);
        for (const gn of children(der, names)) {
          const kind = gn.tag & 0x1f;
          if (kind === 2) out.push(`DNS:${text(der, gn)}`);
          else if (kind === 1) out.push(`email:${text(der, gn)}`);
          else if (kind === 6) out.push(`URI:${text(der, gn)}`);
          else if (kind === 7) out.push(`IP:${ip(der, gn)}`);
        }
      }
    }
  }
  return out;
}

function ip(bytes, node) {
  const b = bytes.subarray(node.start, node.end);
  if (b.length === 4) return Array.from(b).join(".");
  const groups = [];
  for (let i = 0; i < b.length; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(":");
}

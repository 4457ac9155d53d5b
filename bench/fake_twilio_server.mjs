// A lean loopback Twilio Messages API for the dispatch benchmark (node 20, no packages).
//
// The benchmark's server shares the box's cores with the dispatchers it measures, so it
// must cost little per request; tests/support/fake_twilio.py (thread per connection,
// fault injection, status callbacks) stays the server of the test suite. This one speaks
// the same subset the gateway uses, with the same checks on what we send:
//
//   POST /2010-04-01/Accounts/{AccountSid}/Messages.json        create (201 / Twilio error)
//   GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json  fetch (404 / 20404)
//   GET  /2010-04-01/Accounts/{AccountSid}/Messages.json        list, To/From filter, paged
//   GET  /__stats     counters: messages, per-To and per-nudge duplicates
//   GET  /__records   one JSON object per accepted message: nudge, to, at, segments
//
// Basic auth is checked on every API call; form fields are checked against Twilio's own
// OpenAPI description (unknown parameter 20001, pattern/length/enum 20422) plus the rules
// Twilio applies to To/From/MessagingServiceSid/Body/StatusCallback. HTTP/1.1 keep-alive
// on node:net (Content-Length bodies only, which is all the SDK sends).
//
//   node bench/fake_twilio_server.mjs --port 0 --account-sid AC... --auth-token ... [--spec f]
//        [--latency-ms N]
//
// --latency-ms N (default 0) injects N ms of API latency: each API request is recorded
// (its "at") when it arrives and answered N ms later, as a distant provider would; the
// /__ endpoints answer at once.
//
// Prints its base URL on stdout once listening; exits on SIGTERM/SIGINT.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";

const API = "2010-04-01";
const MAX_BODY = 1600;

function parseArgs(argv) {
  const args = {
    host: "127.0.0.1",
    port: 0,
    accountSid: "AC" + "c0ac4b07".repeat(4),
    authToken: "fake-twilio-auth-token-0123456789",
    spec: process.env.COACHBOT_TWILIO_SPEC || "/work/shared/twilio/twilio_api_v2010.json",
    latencyMs: 0,
  };
  const names = { "--host": "host", "--port": "port", "--account-sid": "accountSid",
    "--auth-token": "authToken", "--spec": "spec", "--latency-ms": "latencyMs" };
  for (let i = 2; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key) throw new Error(`unknown option ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  args.port = Number(args.port);
  args.latencyMs = Number(args.latencyMs);
  if (!(args.latencyMs >= 0)) throw new Error("--latency-ms must be a number >= 0");
  return args;
}

function loadSpec(path) {
  const spec = JSON.parse(readFileSync(path, "utf8"));
  const schemas = spec.components.schemas;
  const ops = spec.paths["/2010-04-01/Accounts/{AccountSid}/Messages.json"];
  const form = ops.post.requestBody.content["application/x-www-form-urlencoded"].schema;
  const create = new Map();
  for (const [name, schema] of Object.entries(form.properties)) {
    const ref = schema.$ref;
    create.set(name, ref ? schemas[ref.split("/").pop()] : schema);
  }
  const list = new Set(ops.get.parameters.filter((p) => p.in === "query").map((p) => p.name));
  return { create, list };
}

// ---------------------------------------------------------------- segments (as Twilio bills)

const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
const GSM7_EXTENDED = new Set("^{}\\[~]|€\f");

function numSegments(body) {
  if (!body) return 1;
  let septets = 0;
  let gsm = true;
  for (const c of body) {
    if (GSM7_BASIC.has(c)) septets += 1;
    else if (GSM7_EXTENDED.has(c)) septets += 2;
    else { gsm = false; break; }
  }
  if (gsm) return septets <= 160 ? 1 : Math.ceil(septets / 153);
  const units = body.length; // JS strings are UTF-16 code units, as UCS-2 counts them
  return units <= 70 ? 1 : Math.ceil(units / 67);
}

// ---------------------------------------------------------------- validation

const E164 = /^\+[1-9]\d{1,14}$/;
const CHANNEL = /^(?:whatsapp|messenger|rcs):(.+)$/;
const ALPHA_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;
const SHORT_CODE = /^\d{3,6}$/;

function isRecipient(v) {
  const m = CHANNEL.exec(v);
  return E164.test(m ? m[1] : v);
}

function isSender(v) {
  const m = CHANNEL.exec(v);
  if (m) return E164.test(m[1]);
  return E164.test(v) || SHORT_CODE.test(v) || ALPHA_SENDER.test(v);
}

const patterns = new Map();
function patternOf(source) {
  let re = patterns.get(source);
  if (!re) patterns.set(source, (re = new RegExp(source)));
  return re;
}

// Unique ids without a syscall per request: a random per-process prefix and a counter.
const idPrefix = randomBytes(8).toString("hex");
let idCounter = 0;
function newId(kind) {
  idCounter += 1;
  return kind + idPrefix + idCounter.toString(16).padStart(16, "0");
}

function schemaProblem(name, schema, value) {
  const kind = schema.type;
  if (kind === "boolean" && !["true", "false", "True", "False"].includes(value))
    return `Invalid ${name}: '${value}' is not a boolean`;
  if (kind === "integer" && !/^-?\d+$/.test(value)) return `Invalid ${name}: '${value}' is not an integer`;
  if (kind === "number" && Number.isNaN(Number(value))) return `Invalid ${name}: '${value}' is not a number`;
  if (schema.enum && !schema.enum.includes(value)) return `Invalid ${name}: '${value}' is not one of ${schema.enum}`;
  if (schema.pattern && !patternOf(schema.pattern).test(value)) return `Invalid ${name}: '${value}'`;
  if (schema.minLength !== undefined && value.length < schema.minLength) return `Invalid ${name}: too short`;
  if (schema.maxLength !== undefined && value.length > schema.maxLength) return `Invalid ${name}: too long`;
  return null;
}

function twilioError(status, code, message, headers = {}) {
  return {
    status,
    headers,
    payload: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
  };
}

// ---------------------------------------------------------------- server

function rfc2822(ms) {
  // Twilio's own form: "Wed, 25 Nov 2026 09:00:00 +0000".
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

function main() {
  const args = parseArgs(process.argv);
  const spec = loadSpec(args.spec);
  const expectedAuth = "Basic " + Buffer.from(`${args.accountSid}:${args.authToken}`).toString("base64");
  const messages = [];
  const bySid = new Map();
  const perTo = new Map();
  const perNudge = new Map();
  const requests = { create: 0, fetch: 0, list: 0, other: 0 };
  const pathRe = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages(?:\/([^/]+))?\.json$/;
  // Wall-clock seconds with sub-millisecond resolution, comparable with Python's time.time().
  const now = () => (performance.timeOrigin + performance.now()) / 1000;

  function resource(m) {
    const base = `/${API}/Accounts/${args.accountSid}/Messages/${m.sid}`;
    if (m.created === null) m.created = rfc2822(m.at * 1000);
    return {
      account_sid: args.accountSid,
      api_version: API,
      body: m.body,
      date_created: m.created,
      date_sent: null,
      date_updated: m.created,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.service,
      num_media: "0",
      num_segments: String(m.segments),
      price: null,
      price_unit: "USD",
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `${base}/Media.json`, feedback: `${base}/Feedback.json` },
      to: m.to,
      uri: `${base}.json`,
    };
  }

  function create(form) {
    for (const [name, values] of form) {
      const schema = spec.create.get(name);
      if (!schema) return twilioError(400, 20001, `Unknown parameter: ${name}`);
      if (values.length > 1 && schema.type !== "array")
        return twilioError(400, 20422, `Parameter ${name} given more than once`);
      for (const v of values) {
        const problem = schemaProblem(name, schema, v);
        if (problem) return twilioError(400, 20422, problem);
      }
    }
    const first = (n) => (form.get(n) || [""])[0];
    const to = first("To");
    if (!to) return twilioError(400, 21604, "A 'To' phone number is required.");
    if (!isRecipient(to)) return twilioError(400, 21211, `Invalid 'To' Phone Number: ${to}`);
    const from = first("From");
    const service = first("MessagingServiceSid");
    if (!from && !service) return twilioError(400, 21603, "A 'From' phone number is required.");
    if (from && service)
      return twilioError(400, 20422, "Specify exactly one of 'From' and 'MessagingServiceSid'.");
    if (from && !isSender(from)) return twilioError(400, 21212, `Invalid 'From' Phone Number: ${from}`);
    const body = first("Body");
    if (!body && !form.get("MediaUrl") && !first("ContentSid"))
      return twilioError(400, 21602, "Message body is required.");
    if (body.length > MAX_BODY)
      return twilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.");
    const callback = first("StatusCallback");
    let nudge = null;
    if (callback) {
      let url;
      try {
        url = new URL(callback);
      } catch {
        return twilioError(400, 21609, `Invalid StatusCallback url: ${callback}`);
      }
      if (!["http:", "https:"].includes(url.protocol) || !url.hostname)
        return twilioError(400, 21609, `Invalid StatusCallback url: ${callback}`);
      nudge = url.searchParams.get("nudge");
    }
    const m = {
      sid: newId("SM"),
      to,
      from: from || null,
      service: service || null,
      body,
      status: service ? "accepted" : "queued",
      at: now(),
      created: null,
      segments: numSegments(body),
      nudge,
    };
    messages.push(m);
    bySid.set(m.sid, m);
    perTo.set(to, (perTo.get(to) || 0) + 1);
    if (nudge !== null) perNudge.set(nudge, (perNudge.get(nudge) || 0) + 1);
    return { status: 201, headers: {}, payload: resource(m) };
  }

  function list(path, query) {
    for (const name of query.keys()) {
      if (!spec.list.has(name)) return twilioError(400, 20001, `Unknown parameter: ${name}`);
    }
    const page = Number(query.get("Page") || 0);
    const pageSize = Math.min(Number(query.get("PageSize") || 50), 1000);
    if (!Number.isInteger(page) || !Number.isInteger(pageSize) || page < 0 || pageSize < 1)
      return twilioError(400, 20422, "Invalid Page or PageSize");
    const to = query.get("To");
    const from = query.get("From");
    const matching = [];
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i];
      if (to !== null && m.to !== to) continue;
      if (from !== null && m.from !== from) continue;
      matching.push(m);
    }
    const start = page * pageSize;
    const chunk = matching.slice(start, start + pageSize).map(resource);
    const filters = [...query.entries()].filter(([k]) => !["Page", "PageSize", "PageToken"].includes(k));
    const pageUri = (n, token) => {
      const q = new URLSearchParams([...filters, ["PageSize", String(pageSize)], ["Page", String(n)]]);
      if (token) q.append("PageToken", `PA${n}`);
      return `${path}?${q}`;
    };
    return {
      status: 200,
      headers: {},
      payload: {
        end: start + Math.max(chunk.length - 1, 0),
        first_page_uri: pageUri(0, false),
        next_page_uri: start + pageSize < matching.length ? pageUri(page + 1, true) : null,
        page,
        page_size: pageSize,
        previous_page_uri: page > 0 ? pageUri(page - 1, true) : null,
        start,
        uri: pageUri(page, false),
        messages: chunk,
      },
    };
  }

  function stats() {
    let duplicateTo = 0;
    for (const n of perTo.values()) if (n > 1) duplicateTo += n - 1;
    let duplicateNudges = 0;
    for (const n of perNudge.values()) if (n > 1) duplicateNudges += n - 1;
    return {
      messages: messages.length,
      requests,
      distinct_to: perTo.size,
      duplicate_to: duplicateTo,
      distinct_nudges: perNudge.size,
      duplicate_nudges: duplicateNudges,
    };
  }

  function handle(req, raw) {
    const q = req.url.indexOf("?");
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : req.url.slice(q + 1));
    if (path === "/__stats") return { status: 200, headers: {}, payload: stats() };
    if (path === "/__records") {
      return {
        status: 200,
        headers: {},
        payload: messages.map((m) => ({ nudge: m.nudge, to: m.to, at: m.at, segments: m.segments })),
      };
    }
    const match = pathRe.exec(path);
    let kind = "other";
    if (match) {
      if (req.method === "POST" && match[2] === undefined) kind = "create";
      else if (req.method === "GET") kind = match[2] === undefined ? "list" : "fetch";
    }
    requests[kind] += 1;
    if (req.headers.authorization !== expectedAuth)
      return twilioError(401, 20003, "Authenticate", { "WWW-Authenticate": 'Basic realm="Twilio API"' });
    if (!match || match[1] !== args.accountSid)
      return twilioError(404, 20404, `The requested resource ${path} was not found`);
    if (kind === "other") return twilioError(405, 20004, "Method not allowed");
    if (kind === "create") {
      const type = req.headers["content-type"] || "";
      const form = new Map();
      if (raw.length && type.startsWith("application/x-www-form-urlencoded")) {
        for (const [k, v] of new URLSearchParams(raw.toString("utf8"))) {
          const values = form.get(k);
          if (values) values.push(v);
          else form.set(k, [v]);
        }
      }
      return create(form);
    }
    if (kind === "fetch") {
      const m = bySid.get(match[2]);
      return m ? { status: 200, headers: {}, payload: resource(m) }
        : twilioError(404, 20404, `The requested resource ${path} was not found`);
    }
    return list(path, query);
  }

  // HTTP/1.1 over node:net with Content-Length bodies and keep-alive (pipelined requests
  // answered in order): node:http's own per-request machinery cost about as much CPU as
  // everything this fake does, and the fake shares the box's cores with what it measures.
  const REASONS = { 200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
    404: "Not Found", 405: "Method Not Allowed", 411: "Length Required", 500: "Internal Server Error" };
  const HEAD_END = Buffer.from("\r\n\r\n");

  function respond(reply, close) {
    const body = JSON.stringify(reply.payload);
    let head = `HTTP/1.1 ${reply.status} ${REASONS[reply.status] || "Error"}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `Twilio-Request-Id: ${newId("RQ")}\r\n`;
    for (const [k, v] of Object.entries(reply.headers)) head += `${k}: ${v}\r\n`;
    if (close) head += "Connection: close\r\n";
    return head + "\r\n" + body;
  }

  function serve(req, body) {
    try {
      return handle(req, body);
    } catch (err) {
      process.stderr.write(`${err.stack}\n`);
      return twilioError(500, 20500, `fake server internal error: ${err}`);
    }
  }

  const sockets = new Set();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let pending = null;
    socket.on("data", (chunk) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      let out = "";
      let close = false;
      let api = false;
      while (!close) {
        const headEnd = buf.indexOf(HEAD_END);
        if (headEnd < 0) break;
        const lines = buf.toString("latin1", 0, headEnd).split("\r\n");
        const [method, url, version] = lines[0].split(" ");
        const headers = {};
        for (let i = 1; i < lines.length; i++) {
          const colon = lines[i].indexOf(":");
          if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
        }
        close = version !== "HTTP/1.1" || (headers.connection || "").toLowerCase() === "close";
        if (headers["transfer-encoding"] !== undefined) {
          // Nothing coachbot sends is chunked; refuse rather than misread a body.
          out += respond(twilioError(411, 20001, "Content-Length required"), true);
          close = true;
          break;
        }
        const length = Number(headers["content-length"] || 0);
        const end = headEnd + 4 + length;
        if (buf.length < end) break;
        const body = buf.subarray(headEnd + 4, end);
        buf = buf.subarray(end);
        if (!url.startsWith("/__")) api = true;
        out += respond(serve({ method, url, headers }, body), close);
      }
      pending = buf.length && !close ? buf : null;
      const flush = () => {
        if (socket.destroyed) return;
        if (out) socket.write(out);
        if (close) socket.end();
      };
      // Timers of equal delay fire in the order they were set, so API answers on one
      // connection keep the order of its requests (the harness asks /__ on its own).
      if (api && args.latencyMs > 0) setTimeout(flush, args.latencyMs);
      else flush();
    });
  });
  server.listen({ host: args.host, port: args.port, backlog: 1024 }, () => {
    const { port } = server.address();
    process.stdout.write(`http://${args.host}:${port}\n`);
  });
  const stop = () => {
    for (const socket of sockets) socket.destroy();
    server.close(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();

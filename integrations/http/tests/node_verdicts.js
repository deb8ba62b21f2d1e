// SPDX-License-Identifier: Apache-2.0
// node's strict llhttp as a reference parser for framing_diff.py.
//
// stdin:  a JSON array of base64 strings, each the raw bytes a client sends.
// stdout: a JSON array, one verdict per input, about the FIRST request in the bytes:
//   {"accepted": true, "method", "url", "version", "body_len", "body" (base64),
//    "consumed" (bytes the first message took, so the caller can look at what follows),
//    "keep_alive", "upgrade"}
//   {"accepted": false, "code" (llhttp's HPE_* name, or INCOMPLETE), "reason", "at"}
// `node node_verdicts.js --probe` prints "ok" when the parser binding is usable.
//
// The parser is node's own binding of llhttp (process.binding('http_parser')), set up with
// no leniency flags, so it is as strict as llhttp gets. It parses raw bytes; none of node's
// http-layer checks (Host, header counts) run here.
'use strict';

// process.binding is deprecated (DEP0111); the warning would only clutter stderr.
process.noDeprecation = true;

let binding;
try {
  binding = process.binding('http_parser');
} catch (e) {
  process.stderr.write(`process.binding('http_parser') failed: ${e.message}\n`);
  process.exit(3);
}
const { HTTPParser } = binding;
// kOnHeadersComplete's method argument is llhttp's method number. `allMethods` is indexed
// by it; `methods` is a shorter list (no PRI, no RTSP methods), so from number 34 (PRI)
// on its names are not the parsed method's.
const methods = binding.allMethods || binding.methods;
if (typeof HTTPParser !== 'function' || !Array.isArray(methods)) {
  process.stderr.write("process.binding('http_parser') has no HTTPParser/methods\n");
  process.exit(3);
}

// 0 = node's default header size limit (16 KiB); kLenientNone = every leniency off.
const LENIENT_NONE = HTTPParser.kLenientNone === undefined ? 0 : HTTPParser.kLenientNone;

function verdict(bytes) {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, LENIENT_NONE);

  let url = '';
  let head = null;
  const body = [];
  let complete = false;

  p[HTTPParser.kOnMessageBegin] = () => {};
  // Called instead of passing headers/url to kOnHeadersComplete when the binding flushes
  // early (many header fields): keep the url it hands over. It is called again for
  // trailer fields after the head, with the same url once more: ignore that one.
  p[HTTPParser.kOnHeaders] = (headers, u) => {
    if (u && head === null) url += u;
  };
  p[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, u, statusCode,
                                      statusMessage, upgrade, keepAlive) => {
    if (u) url += u;
    head = { method: methods[method] || `#${method}`, version: `${major}.${minor}`, upgrade: !!upgrade,
             keep_alive: !!keepAlive };
    // The return value matters: a truthy one tells llhttp to skip the body (as for the
    // answer to a HEAD request). Return nothing so the body is parsed.
  };
  // The chunk may point into the input buffer: copy it.
  p[HTTPParser.kOnBody] = (chunk) => { body.push(Buffer.from(chunk)); };
  p[HTTPParser.kOnMessageComplete] = () => { complete = true; };
  p[HTTPParser.kOnExecute] = () => {};

  // One byte per execute(): the byte during which kOnMessageComplete fires is the last one
  // of the first message, and whatever follows it (a second request, or junk) is never
  // parsed here, so an error there cannot hide the first message's verdict. llhttp is a
  // resumable state machine, so byte-wise feeding decides the same as one execute().
  let failure = null;
  let consumed = 0;
  for (let i = 0; i < bytes.length && !complete; i++) {
    const r = p.execute(bytes.subarray(i, i + 1));
    if (complete) {
      consumed = i + 1;
      break;
    }
    if (r instanceof Error) {
      failure = { code: r.code || 'ERROR', reason: r.reason || r.message, at: i };
      break;
    }
  }
  if (!complete && failure === null) {
    // All bytes parsed without an answer: tell the parser the stream ended.
    const r = p.finish();
    if (complete) {
      consumed = bytes.length;
    } else if (r instanceof Error) {
      failure = { code: r.code || 'ERROR', reason: r.reason || r.message, at: bytes.length };
    } else {
      failure = { code: 'INCOMPLETE', reason: 'the bytes end before the message does',
                  at: bytes.length };
    }
  }
  if (!complete || head === null) {
    return { accepted: false, ...failure };
  }
  const b = Buffer.concat(body);
  return { accepted: true, method: head.method, url, version: head.version,
           body_len: b.length, body: b.toString('base64'), consumed,
           keep_alive: head.keep_alive, upgrade: head.upgrade };
}

if (process.argv.includes('--probe')) {
  // A well-formed request must come out accepted, or the binding is not what we expect.
  const v = verdict(Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n', 'latin1'));
  if (!v.accepted || v.method !== 'GET' || v.url !== '/') {
    process.stderr.write(`probe request not accepted: ${JSON.stringify(v)}\n`);
    process.exit(3);
  }
  process.stdout.write('ok\n');
  process.exit(0);
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const inputs = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const out = inputs.map((b64) => verdict(Buffer.from(b64, 'base64')));
  process.stdout.write(JSON.stringify(out) + '\n');
});

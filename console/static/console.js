// Crossroads console: verifies C2SP tlog-proofs in the browser (WebCrypto
// SHA-256 for the RFC 9162 inclusion proof, Ed25519 for the checkpoint's
// signature by the log's key), and prints pages. No other script runs.
"use strict";
(function () {
  const enc = new TextEncoder();
  function b64(s) { const b = atob(s); const u = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i); return u; }
  function cat(...parts) { let n = 0; for (const p of parts) n += p.length; const u = new Uint8Array(n); let o = 0; for (const p of parts) { u.set(p, o); o += p.length; } return u; }
  async function sha256(u) { return new Uint8Array(await crypto.subtle.digest("SHA-256", u)); }
  function equal(a, b) { if (a.length !== b.length) return false; let d = 0; for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i]; return d === 0; }

  // parseProof reads c2sp.org/tlog-proof@v1.
  function parseProof(text) {
    const lines = text.split("\n");
    if (lines[0] !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof");
    let i = 1, extra = null;
    if (lines[i].startsWith("extra ")) { extra = b64(lines[i].slice(6)); i++; }
    if (!lines[i].startsWith("index ")) throw new Error("no index");
    const index = BigInt(lines[i].slice(6)); i++;
    const hashes = [];
    for (; lines[i] !== ""; i++) { if (i >= lines.length) throw new Error("truncated"); hashes.push(b64(lines[i])); }
    const checkpoint = lines.slice(i + 1).join("\n");
    return { extra, index, hashes, checkpoint };
  }

  // parseNote splits a signed note into its text and signature lines.
  function parseNote(note) {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("no signatures");
    const text = note.slice(0, cut + 1);
    const sigs = note.slice(cut + 2).split("\n").filter((l) => l.startsWith("\u2014 ")).map((l) => { const p = l.slice(2).split(" "); return { name: p[0], sig: b64(p[1]) }; });
    const body = text.split("\n");
    return { text, origin: body[0], size: BigInt(body[1]), root: b64(body[2]), sigs };
  }

  // rootFromProof is RFC 9162 section 2.1.3.2.
  async function rootFromProof(index, size, leaf, path) {
    if (index >= size) throw new Error("index outside the tree");
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of path) {
      if (sn === 0n) throw new Error("proof too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(cat(Uint8Array.of(1), p, r));
        if ((fn & 1n) === 0n) { while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
      } else {
        r = await sha256(cat(Uint8Array.of(1), r, p));
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("proof too short");
    return r;
  }

  // checkSignature verifies the checkpoint with the log's note verifier
  // key (name+hash+base64(0x01||key)); null when the browser lacks Ed25519.
  async function checkSignature(note, vkey) {
    // name+hash+key, where the base64 key may itself contain "+".
    const i = vkey.indexOf("+"), j = vkey.indexOf("+", i + 1);
    if (i < 0 || j < 0) throw new Error("malformed log key");
    const name = vkey.slice(0, i), hash = vkey.slice(i + 1, j), key = vkey.slice(j + 1);
    const raw = b64(key);
    if (raw[0] !== 1 || raw.length !== 33) throw new Error("not an Ed25519 key");
    if (note.origin !== name) throw new Error("checkpoint of another log");
    const sig = note.sigs.find((s) => s.name === name && s.sig.length === 68 && Array.from(s.sig.slice(0, 4)).map((x) => x.toString(16).padStart(2, "0")).join("") === hash);
    if (!sig) throw new Error("no signature by the log's key");
    let k;
    try { k = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]); } catch (e) { return null; }
    return crypto.subtle.verify({ name: "Ed25519" }, k, sig.sig.slice(4), enc.encode(note.text));
  }

  async function verify(text, vkey) {
    const p = parseProof(text);
    if (!p.extra) throw new Error("proof without its leaf");
    const note = parseNote(p.checkpoint);
    const leaf = await sha256(cat(Uint8Array.of(0), p.extra));
    const root = await rootFromProof(p.index, note.size, leaf, p.hashes);
    if (!equal(root, note.root)) throw new Error("root does not match the checkpoint");
    const sig = vkey ? await checkSignature(note, vkey) : null;
    if (sig === false) throw new Error("bad checkpoint signature");
    return { index: p.index, size: note.size, signature: sig };
  }
  window.crossroadsVerify = verify;

  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.classList.contains("print")) { window.print(); return; }
    if (!b.classList.contains("verify")) return;
    const out = b.parentElement.querySelector(".result");
    const proof = b.parentElement.querySelector("pre.proof").textContent;
    const keyEl = document.getElementById("logkey");
    out.textContent = "…";
    try {
      const r = await verify(proof, keyEl ? keyEl.textContent.trim() : "");
      out.textContent = b.dataset.ok + " (#" + r.index + " / " + r.size + ")" + (r.signature === null ? " " + b.dataset.nosig : "");
      out.className = "result ok";
    } catch (e) {
      out.textContent = b.dataset.bad + ": " + e.message;
      out.className = "result bad";
    }
  });
})();

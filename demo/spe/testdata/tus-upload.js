// Uploads a file into a Crossroads workspace with tus-js-client (a tus
// client the project did not write). The test drives it on stdin: "abort"
// aborts the upload in the middle of its PATCH, "resume" starts it again
// (tus-js-client asks the hub for the offset and sends the rest). Prints
// one JSON line per event.
// Usage: node tus-upload.js ENDPOINT FILE CERT KEY CA DATASET
'use strict';
const fs = require('fs');
const readline = require('readline');
const tus = require('tus-js-client');

const [endpoint, file, cert, key, ca, dataset] = process.argv.slice(2);
const data = fs.readFileSync(file);
const httpStack = new tus.DefaultHttpStack({
  cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca),
});
const log = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let resumed = false;
let lastSent = 0;

const upload = new tus.Upload(data, {
  endpoint,
  httpStack,
  retryDelays: null,
  metadata: { dataset, filename: 'admissions.csv' },
  onUploadUrlAvailable() { log({ event: 'created', url: upload.url }); },
  onProgress(sent, total) {
    lastSent = sent;
    if (resumed) {
      resumed = false;
      log({ event: 'resumed', sent, total });
    }
  },
  onSuccess() { log({ event: 'done', url: upload.url }); process.exit(0); },
  onError(err) { log({ event: 'error', error: String(err) }); process.exit(1); },
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'abort') {
    upload.abort(false).then(() => log({ event: 'aborted', url: upload.url, sent: lastSent }));
  } else if (line === 'resume') {
    resumed = true;
    upload.start();
  }
});
upload.start();

// Starts s3rver (installed by hack/install-s3.sh) for the tests and `make up`, adding the three
// multipart operations s3rver 3.7 lacks, so the operator's real code paths run against it:
// AbortMultipartUpload (DELETE ?uploadId), ListMultipartUploads (GET /bucket?uploads), and
// NoSuchUpload for a part sent to an upload that is gone (s3rver would silently recreate it).
// Usage: node s3rver-server.js <s3rver module dir> <data dir> <port> <bucket>...
'use strict';
const fs = require('fs');
const path = require('path');
const [moduleDir, directory, port, ...buckets] = process.argv.slice(2);
const S3rver = require(moduleDir);

const server = new S3rver({
  directory,
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  vhostBuckets: false,
  configureBuckets: buckets.map(name => ({ name })),
});

function xml(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' + body;
}

function escape(text) {
  return String(text).replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

// s3rver checks the access key id (not a v4 signature); these routes do the same.
function knownAccessKey(ctx) {
  const m = /Credential=([^/,\s]+)\//.exec(ctx.headers.authorization || '');
  return m && m[1] === 'S3RVER';
}

server.middleware.unshift(async (ctx, next) => {
  const segments = ctx.path.split('/').filter(s => s.length > 0).map(decodeURIComponent);
  const bucket = segments[0];
  const key = segments.slice(1).join('/');
  const uploads = bucket ? server.store.getResourcePath(bucket, undefined, 'uploads') : null;
  const isAbort = ctx.method === 'DELETE' && key && 'uploadId' in ctx.query;
  const isPart = ctx.method === 'PUT' && key && 'uploadId' in ctx.query && 'partNumber' in ctx.query;
  const isList = ctx.method === 'GET' && bucket && !key && 'uploads' in ctx.query;
  if (!isAbort && !isPart && !isList) return next();
  if (!knownAccessKey(ctx)) {
    return xml(ctx, 403, '<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>');
  }
  if (isList) {
    const ids = fs.existsSync(uploads) ? fs.readdirSync(uploads) : [];
    const prefix = ctx.query.prefix || '';
    const items = ids.map(id => ({ id, key: fs.readFileSync(path.join(uploads, id, 'key'), 'utf8') }))
      .filter(u => u.key.startsWith(prefix))
      .map(u => `<Upload><Key>${escape(u.key)}</Key><UploadId>${u.id}</UploadId></Upload>`).join('');
    return xml(ctx, 200, `<ListMultipartUploadsResult><Bucket>${escape(bucket)}</Bucket><Prefix>${escape(prefix)}</Prefix><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`);
  }
  const dir = path.join(uploads, String(ctx.query.uploadId).replace(/[^a-zA-Z0-9]/g, ''));
  if (!fs.existsSync(dir)) {
    return xml(ctx, 404, '<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
  }
  if (isPart) return next();
  fs.rmSync(dir, { recursive: true, force: true });
  ctx.status = 204;
});

server.run().then(
  () => console.log(`s3rver listening on 127.0.0.1:${port}`),
  err => {
    console.error(err);
    process.exit(1);
  },
);

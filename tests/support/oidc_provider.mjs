// A real OAuth 2.0 / OpenID Connect provider for the tests: oidc-provider (9.x), run by Node 24, on 127.0.0.1.
//
//   node oidc_provider.mjs [PORT] [CONFIG_JSON]      (or OIDC_TEST_PORT / OIDC_TEST_CONFIG in the environment)
//
// OIDC_PROVIDER_MODULES names the node_modules folder that holds oidc-provider (default: .tools/oidc/node_modules
// at the top of the repository; `make test` installs it there). The issuer is http://127.0.0.1:PORT.
//
// CONFIG_JSON: {
//   "clients": [{"client_id", "client_secret", "redirect_uris": [...], "grant_types"?: [...],
//                "token_endpoint_auth_method"?: "client_secret_basic" | "client_secret_post", "scope"?: "..."}],
//   "access_ttl"?: seconds (access tokens and client_credentials tokens; default 3600),
//   "refresh_ttl"?: seconds (default 86400), "require_pkce"?: bool (default true), "scopes"?: [extra scopes]
// }
// A client registered with either secret method may authenticate with the other one too (oidc-provider's rule).
//
// Behaviour: the built-in development login and consent pages (any login name, any password); the account's claims
// are sub = the login, email = the login if it contains '@' else login@example.com, email_verified = true and
// name = the login, also in the id_token. Tokens expire exactly at their TTL (no clock tolerance). Every authorization_code grant gets a refresh token (offline_access is not
// needed); refresh tokens rotate on every use, and presenting a used one is answered invalid_grant and revokes the
// whole grant (every token issued from that login). client_credentials, userinfo and revocation are enabled.
//
// Test-only endpoints, outside the provider's routes:
//   GET  /_test/counts            {"<grant_type>": n, ...} token endpoint requests since start or the last reset
//   POST /_test/reset             counts to zero, fail-refresh off
//   POST /_test/fail-refresh?on=1 refresh_token grants answer 400 invalid_grant until ?on=0
//
// Prints `READY <issuer>` on stdout once listening; SIGTERM (or SIGINT) closes it and exits 0.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.OIDC_PROVIDER_MODULES || join(here, '..', '..', '.tools', 'oidc', 'node_modules');
const entry = createRequire(join(modules, 'noop.js')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

const port = Number(process.argv[2] || process.env.OIDC_TEST_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: oidc_provider.mjs PORT [CONFIG_JSON] (or OIDC_TEST_PORT, OIDC_TEST_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(process.argv[3] || process.env.OIDC_TEST_CONFIG || '{}');
const issuer = `http://127.0.0.1:${port}`;
const accessTtl = config.access_ttl ?? 3600;
const refreshTtl = config.refresh_ttl ?? 86400;
const requirePkce = config.require_pkce ?? true;

const clients = (config.clients || []).map((client) => ({
  client_id: client.client_id,
  client_secret: client.client_secret,
  redirect_uris: client.redirect_uris || [],
  grant_types: client.grant_types || ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: (client.grant_types || ['authorization_code']).includes('authorization_code') ? ['code'] : [],
  token_endpoint_auth_method: client.token_endpoint_auth_method || 'client_secret_basic',
  ...(client.scope ? { scope: client.scope } : {}),
}));

function claimsOf(login) {
  return {
    sub: login,
    email: login.includes('@') ? login : `${login}@example.com`,
    email_verified: true,
    name: login,
  };
}

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', ...(config.scopes || [])],
  conformIdTokenClaims: false,
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => requirePkce },
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  expiresWithSession: () => false,
  clockTolerance: 0, // the default accepts tokens for 15 s past their expiry
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: refreshTtl,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400 * 14,
  },
});

provider.on('server_error', (_ctx, error) => console.error('server_error', error));

const counts = {};
let failRefresh = false;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// provider.use() puts a middleware in front of the provider's own routes.
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/_test/')) {
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method === 'GET' && ctx.path === '/_test/counts') {
      ctx.body = counts;
    } else if (ctx.method === 'POST' && ctx.path === '/_test/reset') {
      for (const key of Object.keys(counts)) delete counts[key];
      failRefresh = false;
      ctx.body = { ok: true };
    } else if (ctx.method === 'POST' && ctx.path === '/_test/fail-refresh') {
      failRefresh = ['1', 'true', 'on'].includes(String(ctx.query.on ?? '1'));
      ctx.body = { fail_refresh: failRefresh };
    } else {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
    }
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token') {
    // Read the form here to see its grant_type; oidc-provider then takes the already read body from req.body.
    const raw = await readBody(ctx.req);
    ctx.req.body = raw;
    const grantType = new URLSearchParams(raw).get('grant_type') || '(none)';
    counts[grantType] = (counts[grantType] || 0) + 1;
    if (failRefresh && grantType === 'refresh_token') {
      ctx.status = 400;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_grant', error_description: 'refresh token revoked (test)' };
      return;
    }
  }
  await next();
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

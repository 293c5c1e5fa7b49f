// A small, real OpenID Connect provider for the web app's end-to-end tests.
//
//   node server.js --port N --config FILE --keys FILE
//
// It is node's certified `oidc-provider` with an in-memory store, accounts and
// clients from a JSON file, a plain HTML login form, no consent screen, and one
// test-control endpoint (POST /__test/tamper) that makes the token endpoint hand
// out broken ID tokens on purpose. See README.md for what a test can rely on.
//
// stdout carries exactly one line, `ready http://127.0.0.1:N`; everything else
// (oidc-provider's own notices included) goes to stderr.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
import {
  CompactSign, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK,
} from 'jose';

// oidc-provider prints some notices with console.info: keep stdout for `ready`.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

// ---------------------------------------------------------------- arguments
const { values: args } = parseArgs({
  options: { port: { type: 'string' }, config: { type: 'string' }, keys: { type: 'string' } },
});
if (!args.port || !args.config || !args.keys || !/^\d+$/.test(args.port)) {
  console.error('usage: node server.js --port N --config FILE --keys FILE');
  process.exit(2);
}
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const config = JSON.parse(readFileSync(args.config, 'utf8'));
const accounts = config.accounts ?? {};

// ---------------------------------------------------------------- signing keys
// A JWKS with private keys. A missing file gets one fresh RS256 key with a
// random kid, so a restart with another --keys file is a key rotation.
async function loadOrCreateKeys(file) {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = { ...await exportJWK(privateKey), kid: randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' };
  const jwks = { keys: [jwk] };
  writeFileSync(file, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  console.error(`generated signing key ${jwk.kid} in ${file}`);
  return jwks;
}
const jwks = await loadOrCreateKeys(args.keys);

// ---------------------------------------------------------------- small helpers
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

// Reads a request body (urlencoded forms and the JSON of /__test/tamper).
async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// The claims of an account, as findAccount hands them to the provider.
function accountClaims(login) {
  const a = accounts[login];
  const claims = { sub: login, name: a.name };
  for (const key of ['roles', 'office', 'snils']) if (a[key] !== undefined) claims[key] = a[key];
  return claims;
}

// Every configured client is first-party: it gets these scopes without consent.
const FIRST_PARTY_SCOPE = 'openid profile registry';

// ---------------------------------------------------------------- the provider
const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // Both client_secret_basic and client_secret_post are accepted for either value.
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
  })),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  jwks,
  cookies: { keys: [randomBytes(32).toString('base64url')] },

  // Scopes and the claims each one carries.
  scopes: ['openid', 'profile', 'registry'],
  claims: { openid: ['sub'], profile: ['name'], registry: ['roles', 'office', 'snils'] },
  // Put the scope-requested claims in the ID token itself, not only in userinfo.
  conformIdTokenClaims: false,

  // Only S256 exists in oidc-provider 9.x; this makes PKCE mandatory for all clients.
  pkce: { required: () => true },

  ttl: {
    IdToken: 10 * 60, AccessToken: 10 * 60, AuthorizationCode: 60,
    Interaction: 10 * 60, Session: 60 * 60, Grant: 60 * 60,
  },

  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) return undefined;
    return { accountId: id, claims: async () => accountClaims(id) };
  },

  // No consent screen: a first login creates a grant for all first-party scopes.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(FIRST_PARTY_SCOPE);
    await grant.save();
    return grant;
  },

  // Our own interaction routes below replace the development ones.
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },

  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // `form` is <form id="op.logoutForm" ...> with a hidden xsrf input; put the buttons in it.
      async logoutSource(ctx, form) {
        const buttons = '<button type="submit" name="logout" value="yes">Yes, sign me out</button>\n'
          + '<button type="submit">No, stay signed in</button></form>';
        ctx.body = page('Sign out', `<p>Do you want to sign out from ${esc(ctx.host)}?</p>\n${form.replace('</form>', buttons)}`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p id="signed-out">You have been signed out.</p>');
      },
    },
  },

  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join('\n'));
  },
});

// ---------------------------------------------------------------- login page
function loginForm(uid, login, error) {
  return page('Sign in', `${error ? `<p id="error" class="error">${esc(error)}</p>\n` : ''}\
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Login <input type="text" name="login" value="${esc(login ?? '')}" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button>
</form>`);
}

// GET /interaction/:uid shows the form; POST /interaction/:uid/login checks it.
async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  ctx.set('Cache-Control', 'no-store');

  if (details.prompt.name === 'consent') {
    // Only reached when a client asks for more than loadExistingGrant granted:
    // grant whatever is missing, still without a screen.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const { missingOIDCScope, missingOIDCClaims } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    const result = { consent: { grantId: await grant.save() } };
    ctx.status = 303;
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
    return;
  }

  if (action === undefined && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginForm(uid, details.params.login_hint);
    return;
  }
  if (action !== 'login' || ctx.method !== 'POST') ctx.throw(405, 'method not allowed');

  const form = new URLSearchParams(await readBody(ctx.req));
  const login = (form.get('login') ?? '').trim();
  if (!Object.hasOwn(accounts, login) || !form.get('password')) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginForm(uid, login, 'Unknown login or empty password.');
    return;
  }
  const result = { login: { accountId: login } };
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
}

// ---------------------------------------------------------------- tampering
// The stand-in for a compromised or broken provider: every id_token the token
// endpoint sends is altered according to this mode.
const TAMPER_MODES = new Set(['none', 'bad_signature', 'wrong_aud', 'expired', 'wrong_nonce', 'no_nonce']);
let tamperMode = 'none';

async function tamper(idToken, mode) {
  if (mode === 'bad_signature') {
    const [header, payload, signature] = idToken.split('.');
    // The first base64url character carries six full bits of the signature.
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    return `${header}.${payload}.${flipped}`;
  }
  const header = decodeProtectedHeader(idToken);
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'expired': { // both an hour back: exp an hour ago, the 10-minute lifetime kept
      const lifetime = claims.exp - claims.iat;
      claims.exp = now - 3600;
      claims.iat = claims.exp - lifetime;
      break;
    }
    case 'wrong_nonce': claims.nonce = `tampered-${randomBytes(9).toString('base64url')}`; break;
    case 'no_nonce': delete claims.nonce; break;
    default: return idToken;
  }
  // Re-sign with the very private key (same kid) the provider signed with.
  const jwk = jwks.keys.find((k) => k.kid === header.kid) ?? jwks.keys[0];
  const key = await importJWK(jwk, header.alg);
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(key);
}

// ---------------------------------------------------------------- middleware
// In oidc-provider 9.x the Provider is the Koa app itself (`provider.app` is a
// deprecated alias of it); provider.use() runs this before its own routes.
provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/tamper') {
    if (ctx.method !== 'POST') ctx.throw(405, 'POST {"mode": ...}');
    let mode;
    try { ({ mode } = JSON.parse(await readBody(ctx.req))); } catch { /* answered below */ }
    if (!TAMPER_MODES.has(mode)) ctx.throw(400, `mode must be one of ${[...TAMPER_MODES].join(', ')}`);
    tamperMode = mode;
    console.error(`tamper mode: ${mode}`);
    ctx.body = { mode };
    return;
  }

  const m = /^\/interaction\/([^/]+)(?:\/([^/]+))?$/.exec(ctx.path);
  if (m) {
    try {
      await interaction(ctx, m[1], m[2]);
    } catch (err) {
      ctx.status = err.status ?? err.statusCode ?? 500;
      ctx.type = 'html';
      ctx.body = page('Error', `<p>${esc(err.error_description ?? err.message)}</p>`);
      if (ctx.status >= 500) console.error(err);
    }
    return;
  }

  await next();

  // After the token endpoint ran: alter the id_token it is about to send.
  if (ctx.path === '/token' && tamperMode !== 'none' && ctx.status === 200 && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token, tamperMode) };
  }
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});

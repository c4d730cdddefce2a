// A second, independent OpenID Provider for the hawiya_rp interop tests: panva's oidc-provider
// (https://github.com/panva/node-oidc-provider), configured with one confidential client and its
// development-only login and consent pages (any login is accepted), so a test can drive the whole
// authorization code flow over plain HTTP.
//
//   node server.mjs [PORT]
//
// Environment: PORT (or argv[2], default 0 = any free port), HOST (bind address, default
// 127.0.0.1), ISSUER (default http://localhost:PORT), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// ID_TOKEN_ALG (ES256 or RS256, default ES256).
//
// Prints exactly one line "READY <issuer>" on stdout once it listens; SIGTERM or SIGINT close the
// server and exit 0. Everything else (oidc-provider's development warnings) goes to stderr.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number.parseInt(process.argv[2] ?? env.PORT ?? '0', 10);
const host = env.HOST ?? '127.0.0.1';
const clientId = env.CLIENT_ID ?? 'interop-rp';
const clientSecret = env.CLIENT_SECRET ?? 'interop-secret-that-is-long-enough-for-hs256-0123456789';
const redirectUri = env.REDIRECT_URI ?? 'http://127.0.0.1:8765/auth/callback';
const idTokenAlg = env.ID_TOKEN_ALG ?? 'ES256';

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port: ${process.argv[2] ?? env.PORT}`);
  process.exit(2);
}
if (!['ES256', 'RS256'].includes(idTokenAlg)) {
  console.error(`ID_TOKEN_ALG must be ES256 or RS256, not ${idTokenAlg}`);
  process.exit(2);
}

// Fresh signing keys on every start: one EC P-256 key (ES256) and one RSA key (RS256), so the
// published JWKS holds two keys and the relying party has to pick the right one by kid.
function signingJwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}
const jwks = {
  keys: [
    signingJwk('ec', { namedCurve: 'P-256' }, 'ES256', `es256-${randomBytes(4).toString('hex')}`),
    signingJwk('rsa', { modulusLength: 2048 }, 'RS256', `rs256-${randomBytes(4).toString('hex')}`),
  ],
};

// Any login is accepted by the dev interactions; the account id becomes the subject and a few
// profile claims are derived from it.
async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    async claims(_use, _scope) {
      return {
        sub,
        name: `Interop ${sub}`,
        given_name: 'Interop',
        family_name: sub,
        preferred_username: sub,
        locale: 'en',
      };
    },
  };
}

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: idTokenAlg,
    },
  ],
  jwks,
  findAccount,
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale'],
  },
  scopes: ['openid', 'profile', 'offline_access'],
  // PKCE for every authorization request (oidc-provider 9 only knows S256).
  pkce: { required: () => true },
  // A refresh token whenever the client may use the refresh_token grant, offline_access or not,
  // so the test can exercise refresh without prompt=consent.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: true },
    // On by default; stated because the library's logout_url needs the end_session_endpoint.
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Grant: 600,
    Session: 600,
    RefreshToken: 3600,
  },
};

const issuer = env.ISSUER ?? null;

// The issuer needs the real port, only known after listening when the port is 0: bind a bare HTTP
// server first, then mount the provider's request handler on it.
const http = createServer();
http.listen(port, host, () => {
  const actualPort = http.address().port;
  const iss = issuer ?? `http://localhost:${actualPort}`;
  const provider = new Provider(iss, configuration);
  http.on('request', provider.callback());
  process.stdout.write(`READY ${iss}\n`);
});

function shutdown(signal) {
  http.close(() => process.exit(0));
  // Keep-alive connections would hold close() open; end them.
  http.closeAllConnections();
  setTimeout(() => {
    console.error(`forced exit after ${signal}`);
    process.exit(0);
  }, 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

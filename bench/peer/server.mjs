// The benchmark's peer: panva's oidc-provider (https://github.com/panva/node-oidc-provider), the
// OpenID-certified Node OP, configured like Hawiya's benchmark client: one confidential client
// (client_secret_basic) that may use client_credentials for the API scope records:read, answered
// with an ES256 JWT access token (RFC 9068) for one resource server.
//
//   node server.mjs PORT
//
// Environment: HOST (default 127.0.0.1), CLIENT_ID, CLIENT_SECRET, RESOURCE (the API's URL).
// Prints exactly one line "READY <issuer>" on stdout once it listens; SIGTERM closes it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number.parseInt(process.argv[2] ?? '0', 10);
const host = env.HOST ?? '127.0.0.1';
const clientId = env.CLIENT_ID ?? 'bench-api';
const clientSecret = env.CLIENT_SECRET ?? 'bench-secret-0123456789-0123456789-0123456789';
const resource = env.RESOURCE ?? 'https://records.bench.example';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = {
  keys: [{ ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' }],
};

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // The only signing key is EC P-256 (the default would ask for an RSA key).
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks,
  scopes: ['records:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'records:read',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
};

const http = createServer();
http.keepAliveTimeout = 65_000;
http.listen(port, host, () => {
  const iss = `http://127.0.0.1:${http.address().port}`;
  const provider = new Provider(iss, configuration);
  http.on('request', provider.callback());
  process.stdout.write(`READY ${iss}\n`);
});

function shutdown() {
  http.close(() => process.exit(0));
  http.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

// A real OpenID provider for tests/tests/oidc.rs: the certified npm package
// oidc-provider on a loopback port, with
//   - the hub's confidential client (code flow, PKCE required, client secret),
//   - the CLI's public client (device authorization flow, refresh tokens),
//   - users alice (groups: ops-admins), bob (devs) and carol (none); any
//     password is accepted (oidc-provider's development login pages).
// Environment: PORT, HUB_REDIRECT_URI, KEY_DIR (where the signing key and a
// key the provider does not publish are written, as PKCS#8 DER, for tests
// that forge tokens). Prints "ready ISSUER" once it listens.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const keyDir = process.env.KEY_DIR;

function rsaKey(kid, file) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(keyDir, file), privateKey.export({ type: 'pkcs8', format: 'der' }));
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}
const signing = rsaKey('test-signing', 'signing.der');
// Same kid, never published: tokens it signs must be refused.
rsaKey('test-signing', 'rogue.der');

const groups = { alice: ['ops-admins'], bob: ['devs'], carol: [] };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'switchyard-hub',
      client_secret: 'hub-secret',
      redirect_uris: [process.env.HUB_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'switchyard-cli',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [signing] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // Scope claims in the ID token itself (the hub reads groups from it).
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    if (!(id in groups)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, email: `${id}@example.com`, groups: groups[id] };
      },
    };
  },
  ttl: { DeviceCode: 300, IdToken: 3600, AccessToken: 3600, RefreshToken: 86400, Interaction: 300, Session: 3600, Grant: 3600 },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

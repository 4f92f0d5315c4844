/**
 * Real X.509 certificates for the TLS tests, generated per run with
 * @peculiar/x509 over WebCrypto (ECDSA P-256, fast): a CA, a server
 * certificate for 127.0.0.1/localhost, client certificates (a SPIFFE URI, a
 * DNS name only, one signed by another CA), written as PEM (certificate and
 * PKCS#8 key) into a temp dir. Nothing is mocked: the server and the clients
 * do real handshakes with these.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// @peculiar/x509 registers its algorithms through tsyringe, which needs the
// Reflect metadata polyfill loaded first.
import 'reflect-metadata';
const x509 = await import('@peculiar/x509');
x509.cryptoProvider.set(globalThis.crypto);

const subtle = globalThis.crypto.subtle;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;

type KeyPair = Awaited<ReturnType<typeof subtle.generateKey>> & { privateKey: unknown; publicKey: unknown };
type Cert = InstanceType<typeof x509.X509Certificate>;

/** A certificate and its key, as PEM and as files. */
export interface Issued {
  /** The certificate, PEM. */
  readonly cert: string;
  /** The PKCS#8 private key, PEM (`-----BEGIN PRIVATE KEY-----`). */
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A CA that can issue certificates. */
export interface TestCa extends Issued {
  readonly name: string;
  issue(options: IssueOptions): Promise<Issued>;
}

export interface IssueOptions {
  /** File name stem in the temp dir. */
  readonly name: string;
  readonly commonName: string;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  readonly uris?: readonly string[];
  /** `server`, `client` or both: the extended key usages. */
  readonly usage: 'server' | 'client' | 'both';
}

export const SPIFFE_ENVOY = 'spiffe://cluster.local/ns/edge/sa/envoy';
export const CLIENT_DNS = 'billing.internal.test';

/** Everything the TLS tests use. */
export interface TestPki {
  readonly dir: string;
  /** The CA the server trusts for clients and that signed the server certificate. */
  readonly ca: TestCa;
  /** Another CA, trusted by nobody. */
  readonly otherCa: TestCa;
  /** 127.0.0.1 and localhost (SAN IP and DNS), signed by `ca`. */
  readonly server: Issued;
  /** A client with SAN URI {@link SPIFFE_ENVOY}, signed by `ca`. */
  readonly spiffeClient: Issued;
  /** A client with only SAN DNS {@link CLIENT_DNS}, signed by `ca`. */
  readonly dnsClient: Issued;
  /** A client with SAN URI {@link SPIFFE_ENVOY} too, but signed by `otherCa`. */
  readonly foreignClient: Issued;
  /** A self-signed certificate claiming SAN URI {@link SPIFFE_ENVOY}. */
  readonly selfSignedClient: Issued;
}

function pem(der: ArrayBuffer, label: string): string {
  return x509.PemConverter.encode(der, label);
}

async function keyPair(): Promise<KeyPair> {
  return (await subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as KeyPair;
}

async function privateKeyPem(keys: KeyPair): Promise<string> {
  return pem(await subtle.exportKey('pkcs8', keys.privateKey as Parameters<typeof subtle.exportKey>[1]), 'PRIVATE KEY');
}

function write(dir: string, name: string, cert: string, key: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, cert);
  writeFileSync(keyFile, key, { mode: 0o600 });
  return { certFile, keyFile };
}

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // Backdated an hour so a slightly skewed clock cannot make it "not yet valid".
  return { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 24 * 3600_000) };
}

let serial = 1;
function nextSerial(): string {
  serial += 1;
  return (0x1000 + serial).toString(16).padStart(4, '0');
}

/** A self-signed CA named `CN=<name>`, written to `dir/<file>.crt|key`. */
export async function makeCa(dir: string, name: string, file: string): Promise<TestCa> {
  const keys = await keyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    ...validity(),
    signingAlgorithm: SIGN_ALG,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const cert = caCert.toString('pem');
  const key = await privateKeyPem(keys);
  const files = write(dir, file, cert, key);
  return {
    name,
    cert,
    key,
    ...files,
    issue: (options) => issue(dir, caCert, keys, options),
  };
}

async function issue(dir: string, caCert: Cert, caKeys: KeyPair, options: IssueOptions): Promise<Issued> {
  const keys = await keyPair();
  const names = [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const usages =
    options.usage === 'server' ? [x509.ExtendedKeyUsage.serverAuth] : options.usage === 'client' ? [x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: `CN=${options.commonName}`,
    issuer: caCert.subject,
    ...validity(),
    signingAlgorithm: SIGN_ALG,
    publicKey: keys.publicKey as never,
    signingKey: caKeys.privateKey as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      ...(names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names, false)]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  const certPem = cert.toString('pem');
  const key = await privateKeyPem(keys);
  return { cert: certPem, key, ...write(dir, options.name, certPem, key) };
}

/** A self-signed leaf (its own issuer) with the given SANs: trusted by nobody. */
async function selfSigned(dir: string, name: string, commonName: string, uris: readonly string[]): Promise<Issued> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${commonName}`,
    ...validity(),
    signingAlgorithm: SIGN_ALG,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        uris.map((value) => ({ type: 'url' as const, value })),
        false,
      ),
    ],
  });
  const certPem = cert.toString('pem');
  const key = await privateKeyPem(keys);
  return { cert: certPem, key, ...write(dir, name, certPem, key) };
}

/** Generates the whole set into a fresh temp dir (or `dir`). */
export async function createTestPki(dir = mkdtempSync(join(tmpdir(), 'arbiter-pki-'))): Promise<TestPki> {
  const [ca, otherCa] = await Promise.all([makeCa(dir, 'Arbiter Test CA', 'ca'), makeCa(dir, 'Unrelated Test CA', 'other-ca')]);
  const [server, spiffeClient, dnsClient, foreignClient, selfSignedClient] = await Promise.all([
    ca.issue({ name: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], usage: 'server' }),
    ca.issue({ name: 'envoy', commonName: 'envoy', uris: [SPIFFE_ENVOY], usage: 'client' }),
    ca.issue({ name: 'billing', commonName: CLIENT_DNS, dns: [CLIENT_DNS], usage: 'client' }),
    otherCa.issue({ name: 'foreign-envoy', commonName: 'envoy', uris: [SPIFFE_ENVOY], usage: 'client' }),
    selfSigned(dir, 'self-signed-envoy', 'envoy', [SPIFFE_ENVOY]),
  ]);
  return { dir, ca, otherCa, server, spiffeClient, dnsClient, foreignClient, selfSignedClient };
}

/**
 * A certificate authority of the test's own and certificates it signs for given names, made with openssl (Debian's
 * `openssl`, which `ca-certificates` depends on) in a temporary directory: a TLS receiver on loopback that a node
 * trusts through NODE_EXTRA_CA_CERTS, as it would trust a receiver's public certificate.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificates extends Disposable {
  /** The authority's certificate (PEM file), for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** The certificate and key files (PEM) for `name`, valid for that DNS name only. */
  pair(name: string): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  let result: ReturnType<typeof Bun.spawnSync>;
  try {
    result = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  } catch (error) {
    throw new Error(`test certificates need openssl on PATH (Debian package openssl): ${(error as Error).message}`);
  }
  if (result.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${String(result.stderr)}`);
}

/** A new P-256 key in `key` and a request (or with -x509, a self-signed certificate) for `subject` in `out`. */
const newKey = (key: string, out: string, subject: string) => [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
  "-keyout",
  key,
  "-out",
  out,
  "-subj",
  subject,
];

/** A new authority and one certificate for each of `names`. */
export function testCertificates(names: readonly string[]): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "test-tls-"));
  openssl(["req", "-x509", "-days", "2", ...newKey("ca.key", "ca.pem", "/CN=shortener test CA")], dir);
  for (const [i, name] of names.entries()) {
    writeFileSync(join(dir, `${i}.ext`), `subjectAltName=DNS:${name}\n`);
    openssl(["req", ...newKey(`${i}.key`, `${i}.csr`, `/CN=${name}`)], dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${i}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${i}.pem`,
        "-days",
        "2",
        "-extfile",
        `${i}.ext`,
      ],
      dir,
    );
  }
  return {
    caFile: join(dir, "ca.pem"),
    pair(name) {
      const i = names.indexOf(name);
      if (i < 0) throw new Error(`no test certificate for ${name}`);
      return { cert: join(dir, `${i}.pem`), key: join(dir, `${i}.key`) };
    },
    [Symbol.dispose]() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
